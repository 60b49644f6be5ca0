import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CLI, runCli } from '../harness/cli.js';
import { HELLO_WASM, tempDir } from '../harness/fixtures.js';
import { raw, rawGetManifest, rawPushBlob, rawPushManifest, sha256 } from '../harness/raw.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

/**
 * Issue 14, as a new user meets it: what pull, run and inspect accept, inputs checked before any
 * upload, and plain one-line errors with hints that fit. Every run has its own HOME, Docker config and
 * cache inside the test's temporary directory.
 */

let registry: RegistryServer;
let work: Awaited<ReturnType<typeof tempDir>>;
let hello: Buffer;

before(async () => {
  registry = await startRegistry();
  work = await tempDir();
  hello = await readFile(HELLO_WASM);
  await writeFile(join(work.path, 'hello.wasm'), hello);
});
after(async () => {
  await registry?.stop();
  await work?.remove();
});

const env = () => ({
  HOME: work.path,
  DOCKER_CONFIG: join(work.path, 'docker'),
  XDG_CACHE_HOME: join(work.path, 'cache'),
});
const cli = (args: string[], extra: NodeJS.ProcessEnv = {}, input?: string | Buffer) =>
  runCli(args, { cwd: work.path, input, env: { ...env(), ...extra } });

/** Every line of stderr, and no stack trace nor bug hint among them. */
function plain(stderr: string): string[] {
  assert.doesNotMatch(stderr, /\n\s+at |looks like a bug/, stderr);
  return stderr.trimEnd().split('\n');
}

async function tagsOf(repo: string): Promise<string[]> {
  const res = await raw('GET', `http://${registry.host}/v2/${repo}/tags/list`);
  return res.status === 200 ? ((JSON.parse(res.body.toString()) as { tags: string[] }).tags ?? []) : [];
}

describe('inputs are checked before any work', () => {
  it('push with a malformed --tag fails with exit 2 and uploads nothing, not even the first tag', async () => {
    const res = await cli(['push', 'hello.wasm', `${registry.host}/q2/hello:v1`, '--tag', 'x/y']);
    assert.equal(res.code, 2, res.stderr);
    const [error, hint] = plain(res.stderr);
    assert.equal(error, 'Error: "x/y" is not a valid tag');
    assert.match(hint ?? '', /^Hint: a tag has up to 128 letters/);
    assert.deepEqual(await tagsOf('q2/hello'), []);
    const blob = await raw('HEAD', `http://${registry.host}/v2/q2/hello/blobs/${sha256(hello)}`);
    assert.equal(blob.status, 404);
  });

  it('tag accepts a full reference in the same repository, and a bare tag', async () => {
    const push = await cli(['push', 'hello.wasm', `${registry.host}/tagged/hello:v1`]);
    assert.equal(push.code, 0, push.stderr);
    const full = await cli([
      'tag',
      `${registry.host}/tagged/hello:v1`,
      `${registry.host}/tagged/hello:v9`,
      'v10',
    ]);
    assert.equal(full.code, 0, full.stderr);
    assert.equal(
      full.stdout
        .split('\n')
        .filter((l) => l.startsWith('Tagged: '))
        .join('\n'),
      `Tagged: ${registry.host}/tagged/hello:v9\nTagged: ${registry.host}/tagged/hello:v10`,
    );
    const v1 = await rawGetManifest(registry.host, 'tagged/hello', 'v1');
    const v9 = await rawGetManifest(registry.host, 'tagged/hello', 'v9');
    assert.equal(v9.status, 200);
    assert.equal(sha256(v9.body), sha256(v1.body));
  });

  it('tag refuses a reference in another repository before writing any tag, pointing at copy', async () => {
    const res = await cli([
      'tag',
      `${registry.host}/tagged/hello:v1`,
      'v11',
      `${registry.host}/elsewhere/hello:v1`,
    ]);
    assert.equal(res.code, 2, res.stderr);
    const [error, hint] = plain(res.stderr);
    assert.equal(
      error,
      `Error: ${registry.host}/elsewhere/hello:v1 is not in ${registry.host}/tagged/hello: tag names tags within one repository`,
    );
    assert.match(hint ?? '', /^Hint: .*copy /);
    assert.ok(!(await tagsOf('tagged/hello')).includes('v11'));
  });
});

