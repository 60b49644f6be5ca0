import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../harness/cli.js';
import { TESTDATA, tempDir } from '../harness/fixtures.js';
import { raw, rawGetManifest, sha256 } from '../harness/raw.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

let registry: RegistryServer;
let work: Awaited<ReturnType<typeof tempDir>>;
let hello: Buffer;
let component: Buffer;
const WIT = `package test:demo@0.1.0;
interface greet { hello: func(name: string) -> string; }
world demo {
  import wasi:cli/environment@0.2.0;
  import log: func(msg: string);
  export greet;
  export run: func();
}
package wasi:cli@0.2.0 { interface environment { get-environment: func() -> list<tuple<string, string>>; } }`;

before(async () => {
  registry = await startRegistry();
  work = await tempDir();
  await mkdir(join(work.path, 'testdata'));
  for (const f of ['hello.wasm', 'exit3.wasm', 'probe.wasm']) {
    await writeFile(join(work.path, 'testdata', f), await readFile(join(TESTDATA, f)));
  }
  hello = await readFile(join(TESTDATA, 'hello.wasm'));
  const jco = (await import('@bytecodealliance/jco')) as unknown as {
    componentEmbed(o: { dummy: boolean; witSource: string }): Promise<Uint8Array>;
    componentNew(b: Uint8Array): Promise<Uint8Array>;
  };
  component = Buffer.from(await jco.componentNew(await jco.componentEmbed({ dummy: true, witSource: WIT })));
  await writeFile(join(work.path, 'demo.wasm'), component);
});
after(async () => {
  await registry?.stop();
  await work?.remove();
});

const cli = (args: string[], env: NodeJS.ProcessEnv = {}, input?: string | Buffer) =>
  runCli(args, {
    cwd: work.path,
    input,
    env: { HOME: work.path, XDG_CACHE_HOME: join(work.path, 'cache'), ...env },
  });

async function blob(repo: string, digest: string): Promise<Buffer> {
  return (await raw('GET', `http://${registry.host}/v2/${repo}/blobs/${digest}`)).body;
}

describe('--format cncf', () => {
  it('writes the documented config and manifest, byte for byte, for a core module', async () => {
    const res = await cli([
      'push',
      'testdata/hello.wasm',
      `${registry.host}/cncf/hello:v1`,
      '--format',
      'cncf',
      '--created',
      '2024-05-01T12:00:00Z',
    ]);
    assert.equal(res.code, 0, res.stderr);
    const config = `{"created":"2024-05-01T12:00:00Z","architecture":"wasm","os":"wasip1","layerDigests":["${sha256(hello)}"]}`;
    const manifest =
      `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.wasm.config.v0+json","digest":"${sha256(config)}","size":${config.length}},` +
      `"layers":[{"mediaType":"application/wasm","digest":"${sha256(hello)}","size":${hello.length},"annotations":{"org.opencontainers.image.title":"testdata/hello.wasm"}}],` +
      `"annotations":{"org.opencontainers.image.created":"2024-05-01T12:00:00Z"}}`;
    const got = await rawGetManifest(registry.host, 'cncf/hello', 'v1');
    assert.equal(got.body.toString(), manifest);
    assert.equal((await blob('cncf/hello', sha256(config))).toString(), config);
    assert.match(res.stdout, new RegExp(`Digest: ${sha256(manifest)}\n$`));
  });

  it('records a component’s imports, exports and target world, and is reproducible with SOURCE_DATE_EPOCH', async () => {
    const args = [
      'push',
      'demo.wasm',
      '--format',
      'cncf',
      '--target-world',
      'test:demo/demo@0.1.0',
      '--author',
      'Ann Example',
      '--json',
    ];
    const first = await cli([...args.slice(0, 2), `${registry.host}/cncf/demo:a`, ...args.slice(2)], {
      SOURCE_DATE_EPOCH: '1700000000',
    });
    const second = await cli([...args.slice(0, 2), `${registry.host}/cncf/demo:b`, ...args.slice(2)], {
      SOURCE_DATE_EPOCH: '1700000000',
    });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(
      JSON.parse(first.stdout).manifest.digest,
      JSON.parse(second.stdout).manifest.digest,
      'same input, same digest',
    );
    const config = `{"created":"2023-11-14T22:13:20Z","author":"Ann Example","architecture":"wasm","os":"wasip2","layerDigests":["${sha256(component)}"],"component":{"imports":["wasi:cli/environment@0.2.0","log"],"exports":["run","test:demo/greet@0.1.0"],"target":"test:demo/demo@0.1.0"}}`;
    const manifest = JSON.parse((await rawGetManifest(registry.host, 'cncf/demo', 'a')).body.toString());
    assert.equal(manifest.config.digest, sha256(config));
    assert.equal((await blob('cncf/demo', sha256(config))).toString(), config);
  });

  it('takes WASM_TO_OCI_FORMAT, annotations, an annotation file, an artifact type and several tags', async () => {
    await writeFile(join(work.path, 'ann.json'), JSON.stringify({ 'org.example.team': 'wasm' }));
    const res = await cli(
      [
        'push',
        'testdata/hello.wasm',
        `${registry.host}/cncf/tags:t1,t2`,
        '--tag',
        't3',
        '-a',
        'org.example.x=1',
        '--annotation-file',
        'ann.json',
        '--artifact-type',
        'application/vnd.example+wasm',
      ],
      { WASM_TO_OCI_FORMAT: 'cncf' },
    );
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /Pushed: .*:t1\nPushed: .*:t2\nPushed: .*:t3\n/);
    const m = JSON.parse((await rawGetManifest(registry.host, 'cncf/tags', 't3')).body.toString());
    assert.equal(m.config.mediaType, 'application/vnd.wasm.config.v0+json');
    assert.equal(m.artifactType, 'application/vnd.example+wasm');
    assert.equal(m.annotations['org.example.x'], '1');
    assert.equal(m.annotations['org.example.team'], 'wasm');
    assert.ok(m.annotations['org.opencontainers.image.created']);
  });
});

