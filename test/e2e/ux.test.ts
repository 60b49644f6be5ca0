import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type CertificateAuthority, makeCa, makeCert } from '../harness/certs.js';
import { CLI, runCli } from '../harness/cli.js';
import { HELLO_WASM, tempDir, writeLargeWasm } from '../harness/fixtures.js';
import { type ForwardProxy, startForwardProxy } from '../harness/proxies.js';
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

describe('in an OCI layout', () => {
  it('tag takes a full layout reference too, and a blob digest is said to be a blob', async () => {
    const push = await cli(['push', 'hello.wasm', 'oci:lay:v1']);
    assert.equal(push.code, 0, push.stderr);
    const tag = await cli(['tag', 'oci:lay:v1', 'oci:lay:v2', 'v3']);
    assert.equal(tag.code, 0, tag.stderr);
    assert.match(tag.stdout, /^Tagged: oci:lay:v2\nTagged: oci:lay:v3\n/);
    const tags = await cli(['tags', 'oci:lay']);
    assert.deepEqual(tags.stdout.trim().split('\n').sort(), ['v1', 'v2', 'v3']);
    const other = await cli(['tag', 'oci:lay:v1', 'oci:elsewhere:v1']);
    assert.equal(other.code, 2, other.stderr);
    const res = await cli(['pull', `oci:lay@${sha256(hello)}`, '-o', 'lb.wasm']);
    assert.equal(res.code, 1, res.stderr);
    assert.deepEqual(plain(res.stderr), [
      `Error: lay@${sha256(hello)} is a blob (a layer or a config), not a manifest`,
      `Hint: pull and inspect take a manifest; to copy the blob itself use: blob get oci:lay@${sha256(hello)} -o <file>`,
    ]);
    const blob = await cli(['blob', 'get', `oci:lay@${sha256(hello)}`, '-o', 'lb.wasm']);
    assert.equal(blob.code, 0, blob.stderr);
    assert.deepEqual(await readFile(join(work.path, 'lb.wasm')), hello);
  });
});

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
    // With --json the error is JSON too (on stderr).
    const { error } = JSON.parse(res.stderr) as { error: { code: string; message: string; hint: string } };
    assert.equal(error.code, 'USAGE');
    assert.equal(
      error.message,
      '--json cannot be used with --out -: standard output carries only the module',
    );
    assert.match(error.hint, /-o <file>/);
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