describe('a digest that names a blob', () => {
  it('pull says at once that it is a blob, with @ and a hint to blob get, and retries nothing', async () => {
    const push = await cli(['push', 'hello.wasm', `${registry.host}/blobby/hello:v1`]);
    assert.equal(push.code, 0, push.stderr);
    const started = Date.now();
    const res = await cli(['pull', `${registry.host}/blobby/hello@${sha256(hello)}`, '-o', 'blob.wasm']);
    assert.equal(res.code, 1, res.stderr);
    // Distribution answers 500 here; four tries with backoff take more than a second.
    assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
    const [error, hint] = plain(res.stderr);
    assert.equal(
      error,
      `Error: ${registry.host}/blobby/hello@${sha256(hello)} is a blob (a layer or a config), not a manifest`,
    );
    assert.equal(
      hint,
      `Hint: pull and inspect take a manifest; to download the blob itself use: blob get ${registry.host}/blobby/hello@${sha256(hello)} -o <file>`,
    );
    await assert.rejects(readFile(join(work.path, 'blob.wasm')), { code: 'ENOENT' });
  });

  it('a digest that is neither manifest nor blob is "not found", with @', async () => {
    const missing = `sha256:${'0'.repeat(64)}`;
    const res = await cli(['pull', `${registry.host}/blobby/hello@${missing}`, '-o', 'none.wasm']);
    assert.equal(res.code, 1, res.stderr);
    const [error] = plain(res.stderr);
    assert.equal(error, `Error: ${registry.host}/blobby/hello@${missing}: manifest not found`);
  });
});

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const OCI_TAR_GZ = 'application/vnd.oci.image.layer.v1.tar+gzip';
const DOCKER_TAR_GZ = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

/** A tar archive made by the system's tar (not by the code under test) from `files` (name -> bytes). */
async function tarOf(files: Record<string, Buffer | string>, gzip: boolean): Promise<Buffer> {
  const dir = join(work.path, `tar-${Math.random().toString(16).slice(2)}`);
  await mkdir(dir);
  for (const [name, data] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), data);
  }
  const out = join(dir, '..', `${dir.split('/').pop()}.tar${gzip ? '.gz' : ''}`);
  await promisify(execFile)('tar', ['-C', dir, gzip ? '-czf' : '-cf', out, ...Object.keys(files)]);
  return readFile(out);
}

/** A container image (one config, the given layers) pushed by raw requests. */
async function pushImage(
  repo: string,
  tag: string,
  layers: Array<{ mediaType: string; data: Buffer }>,
  docker = false,
  config: object = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } },
): Promise<{ manifest: string; layers: string[] }> {
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = await rawPushBlob(registry.host, repo, configBytes);
  const digests: string[] = [];
  for (const layer of layers) digests.push(await rawPushBlob(registry.host, repo, layer.data));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: docker ? DOCKER_MANIFEST : OCI_MANIFEST,
      config: {
        mediaType: docker
          ? 'application/vnd.docker.container.image.v1+json'
          : 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: configBytes.length,
      },
      layers: layers.map((l, i) => ({ mediaType: l.mediaType, digest: digests[i], size: l.data.length })),
    }),
  );
  const digest = await rawPushManifest(
    registry.host,
    repo,
    tag,
    manifest,
    docker ? DOCKER_MANIFEST : OCI_MANIFEST,
  );
  return { manifest: digest, layers: digests };
}