describe('stdin and stdout', () => {
  it('push - reads the module from stdin; pull --out - writes it to stdout once verified', async () => {
    const push = await cli(['push', '-', `${registry.host}/pipe/hello:v1`], {}, hello);
    assert.equal(push.code, 0, push.stderr);
    const m = JSON.parse((await rawGetManifest(registry.host, 'pipe/hello', 'v1')).body.toString());
    assert.equal(m.layers[0].annotations, undefined, 'no path, no title');
    const { spawn } = await import('node:child_process');
    const { CLI } = await import('../harness/cli.js');
    const out = await new Promise<Buffer>((resolve, reject) => {
      const child = spawn(process.execPath, [
        CLI,
        'pull',
        `${registry.host}/pipe/hello:v1`,
        '--out',
        '-',
        '--no-cache',
      ]);
      const chunks: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => chunks.push(c));
      child.on('error', reject);
      child.on('close', (code) =>
        code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`exit ${code}`)),
      );
    });
    assert.deepEqual(out, hello);
  });
});

describe('run', () => {
  it('pulls by reference and runs it: the original README’s ending', async () => {
    assert.equal((await cli(['push', 'testdata/hello.wasm', `${registry.host}/run/hello:v1`])).code, 0);
    const res = await cli(['run', `${registry.host}/run/hello:v1`]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'Hello from WebAssembly!\n');
    assert.equal(res.stderr, '', 'no experimental-feature warning');
  });

  it('the module’s exit code becomes the process’s', async () => {
    assert.equal((await cli(['push', 'testdata/exit3.wasm', `${registry.host}/run/exit3:v1`])).code, 0);
    assert.equal((await cli(['run', `${registry.host}/run/exit3:v1`])).code, 3);
    assert.equal((await cli(['run', 'testdata/exit3.wasm'])).code, 3);
  });

  it('passes --env and --dir (host:guest) and arguments', async () => {
    await mkdir(join(work.path, 'data'));
    await writeFile(join(work.path, 'data', 'in.txt'), 'from the host');
    const res = await cli([
      'run',
      'testdata/probe.wasm',
      '--env',
      'GREETING=hi',
      '--dir',
      'data:/data',
      '--',
      'extra',
    ]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'GREETING=hi\0from the host');
    assert.equal((await cli(['run', 'testdata/probe.wasm'])).code, 4, 'no preopen, no file');
  });

  it('refuses a component with a hint instead of crashing', async () => {
    const res = await cli(['run', 'demo.wasm']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^Error: .*is a component, which node:wasi cannot run\nHint: .*wasmtime.*jco/);
  });
});

describe('inspect', () => {
  it('a local file, without any registry', async () => {
    const res = await cli(['inspect', 'testdata/hello.wasm', '--json']);
    assert.equal(res.code, 0, res.stderr);
    const report = JSON.parse(res.stdout);
    assert.equal(report.digest, sha256(hello));
    assert.deepEqual(report.wasm.importsByModule, { wasi_snapshot_preview1: ['fd_write'] });
    const human = await cli(['inspect', 'demo.wasm']);
    assert.match(human.stdout, /Wasm: +component/);
    assert.match(human.stdout, /wasi:cli\/environment@0\.2\.0 \(instance\)/);
  });

  it('an artifact: format, descriptors, annotations, config and the module', async () => {
    const res = await cli(['inspect', `${registry.host}/cncf/demo:a`, '--json']);
    assert.equal(res.code, 0, res.stderr);
    const report = JSON.parse(res.stdout);
    assert.equal(report.format, 'cncf');
    assert.equal(report.config.mediaType, 'application/vnd.wasm.config.v0+json');
    assert.equal(report.configJson.os, 'wasip2');
    assert.equal(report.layer.mediaType, 'application/wasm');
    assert.equal(report.wasm.kind, 'component');
    assert.deepEqual(
      report.wasm.exports.map((e: { name: string }) => e.name),
      ['run', 'test:demo/greet@0.1.0'],
    );
    const classic = await cli(['inspect', `${registry.host}/run/hello:v1`]);
    assert.match(classic.stdout, /Format: +classic/);
    assert.match(classic.stdout, /wasi_snapshot_preview1: fd_write/);
  });

  it('malformed wasm gets a clear error, no crash', async () => {
    await writeFile(
      join(work.path, 'broken.wasm'),
      Buffer.concat([hello.subarray(0, 8), Buffer.from([2, 0xff, 0xff, 0xff, 0xff, 0x0f])]),
    );
    const res = await cli(['inspect', 'broken.wasm']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^Error: malformed WebAssembly at byte \d+: .+\nHint: /);
    const push = await cli(['push', 'broken.wasm', `${registry.host}/broken:v1`, '--format', 'cncf']);
    assert.equal(push.code, 1);
    assert.match(push.stderr, /malformed WebAssembly/);
  });
});
