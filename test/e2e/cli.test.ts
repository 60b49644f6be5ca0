import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { runCli } from '../harness/cli.js';
import { HELLO_WASM, tempDir, writeSkopeoPolicy } from '../harness/fixtures.js';
import { rawGetManifest, rawPushCncf, sha256 } from '../harness/raw.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

const exec = promisify(execFile);

let registry: RegistryServer;
let work: Awaited<ReturnType<typeof tempDir>>;
let module: Buffer;

before(async () => {
  registry = await startRegistry();
  work = await tempDir();
  // Run from a directory with testdata/hello.wasm, so the title is the path as typed.
  await mkdir(join(work.path, 'testdata'));
  await copyFile(HELLO_WASM, join(work.path, 'testdata', 'hello.wasm'));
  module = await readFile(HELLO_WASM);
});
after(async () => {
  await registry?.stop();
  await work?.remove();
});

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  runCli(args, { cwd: work.path, env: { XDG_CACHE_HOME: join(work.path, '.cache'), ...env } });

function expectedManifest(title: string): string {
  return (
    `{"schemaVersion":2,"config":{"mediaType":"application/vnd.wasm.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},` +
    `"layers":[{"mediaType":"application/vnd.wasm.content.layer.v1+wasm","digest":"${sha256(module)}","size":${module.length},"annotations":{"org.opencontainers.image.title":"${title}"}}]}`
  );
}