describe('inspect describes anything', () => {
  const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

  async function pushIndex(repo: string, tag: string, manifests: object[]): Promise<string> {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
    return rawPushManifest(registry.host, repo, tag, body, OCI_INDEX);
  }

  it('a container image: its config fields and layers, and why there is no module', async () => {
    const layer = await tarOf({ 'bin/app': 'binary' }, true);
    const image = await pushImage('inspect/image', 'v1', [{ mediaType: OCI_TAR_GZ, data: layer }], false, {
      architecture: 'arm64',
      os: 'linux',
      variant: 'v8',
      created: '2024-01-02T03:04:05Z',
      rootfs: { type: 'layers', diff_ids: [] },
    });
    const res = await cli(['inspect', `${registry.host}/inspect/image:v1`]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^Format: +unknown$/m);
    assert.match(res.stdout, /^Platform: +linux\/arm64\/v8$/m);
    assert.match(res.stdout, /^Created: +2024-01-02T03:04:05Z$/m);
    assert.match(
      res.stdout,
      new RegExp(`^  ${image.layers[0]} \\(${OCI_TAR_GZ.replace(/[.+]/g, '\\$&')}, `, 'm'),
    );
    assert.match(
      res.stdout,
      /^Wasm: +none \(layer .* is a tar archive with no \.wasm file: bin\/app \(6 bytes\)\)$/m,
    );
    const json = JSON.parse((await cli(['inspect', `${registry.host}/inspect/image:v1`, '--json'])).stdout);
    assert.equal(json.wasm, undefined);
    assert.equal(json.configJson.os, 'linux');
  });

  it('a Docker schema 2 image with several layers: format docker, no module', async () => {
    await pushImage(
      'inspect/docker',
      'v1',
      [
        { mediaType: DOCKER_TAR_GZ, data: await tarOf({ a: 'a' }, true) },
        { mediaType: DOCKER_TAR_GZ, data: await tarOf({ b: 'b' }, true) },
      ],
      true,
    );
    const res = await cli(['inspect', `${registry.host}/inspect/docker:v1`]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^Format: +docker$/m);
    assert.match(
      res.stdout,
      new RegExp(`^Manifest: +sha256:[0-9a-f]{64} \\(${DOCKER_MANIFEST.replace(/[.+]/g, '\\$&')}, `, 'm'),
    );
    assert.match(res.stdout, /^Layers: +2$/m);
    assert.match(res.stdout, /^Platform: +linux\/amd64$/m);
    assert.match(res.stdout, /^Wasm: +none \(no layer holds a wasm module\)$/m);
  });

  it('an index without a wasm entry: every entry with its platform and artifact type', async () => {
    const a = await pushImage('inspect/multi', 'amd64', [
      { mediaType: OCI_TAR_GZ, data: await tarOf({ x: 'x' }, true) },
    ]);
    const b = await pushImage('inspect/multi', 'arm64', [
      { mediaType: OCI_TAR_GZ, data: await tarOf({ y: 'y' }, true) },
    ]);
    const size = async (tag: string) =>
      (await rawGetManifest(registry.host, 'inspect/multi', tag)).body.length;
    await pushIndex('inspect/multi', 'v1', [
      {
        mediaType: OCI_MANIFEST,
        digest: a.manifest,
        size: await size('amd64'),
        platform: { os: 'linux', architecture: 'amd64' },
      },
      {
        mediaType: OCI_MANIFEST,
        digest: b.manifest,
        size: await size('arm64'),
        platform: { os: 'linux', architecture: 'arm64' },
        artifactType: 'application/vnd.example.thing',
      },
    ]);
    const res = await cli(['inspect', `${registry.host}/inspect/multi:v1`]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^Format: +index$/m);
    assert.match(
      res.stdout,
      /^Index: +sha256:[0-9a-f]{64} \(application\/vnd\.oci\.image\.index\.v1\+json, \d+ bytes\), 2 entries$/m,
    );
    assert.match(res.stdout, new RegExp(`^  linux/amd64  ${a.manifest} \\(`, 'm'));
    assert.match(
      res.stdout,
      new RegExp(`^  linux/arm64  ${b.manifest} \\(.*, application/vnd\\.example\\.thing\\)$`, 'm'),
    );
    assert.match(res.stdout, /^Wasm: +none \(the index has 2 entries and none for a wasm platform\)$/m);
    // --platform picks an entry, which is then described like any manifest.
    const one = await cli(['inspect', `${registry.host}/inspect/multi:v1`, '--platform', 'linux/arm64']);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, new RegExp(`^Manifest: +${b.manifest} `, 'm'));
  });

  it('an index with a wasm entry: the component, its platform and target world at a glance', async () => {
    const jco = (await import('@bytecodealliance/jco')) as unknown as {
      componentEmbed(o: { dummy: boolean; witSource: string }): Promise<Uint8Array>;
      componentNew(b: Uint8Array): Promise<Uint8Array>;
    };
    const wit = 'package test:demo@0.1.0;\nworld demo { export run: func(); }';
    const component = Buffer.from(
      await jco.componentNew(await jco.componentEmbed({ dummy: true, witSource: wit })),
    );
    await writeFile(join(work.path, 'demo.wasm'), component);
    const push = await cli([
      'push',
      'demo.wasm',
      `${registry.host}/inspect/both:wasm`,
      '--format',
      'cncf',
      '--target-world',
      'test:demo/demo',
    ]);
    assert.equal(push.code, 0, push.stderr);
    const wasm = await rawGetManifest(registry.host, 'inspect/both', 'wasm');
    const image = await pushImage('inspect/both', 'image', [
      { mediaType: OCI_TAR_GZ, data: await tarOf({ z: 'z' }, true) },
    ]);
    const imageSize = (await rawGetManifest(registry.host, 'inspect/both', 'image')).body.length;
    await pushIndex('inspect/both', 'v1', [
      {
        mediaType: OCI_MANIFEST,
        digest: image.manifest,
        size: imageSize,
        platform: { os: 'linux', architecture: 'amd64' },
      },
      {
        mediaType: OCI_MANIFEST,
        digest: sha256(wasm.body),
        size: wasm.body.length,
        platform: { os: 'wasip2', architecture: 'wasm' },
      },
    ]);
    const res = await cli(['inspect', `${registry.host}/inspect/both:v1`]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^Format: +cncf$/m);
    assert.match(res.stdout, /^  wasip2\/wasm  sha256:/m);
    assert.match(res.stdout, /^Platform: +wasip2\/wasm$/m);
    assert.match(res.stdout, /^World: +test:demo\/demo$/m);
    assert.match(res.stdout, /^Wasm: +component/m);
  });
});

