import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../harness/cli.js';
import { HELLO_WASM, tempDir } from '../harness/fixtures.js';
import { raw, rawGetManifest, sha256 } from '../harness/raw.js';
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