describe('pull and run write only WebAssembly', () => {
  it('unpacks the plugin.wasm of an Istio compat image (docker tar.gzip), verified as wasm', async () => {
    const layer = await tarOf({ 'plugin.wasm': hello, 'etc/notes.txt': 'not this one' }, true);
    await pushImage('istio/compat', 'v1', [{ mediaType: DOCKER_TAR_GZ, data: layer }], true);
    const res = await cli(['pull', `${registry.host}/istio/compat:v1`, '-o', 'compat.wasm']);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(await readFile(join(work.path, 'compat.wasm')), hello);
    assert.match(res.stdout, new RegExp(`^Unpacked: plugin\\.wasm from the ${DOCKER_TAR_GZ} layer$`, 'm'));
    assert.match(res.stdout, new RegExp(`^Size: ${hello.length}$`, 'm'));
    // Again from the cache, the archive being a cached layer like any other.
    const again = await cli(['pull', `${registry.host}/istio/compat:v1`, '-o', 'again.wasm', '--json']);
    assert.equal(again.code, 0, again.stderr);
    const json = JSON.parse(again.stdout) as { fromCache: boolean; unpacked: unknown };
    assert.equal(json.fromCache, true);
    assert.deepEqual(json.unpacked, { entry: 'plugin.wasm', size: hello.length, digest: sha256(hello) });
    assert.deepEqual(await readFile(join(work.path, 'again.wasm')), hello);
  });

  it('unpacks the only .wasm of an uncompressed OCI tar layer, and run runs it', async () => {
    const layer = await tarOf({ 'filter/hello.wasm': hello }, false);
    await pushImage('istio/plain', 'v1', [
      { mediaType: 'application/vnd.oci.image.layer.v1.tar', data: layer },
    ]);
    const pulled = await cli(['pull', `${registry.host}/istio/plain:v1`, '-o', 'plain.wasm']);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.deepEqual(await readFile(join(work.path, 'plain.wasm')), hello);
    const run = await cli(['run', `${registry.host}/istio/plain:v1`]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Hello/);
  });

  it('a tar layer without a .wasm file writes nothing and leaves an existing file untouched', async () => {
    const layer = await tarOf({ 'bin/sh': 'a shell, say', 'etc/os-release': 'ID=test' }, true);
    const image = await pushImage('images/app', 'v1', [{ mediaType: OCI_TAR_GZ, data: layer }]);
    await writeFile(join(work.path, 'kept.wasm'), 'kept');
    const res = await cli([
      'pull',
      `${registry.host}/images/app:v1`,
      '--layer',
      image.layers[0] as string,
      '-o',
      'kept.wasm',
    ]);
    assert.equal(res.code, 1, res.stderr);
    const [error, hint] = plain(res.stderr);
    assert.equal(
      error,
      `Error: layer ${image.layers[0]} (${OCI_TAR_GZ}) is a tar archive with no .wasm file: bin/sh (12 bytes), etc/os-release (7 bytes)`,
    );
    assert.equal(
      hint,
      `Hint: pull and run write only WebAssembly; to download the blob as it is, use: blob get ${registry.host}/images/app@${image.layers[0]} -o <file>`,
    );
    assert.equal(await readFile(join(work.path, 'kept.wasm'), 'utf8'), 'kept');
  });

  it('a layer that is not wasm, whatever its media type, is refused by pull and run; blob get still fetches it', async () => {
    const text = Buffer.from('# Not a module\n');
    const image = await pushImage('images/liar', 'v1', [{ mediaType: 'application/wasm', data: text }]);
    await writeFile(join(work.path, 'liar.wasm'), 'kept');
    const res = await cli(['pull', `${registry.host}/images/liar:v1`, '-o', 'liar.wasm']);
    assert.equal(res.code, 1, res.stderr);
    const [error, hint] = plain(res.stderr);
    assert.equal(
      error,
      `Error: layer ${image.layers[0]} (application/wasm) is not a WebAssembly binary: it does not start with \\0asm`,
    );
    assert.match(hint ?? '', /^Hint: pull and run write only WebAssembly; .*blob get /);
    assert.equal(await readFile(join(work.path, 'liar.wasm'), 'utf8'), 'kept');
    const run = await cli(['run', `${registry.host}/images/liar:v1`]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /^Error: layer .* is not a WebAssembly binary/);
    assert.doesNotMatch(run.stderr, /\/tmp\/|wasm-to-oci-run-/);
    const blob = await cli([
      'blob',
      'get',
      `${registry.host}/images/liar@${image.layers[0]}`,
      '-o',
      'raw.bin',
    ]);
    assert.equal(blob.code, 0, blob.stderr);
    assert.deepEqual(await readFile(join(work.path, 'raw.bin')), text);
  });

  it('a tar layer with several .wasm files and no plugin.wasm is refused with the list', async () => {
    const layer = await tarOf({ 'a.wasm': hello, 'b.wasm': hello }, true);
    await pushImage('istio/two', 'v1', [{ mediaType: OCI_TAR_GZ, data: layer }]);
    const res = await cli(['pull', `${registry.host}/istio/two:v1`, '-o', 'two.wasm']);
    assert.equal(res.code, 1, res.stderr);
    const [error] = plain(res.stderr);
    assert.match(error ?? '', /holds 2 \.wasm files: a\.wasm \(151 bytes\), b\.wasm \(151 bytes\)$/);
    await assert.rejects(readFile(join(work.path, 'two.wasm')), { code: 'ENOENT' });
  });
});

describe('pull -o -', () => {
  it('refuses --json with exit 2 before any request: stdout carries only the module', async () => {
    const res = await cli(['pull', `${registry.host}/tagged/hello:v1`, '-o', '-', '--json']);
    assert.equal(res.code, 2, res.stderr);
    assert.equal(res.stdout, '');
    const [error, hint] = plain(res.stderr);
    assert.equal(error, 'Error: --json cannot be used with --out -: standard output carries only the module');
    assert.match(hint ?? '', /-o <file>/);
  });

  it('writes only the module to a pipe, the summary to stderr, and names no temporary path', async () => {
    const res = await promisify(execFile)(
      process.execPath,
      [CLI, 'pull', `${registry.host}/tagged/hello:v1`, '-o', '-'],
      { cwd: work.path, env: { ...process.env, ...env() }, encoding: 'buffer' },
    );
    assert.deepEqual(res.stdout, hello);
    const stderr = res.stderr.toString();
    assert.match(stderr, /^Pulled: .*\nSize: 151\nDigest: sha256:/);
    assert.doesNotMatch(stderr, /\/tmp\/|wasm-to-oci-pull-/);
  });

  it('refuses to write binary to a terminal (under script(1)) unless --force', async () => {
    const typescript = join(work.path, 'typescript');
    const command = (extra: string) =>
      `${process.execPath} ${CLI} pull ${registry.host}/tagged/hello:v1 -o - ${extra}; echo "rc=$?"`;
    const run = (extra: string) =>
      promisify(execFile)('script', ['-qec', command(extra), typescript], {
        cwd: work.path,
        env: { ...process.env, ...env() },
      });
    const refused = await run('');
    assert.match(refused.stdout, /Error: refusing to write a binary module to a terminal/);
    assert.match(refused.stdout, /Hint: .*--force/);
    assert.match(refused.stdout, /rc=2/);
    const forced = await run('--force');
    assert.match(forced.stdout, /asm/);
    assert.match(forced.stdout, /rc=0/);
  });
});