describe('plain errors with hints that fit', () => {
  /** Under `ulimit -f` (KiB), with SIGXFSZ ignored so that a write past the limit fails with EFBIG. */
  const limited = (kib: number, args: string[]) =>
    promisify(execFile)(
      'sh',
      ['-c', `trap '' XFSZ; ulimit -f ${kib}; exec "$0" "$@"`, process.execPath, CLI, ...args],
      {
        cwd: work.path,
        env: { ...process.env, ...env() },
      },
    ).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );

  it('a write past a file size limit: one line, a hint, no temporary name, no bug hint (layout push and pull)', async () => {
    await writeLargeWasm(join(work.path, 'big.wasm'), 256 * 1024);
    const push = await limited(64, ['push', 'big.wasm', 'oci:limited:v1']);
    assert.equal(push.code, 1, push.stderr);
    assert.deepEqual(plain(push.stderr), [
      'Error: limited: file too large for the file size limit',
      'Hint: raise the file size limit (ulimit -f) or write somewhere else',
    ]);
    const stored = await cli(['push', 'big.wasm', 'oci:limited:v1']);
    assert.equal(stored.code, 0, stored.stderr);
    const pull = await limited(64, ['pull', 'oci:limited:v1', '-o', 'big-copy.wasm', '--no-cache']);
    assert.equal(pull.code, 1, pull.stderr);
    const [error] = plain(pull.stderr);
    assert.equal(error, `Error: ${join(work.path, 'big-copy.wasm')}: file too large for the file size limit`);
    assert.doesNotMatch(pull.stderr, /\.part|EFBIG/);
  });

  it('an output under a file that is no directory: said in words', async () => {
    const res = await cli(['pull', `${registry.host}/tagged/hello:v1`, '-o', 'hello.wasm/inside.wasm']);
    assert.equal(res.code, 1, res.stderr);
    const [error] = plain(res.stderr);
    assert.match(error ?? '', /^Error: .*hello\.wasm\/inside\.wasm: a part of the path is not a directory$/);
  });

  it('run --dir of a missing directory: one line, no uvwasi text, for a file and for a reference', async () => {
    const missing = join(work.path, 'missing-dir');
    for (const subject of ['hello.wasm', `${registry.host}/tagged/hello:v1`]) {
      const res = await cli(['run', subject, '--dir', missing]);
      assert.equal(res.code, 1, res.stderr);
      assert.deepEqual(plain(res.stderr), [`Error: --dir ${missing}: no such file or directory`]);
    }
  });

  it('run of a pulled module that is malformed: one line, no temporary path', async () => {
    const broken = Buffer.concat([hello.subarray(0, 8), Buffer.from([2, 0xff, 0xff, 0xff, 0xff, 0x0f])]);
    await pushImage('run/broken', 'v1', [{ mediaType: 'application/wasm', data: broken }]);
    const res = await cli(['run', `${registry.host}/run/broken:v1`]);
    assert.equal(res.code, 1, res.stderr);
    const [error] = plain(res.stderr);
    assert.match(error ?? '', /^Error: malformed WebAssembly/);
    assert.doesNotMatch(res.stderr, /\/tmp\/|wasm-to-oci-run-|module\.wasm/);
  });

  it('a module from stdin is named "standard input", never by its temporary path', async () => {
    const res = await cli(['push', '-', `${registry.host}/stdin/x:v1`], {}, '# a README\n');
    assert.equal(res.code, 1, res.stderr);
    assert.deepEqual(plain(res.stderr), [
      'Error: standard input is not a WebAssembly binary: it does not start with \\0asm',
    ]);
    const ok = await cli(['push', '-', `${registry.host}/stdin/x:v1`], {}, hello);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('files that are not wasm get their own message; only WebAssembly text gets the .wat hint', async () => {
    await writeFile(join(work.path, 'README.md'), '# Hello\n\nSome text.\n');
    await writeFile(join(work.path, 'empty.wasm'), '');
    await writeFile(join(work.path, 'v2.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d, 2, 0, 0, 0]));
    await writeFile(join(work.path, 'hello.wat'), '  ;; a comment\n(module (func (export "run")))\n');
    const ref = `${registry.host}/notwasm/x:v1`;
    const cases: Array<[string, string[]]> = [
      ['README.md', ['Error: README.md is not a WebAssembly binary: it does not start with \\0asm']],
      ['empty.wasm', ['Error: empty.wasm is not a WebAssembly binary: it is empty']],
      [
        'v2.wasm',
        [
          'Error: v2.wasm is not a WebAssembly binary: it is WebAssembly version 2, layer 0, which is neither a core module (version 1, layer 0) nor a component (layer 1)',
        ],
      ],
      [
        'hello.wat',
        [
          'Error: hello.wat is not a WebAssembly binary: it is WebAssembly text (.wat), not a binary',
          'Hint: assemble it first, for example with wat2wasm (or wasm-tools parse for a component)',
        ],
      ],
    ];
    for (const [file, lines] of cases) {
      const res = await cli(['push', file, ref]);
      assert.equal(res.code, 1, res.stderr);
      assert.deepEqual(plain(res.stderr), lines);
    }
  });

  it('a bare host, swapped arguments and a directory as a reference get hints that fit', async () => {
    const bare = await cli(['push', 'hello.wasm', registry.host]);
    assert.equal(bare.code, 2, bare.stderr);
    assert.deepEqual(plain(bare.stderr), [
      `Error: invalid reference "${registry.host}": the repository is missing`,
      `Hint: name one in the registry: ${registry.host}/<name>:<tag>`,
    ]);
    const swapped = await cli(['push', `${registry.host}/x:v1`, 'hello.wasm']);
    assert.equal(swapped.code, 2, swapped.stderr);
    assert.deepEqual(plain(swapped.stderr), [
      `Error: the arguments look swapped: hello.wasm is a file and ${registry.host}/x:v1 is not`,
      `Hint: push takes the file first, then the reference: push hello.wasm ${registry.host}/x:v1`,
    ]);
    await mkdir(join(work.path, 'layoutdir'), { recursive: true });
    for (const args of [
      ['push', 'hello.wasm', 'layoutdir'],
      ['pull', 'layoutdir'],
    ]) {
      const res = await cli(args);
      assert.equal(res.code, 2, res.stderr);
      const [, hint] = plain(res.stderr);
      assert.equal(
        hint,
        'Hint: layoutdir is a directory: for an OCI image layout, write oci:layoutdir (or pass --oci-layout)',
      );
    }
  });
});

describe('plain errors over TLS', () => {
  let ca: CertificateAuthority;
  let tlsRegistry: RegistryServer;
  let proxy: ForwardProxy;

  before(async () => {
    ca = await makeCa(work.path);
    const server = await makeCert(ca, work.path, 'registry', { sans: ['127.0.0.1', 'registry.test'] });
    tlsRegistry = await startRegistry({ tls: { certificate: server.certPath, key: server.keyPath } });
    proxy = await startForwardProxy();
  });
  after(async () => {
    await tlsRegistry?.stop();
    await proxy?.stop();
  });

  it('push and pull with --plain-http to a TLS registry both say to drop --plain-http', async () => {
    const push = await cli(['push', 'hello.wasm', `${tlsRegistry.host}/p/hello:v1`, '--plain-http']);
    assert.equal(push.code, 1, push.stderr);
    const pushLines = plain(push.stderr);
    assert.equal(pushLines.length, 2, push.stderr);
    assert.match(pushLines[0] ?? '', /: HTTP 400/);
    assert.equal(pushLines[1], 'Hint: the registry speaks TLS: drop --plain-http');
    const pull = await cli(['pull', `${tlsRegistry.host}/p/hello:v1`, '--plain-http', '-o', 'p.wasm']);
    assert.equal(pull.code, 1, pull.stderr);
    assert.equal(plain(pull.stderr)[1], 'Hint: the registry speaks TLS: drop --plain-http');
  });

  it('a blob digest over TLS: said to be a blob after one request, and pull of a real tag works', async () => {
    const flags = ['--ca-file', ca.certPath];
    const push = await cli(['push', 'hello.wasm', `${tlsRegistry.host}/blobby/hello:v1`, ...flags]);
    assert.equal(push.code, 0, push.stderr);
    const res = await cli([
      'pull',
      `${tlsRegistry.host}/blobby/hello@${sha256(hello)}`,
      '-o',
      'b.wasm',
      ...flags,
    ]);
    assert.equal(res.code, 1, res.stderr);
    assert.deepEqual(plain(res.stderr), [
      `Error: ${tlsRegistry.host}/blobby/hello@${sha256(hello)} is a blob (a layer or a config), not a manifest`,
      `Hint: pull and inspect take a manifest; to download the blob itself use: blob get ${tlsRegistry.host}/blobby/hello@${sha256(hello)} -o <file>`,
    ]);
    const ok = await cli(['pull', `${tlsRegistry.host}/blobby/hello:v1`, '-o', 'ok.wasm', ...flags]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(await readFile(join(work.path, 'ok.wasm')), hello);
  });

  it('TLS to a registry that speaks plain HTTP: one line, no OpenSSL source text, push and pull', async () => {
    const port = registry.host.split(':').pop();
    const extra = { HTTPS_PROXY: proxy.url, NO_PROXY: '' };
    for (const args of [
      ['pull', `registry.test:${port}/tagged/hello:v1`, '-o', 'never.wasm', '--ca-file', ca.certPath],
      ['push', 'hello.wasm', `registry.test:${port}/tls/hello:v1`, '--ca-file', ca.certPath],
    ]) {
      const res = await cli(args, extra);
      assert.equal(res.code, 1, res.stderr);
      const lines = plain(res.stderr);
      assert.match(
        lines[0] ?? '',
        new RegExp(`^Error: TLS with registry\\.test:${port} failed: wrong version number$`),
      );
      assert.match(lines[1] ?? '', /^Hint: .*--plain-http/);
      assert.equal(lines.length, 2, res.stderr);
      assert.doesNotMatch(res.stderr, /ssl3_record|openssl|SSL routines/);
    }
  });
});
