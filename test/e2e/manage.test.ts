import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../harness/cli.js';
import { HELLO_WASM, tempDir } from '../harness/fixtures.js';
import { rawGetManifest, sha256 } from '../harness/raw.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

let registry: RegistryServer;
let work: Awaited<ReturnType<typeof tempDir>>;
let module: Buffer;

before(async () => {
  registry = await startRegistry();
  work = await tempDir();
  module = await readFile(HELLO_WASM);
});
after(async () => {
  await registry?.stop();
  await work?.remove();
});

const cli = (args: string[]) =>
  runCli(args, { cwd: work.path, env: { HOME: work.path, XDG_CACHE_HOME: join(work.path, 'cache') } });

describe('layouts and housekeeping from the command line', () => {
  it('push to a layout, pull from it, copy it to a registry and back, with identical digests', async () => {
    const push = await cli(['push', HELLO_WASM, 'oci:layout:v1']);
    assert.equal(push.code, 0, push.stderr);
    const digest = /Digest: (\S+)/.exec(push.stdout)?.[1] ?? '';
    const pull = await cli(['pull', '--oci-layout', 'layout:v1', '-o', 'from-layout.wasm']);
    assert.equal(pull.code, 0, pull.stderr);
    assert.deepEqual(await readFile(join(work.path, 'from-layout.wasm')), module);

    const up = await cli(['copy', 'oci:layout:v1', `${registry.host}/m/hello:v1,stable`]);
    assert.equal(up.code, 0, up.stderr);
    assert.match(
      up.stdout,
      new RegExp(
        `^Copied: oci:layout:v1\nTo: ${registry.host}/m/hello:v1\nTo: ${registry.host}/m/hello:stable\nDigest: ${digest}\n`,
      ),
    );
    assert.equal(
      (await rawGetManifest(registry.host, 'm/hello', 'stable')).headers['docker-content-digest'],
      digest,
    );
    const down = await cli(['copy', `${registry.host}/m/hello:stable`, '--to-oci-layout', 'back']);
    assert.equal(down.code, 0, down.stderr);
    const resolved = await cli(['resolve', 'oci:back:stable']);
    assert.equal(resolved.stdout, `${digest}\n`);
  });

  it('tags, resolve, tag, manifest get/delete, blob get', async () => {
    const ref = `${registry.host}/m/hello`;
    assert.equal((await cli(['tag', `${ref}:v1`, 'extra'])).code, 0);
    const tags = await cli(['tags', ref]);
    assert.deepEqual(tags.stdout.trim().split('\n').sort(), ['extra', 'stable', 'v1']);
    assert.deepEqual(JSON.parse((await cli(['tags', ref, '--json'])).stdout).tags.sort(), [
      'extra',
      'stable',
      'v1',
    ]);

    const resolved = JSON.parse((await cli(['resolve', `${ref}:v1`, '--json'])).stdout);
    const raw = await cli(['manifest', 'get', `${ref}:v1`]);
    assert.equal(sha256(raw.stdout), resolved.manifest.digest, 'manifest get prints the exact bytes');
    const pretty = await cli(['manifest', 'get', `${ref}:v1`, '--pretty']);
    assert.match(pretty.stdout, /^\{\n {2}"schemaVersion": 2,/);

    const layer = JSON.parse(raw.stdout).layers[0].digest as string;
    const blob = await cli(['blob', 'get', `${ref}@${layer}`, '-o', 'blob.wasm']);
    assert.equal(blob.code, 0, blob.stderr);
    assert.deepEqual(await readFile(join(work.path, 'blob.wasm')), module);
    const noDigest = await cli(['blob', 'get', `${ref}:v1`, '-o', 'x']);
    assert.equal(noDigest.code, 2);

    const unasked = await cli(['manifest', 'delete', `${ref}:extra`]);
    assert.equal(unasked.code, 2, 'stdin is no terminal: --force is needed');
    assert.match(
      unasked.stderr,
      /^Error: manifest delete asks for confirmation, and stdin is not a terminal\nHint: add --force/,
    );
    assert.equal((await cli(['resolve', `${ref}:extra`])).code, 0, 'nothing was deleted');
    const del = await cli(['manifest', 'delete', `${ref}:extra`, '--force']);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout, `Deleted: ${resolved.manifest.digest}\n`);
    assert.match(
      del.stderr,
      /Resolved tag extra to sha256:[0-9a-f]{64}: the manifest is deleted with every tag/,
    );
    const gone = await cli(['pull', `${ref}:v1`, '-o', 'gone.wasm', '--no-cache']);
    assert.equal(gone.code, 1);
  });

  it('cache: pull fills it, ls lists it, prune --all empties it', async () => {
    assert.equal((await cli(['push', HELLO_WASM, `${registry.host}/c/hello:v1`])).code, 0);
    assert.equal((await cli(['pull', `${registry.host}/c/hello:v1`, '-o', 'c1.wasm'])).code, 0);
    const second = await cli(['pull', `${registry.host}/c/hello:v1`, '-o', 'c2.wasm', '--json']);
    assert.equal(JSON.parse(second.stdout).fromCache, true);
    const ls = await cli(['cache', 'ls']);
    assert.match(ls.stdout, new RegExp(`^${sha256(module)}  ${module.length}  `));
    const prune = await cli(['cache', 'prune', '--all']);
    assert.match(prune.stdout, /^Removed: 1 blobs/);
    assert.equal((await cli(['cache', 'ls'])).stdout, '');
  });
});