describe('wasm-to-oci CLI end to end', () => {
  it('push prints Pushed/Size/Digest and stores the original tool’s manifest bytes', async () => {
    const ref = `${registry.host}/wasm-to-oci:v1`;
    const res = await cli(['push', 'testdata/hello.wasm', ref]);
    assert.equal(res.code, 0, res.stderr);
    const manifest = expectedManifest('testdata/hello.wasm');
    assert.equal(res.stdout, `Pushed: ${ref}\nSize: ${module.length}\nDigest: ${sha256(manifest)}\n`);
    assert.equal(res.stderr, '');
    const got = await rawGetManifest(registry.host, 'wasm-to-oci', 'v1');
    assert.equal(got.body.toString(), manifest);
  });

  it('pull prints Pulled/Size/Digest and writes the same bytes', async () => {
    const ref = `${registry.host}/wasm-to-oci:v1`;
    const res = await cli(['pull', ref, '--out', 'test.wasm']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `Pulled: ${ref}\nSize: ${module.length}\nDigest: ${sha256(module)}\n`);
    assert.deepEqual(await readFile(join(work.path, 'test.wasm')), module);
  });

  it('pull writes module.wasm by default, and -o works', async () => {
    const res = await cli(['pull', `${registry.host}/wasm-to-oci:v1`]);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(await readFile(join(work.path, 'module.wasm')), module);
    const short = await cli(['pull', `${registry.host}/wasm-to-oci:v1`, '-o', 'short.wasm']);
    assert.equal(short.code, 0, short.stderr);
    assert.deepEqual(await readFile(join(work.path, 'short.wasm')), module);
  });

  it('says when the tag defaults to latest', async () => {
    const push = await cli(['push', 'testdata/hello.wasm', `${registry.host}/defaulted`]);
    assert.equal(push.code, 0, push.stderr);
    assert.match(push.stdout, new RegExp(`^Pushed: ${registry.host}/defaulted:latest\n`));
    assert.equal(push.stderr, 'Using default tag: latest\n');
    const pull = await cli(['pull', `${registry.host}/defaulted`, '-o', 'latest.wasm']);
    assert.equal(pull.code, 0);
    assert.match(pull.stdout, /^Pulled: .*:latest\n/);
  });

  it('--json prints one JSON object: the manifest and layer descriptors', async () => {
    const push = await cli(['push', 'testdata/hello.wasm', `${registry.host}/json:v1`, '--json']);
    assert.equal(push.code, 0, push.stderr);
    const pushed = JSON.parse(push.stdout) as Record<string, unknown>;
    assert.equal(pushed.reference, `${registry.host}/json:v1`);
    const manifest = pushed.manifest as { digest: string; mediaType: string };
    assert.equal(manifest.digest, sha256(expectedManifest('testdata/hello.wasm')));
    assert.equal((pushed.layer as { size: number }).size, module.length);
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(push.stdout.trim().split('\n').length, 1);

    const pull = await cli(['pull', `${registry.host}/json:v1`, '--json', '-o', 'json.wasm']);
    const pulled = JSON.parse(pull.stdout) as Record<string, unknown>;
    const layer = pulled.layer as { digest: string; mediaType: string; size: number };
    assert.equal(layer.digest, sha256(module));
    assert.equal(layer.mediaType, 'application/vnd.wasm.content.layer.v1+wasm');
    assert.equal(layer.size, module.length);
  });

  it('--plain-http and --use-http are accepted', async () => {
    for (const flag of ['--plain-http', '--use-http']) {
      const res = await cli(['pull', `${registry.host}/wasm-to-oci:v1`, flag, '-o', 'plain.wasm']);
      assert.equal(res.code, 0, res.stderr);
    }
  });

  it('a pull of a missing tag exits 1, writes no file and prints one clear line', async () => {
    const res = await cli(['pull', `${registry.host}/wasm-to-oci:nope`, '-o', 'missing.wasm']);
    assert.equal(res.code, 1);
    assert.equal(res.stdout, '');
    assert.match(res.stderr, /^Error: .*wasm-to-oci:nope: manifest not found\nHint: .+\n$/);
    await assert.rejects(readFile(join(work.path, 'missing.wasm')), { code: 'ENOENT' });
    assert.deepEqual(
      (await readdir(work.path)).filter((f) => f.endsWith('.part')),
      [],
    );
  });

  it('a failed pull leaves an existing --out file untouched', async () => {
    await writeFile(join(work.path, 'existing.wasm'), 'keep me');
    const res = await cli(['pull', `${registry.host}/nothing-here:v1`, '-o', 'existing.wasm']);
    assert.equal(res.code, 1);
    assert.equal(await readFile(join(work.path, 'existing.wasm'), 'utf8'), 'keep me');
  });

  it('refuses a non-wasm file and a missing file with exit 1 and no stack trace', async () => {
    await writeFile(join(work.path, 'notwasm.txt'), 'hello world');
    const notWasm = await cli(['push', 'notwasm.txt', `${registry.host}/bad:v1`]);
    assert.equal(notWasm.code, 1);
    assert.match(notWasm.stderr, /^Error: notwasm\.txt is not a WebAssembly binary/);
    assert.doesNotMatch(notWasm.stderr, /\n\s+at /);
    const missing = await cli(['push', 'missing.wasm', `${registry.host}/bad:v1`]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'Error: missing.wasm: no such file or directory\n');
    const tags = await rawGetManifest(registry.host, 'bad', 'v1');
    assert.equal(tags.status, 404, 'nothing was pushed');
  });

  it('usage errors exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /Usage: wasm-to-oci/],
      [['push'], /missing required argument 'file'/],
      [['push', 'testdata/hello.wasm'], /missing required argument 'reference'/],
      [['pull', 'x', '--bogus'], /unknown option '--bogus'/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['push', 'testdata/hello.wasm', 'hello:v1'], /registry host is missing/],
      [['pull', 'localhost:5000/UPPER:v1'], /not a valid repository name/],
    ];
    for (const [args, message] of cases) {
      const res = await cli(args);
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, message);
      assert.equal(res.stdout, '');
    }
  });

  it('--help and --version', async () => {
    const version = await cli(['--version']);
    assert.equal(version.code, 0);
    const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    assert.equal(version.stdout, `${pkg.version}\n`);
    for (const command of ['push', 'pull']) {
      const help = await cli([command, '--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, new RegExp(`Usage: wasm-to-oci ${command}`));
      assert.match(help.stdout, /--plain-http/);
      assert.match(help.stdout, /--json/);
    }
  });

  it('a connection failure is one line with a hint', async () => {
    const res = await cli(['pull', '127.0.0.1:1/x:v1', '-o', 'never.wasm']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^Error: cannot connect to 127\.0\.0\.1:1: connection refused\nHint: /);
  });

  it('pulls a CNCF-layout artifact pushed with raw HTTP', async () => {
    const config = Buffer.from('{"architecture":"wasm","os":"wasip1","layerDigests":[]}');
    await rawPushCncf(registry.host, 'raw/cncf', 'v1', module, config);
    const res = await cli(['pull', `${registry.host}/raw/cncf:v1`, '-o', 'raw.wasm']);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(await readFile(join(work.path, 'raw.wasm')), module);
  });

  it('skopeo copies what we pushed into an OCI layout with identical manifest bytes', async () => {
    const ref = `${registry.host}/wasm-to-oci:v1`;
    const policy = await writeSkopeoPolicy(work.path);
    const layout = join(work.path, 'layout');
    await exec('skopeo', [
      '--policy',
      policy,
      'copy',
      '--src-tls-verify=false',
      `docker://${ref}`,
      `oci:${layout}:v1`,
    ]);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
      manifests: Array<{ digest: string }>;
    };
    const digest = index.manifests[0]?.digest ?? '';
    const copied = await readFile(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
    assert.equal(copied.toString(), expectedManifest('testdata/hello.wasm'));
    assert.equal(digest, sha256(copied));
  });
});
