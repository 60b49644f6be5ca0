import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { openCache } from '../../src/cache/cache.js';
import { OciLayoutStore } from '../../src/content/layout.js';
import { copyArtifact } from '../../src/ops/copy.js';
import { pull } from '../../src/ops/pull.js';
import { push } from '../../src/ops/push.js';
import { openRepository } from '../../src/ops/target.js';
import { parseReference } from '../../src/reference.js';
import { runCli } from '../harness/cli.js';
import { CountingEngine } from '../harness/counting-engine.js';
import { HELLO_WASM, tempDir, writeLargeWasm, writeSkopeoPolicy } from '../harness/fixtures.js';
import { raw, rawGetManifest, rawPushBlob, rawPushManifest, sha256 } from '../harness/raw.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

const exec = promisify(execFile);

let a: RegistryServer;
let b: RegistryServer;
let dir: Awaited<ReturnType<typeof tempDir>>;
let manifestDigest = '';

before(async () => {
  a = await startRegistry();
  b = await startRegistry();
  dir = await tempDir();
  manifestDigest = (
    await push({ file: HELLO_WASM, reference: `${a.host}/src/hello:v1`, title: 'hello.wasm' })
  ).digest;
});
after(async () => {
  await a?.stop();
  await b?.stop();
  await dir?.remove();
});

describe('copy', () => {
  it('between two registries: the whole graph, byte-identical, with several tags', async () => {
    const result = await copyArtifact({
      source: `${a.host}/src/hello:v1`,
      destination: `${b.host}/dst/hello:x,y,z`,
    });
    assert.equal(result.digest, manifestDigest);
    assert.deepEqual(
      result.destinations,
      ['x', 'y', 'z'].map((t) => `${b.host}/dst/hello:${t}`),
    );
    const original = await rawGetManifest(a.host, 'src/hello', 'v1');
    for (const tag of ['x', 'y', 'z']) {
      assert.deepEqual((await rawGetManifest(b.host, 'dst/hello', tag)).body, original.body);
    }
    const again = await copyArtifact({
      source: `${a.host}/src/hello:v1`,
      destination: `${b.host}/dst/hello:w`,
    });
    assert.equal(again.copiedBytes, 0, 'everything was there already');
  });

  it('within one registry mounts blobs instead of uploading them', async () => {
    const engine = new CountingEngine();
    try {
      const result = await copyArtifact({
        source: `${a.host}/src/hello:v1`,
        destination: `${a.host}/other/hello:v1`,
        engine,
      });
      assert.equal(result.mountedBlobs, 2);
      assert.equal(result.copiedBytes, 0);
      assert.deepEqual(engine.blobUploads(), [], 'no blob upload requests');
      assert.ok(engine.requests.some((r) => r.method === 'POST' && r.status === 201));
      assert.equal(
        (await rawGetManifest(a.host, 'other/hello', 'v1')).headers['docker-content-digest'],
        manifestDigest,
      );
    } finally {
      engine.close();
    }
  });

  it('registry -> layout -> registry keeps every digest; skopeo reads our layout and we read skopeo’s', async () => {
    const layout = join(dir.path, 'layout');
    await copyArtifact({ source: `${a.host}/src/hello:v1`, destination: `oci:${layout}:v1` });
    const back = await copyArtifact({
      source: `oci:${layout}:v1`,
      destination: `${b.host}/roundtrip/hello:v1`,
    });
    assert.equal(back.digest, manifestDigest);
    assert.deepEqual(
      (await rawGetManifest(b.host, 'roundtrip/hello', 'v1')).body,
      (await rawGetManifest(a.host, 'src/hello', 'v1')).body,
    );

    const policy = await writeSkopeoPolicy(dir.path);
    const inspected = await exec('skopeo', ['--policy', policy, 'inspect', '--raw', `oci:${layout}:v1`]);
    assert.equal(sha256(inspected.stdout), manifestDigest);
    await exec('skopeo', [
      '--policy',
      policy,
      'copy',
      '-q',
      '--dest-tls-verify=false',
      `oci:${layout}:v1`,
      `docker://${b.host}/byskopeo/hello:v1`,
    ]);
    assert.equal(
      (await rawGetManifest(b.host, 'byskopeo/hello', 'v1')).headers['docker-content-digest'],
      manifestDigest,
    );

    const skopeoLayout = join(dir.path, 'skopeo-layout');
    await exec('skopeo', [
      '--policy',
      policy,
      'copy',
      '-q',
      '--src-tls-verify=false',
      `docker://${a.host}/src/hello:v1`,
      `oci:${skopeoLayout}:s1`,
    ]);
    const out = join(dir.path, 'from-skopeo.wasm');
    await pull({ reference: `oci:${skopeoLayout}:s1`, output: out });
    assert.deepEqual(await readFile(out), await readFile(HELLO_WASM));
  });

  it('--recursive copies the referrers listed under the sha256-<hex> tag', async () => {
    const hex = manifestDigest.slice('sha256:'.length);
    const empty = Buffer.from('{}');
    const emptyDigest = await rawPushBlob(a.host, 'src/hello', empty);
    const signature = Buffer.from('not really a signature');
    const sigDigest = await rawPushBlob(a.host, 'src/hello', signature);
    const original = await rawGetManifest(a.host, 'src/hello', 'v1');
    const referrer = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/vnd.example.signature',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: 2 },
        layers: [{ mediaType: 'application/vnd.example.sig', digest: sigDigest, size: signature.length }],
        subject: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: manifestDigest,
          size: original.body.length,
        },
      }),
    );
    // Pushed by digest: a referrer needs no tag of its own.
    const referrerDigest = await rawPushManifest(
      a.host,
      'src/hello',
      sha256(referrer),
      referrer,
      'application/vnd.oci.image.manifest.v1+json',
    );
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: referrerDigest,
            size: referrer.length,
            artifactType: 'application/vnd.example.signature',
          },
        ],
      }),
    );
    await rawPushManifest(
      a.host,
      'src/hello',
      `sha256-${hex}`,
      index,
      'application/vnd.oci.image.index.v1+json',
    );

    const result = await copyArtifact({
      source: `${a.host}/src/hello:v1`,
      destination: `${b.host}/signed/hello:v1`,
      recursive: true,
    });
    assert.equal(result.referrers, 1);
    const copiedIndex = await raw(
      'GET',
      `http://${b.host}/v2/signed/hello/manifests/sha256-${hex}`,
      undefined,
      {
        accept: 'application/vnd.oci.image.index.v1+json',
      },
    );
    assert.deepEqual(copiedIndex.body, index);
    const copiedReferrer = await rawGetManifest(b.host, 'signed/hello', referrerDigest);
    assert.deepEqual(copiedReferrer.body, referrer);
  });
});

describe('cache', () => {
  it('a second pull of a 64 MiB module downloads zero blob bytes; a corrupt cached blob is fetched again', async () => {
    const file = join(dir.path, 'big.wasm');
    await writeLargeWasm(file, 64 * 1024 * 1024);
    const pushed = await push({ file, reference: `${a.host}/cache/big:v1` });
    const cache = openCache(join(dir.path, 'cache'));
    const engine = new CountingEngine();
    const blobGets = () =>
      engine.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).length;
    try {
      const first = await pull({
        reference: `${a.host}/cache/big:v1`,
        output: join(dir.path, 'p1.wasm'),
        cache,
        engine,
      });
      assert.equal(first.fromCache, false);
      assert.equal(blobGets(), 1);
      const second = await pull({
        reference: `${a.host}/cache/big:v1`,
        output: join(dir.path, 'p2.wasm'),
        cache,
        engine,
      });
      assert.equal(second.fromCache, true);
      assert.equal(blobGets(), 1, 'no blob was downloaded the second time');
      assert.equal(sha256(await readFile(join(dir.path, 'p2.wasm'))), pushed.layer.digest);

      const cached = cache.store.blobPath(pushed.layer.digest);
      const bytes = await readFile(cached);
      bytes[100] = (bytes[100] ?? 0) ^ 0xff;
      await writeFile(cached, bytes);
      const third = await pull({
        reference: `${a.host}/cache/big:v1`,
        output: join(dir.path, 'p3.wasm'),
        cache,
        engine,
      });
      assert.equal(third.fromCache, false, 'the corrupt cached copy was not used');
      assert.equal(blobGets(), 2);
      assert.equal(sha256(await readFile(join(dir.path, 'p3.wasm'))), pushed.layer.digest);
      assert.equal(sha256(await readFile(cached)), pushed.layer.digest, 'the cache holds a good copy again');
    } finally {
      engine.close();
    }
  });

  it('prunes least recently used blobs over its bound', async () => {
    const { cacheEntries, pruneCache } = await import('../../src/cache/cache.js');
    const cache = openCache(join(dir.path, 'small-cache'), 300);
    for (const [name, size] of [
      ['one', 200],
      ['two', 200],
    ] as const) {
      const data = Buffer.alloc(size, name);
      await cache.store.push({ mediaType: 'x', digest: sha256(data), size }, data);
      await new Promise((r) => setTimeout(r, 20));
    }
    const result = await pruneCache(cache);
    assert.equal(result.removed, 1);
    const left = await cacheEntries(cache);
    assert.deepEqual(
      left.map((e) => e.digest),
      [sha256(Buffer.alloc(200, 'two'))],
      'the older blob went',
    );
  });
});

describe('layout under concurrent processes', () => {
  it('eight processes tagging one layout at once lose no tag', async () => {
    const layout = join(dir.path, 'shared-layout');
    await push({ file: HELLO_WASM, reference: `oci:${layout}:base` });
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => runCli(['tag', `oci:${layout}:base`, `p${i}a`, `p${i}b`])),
    );
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const tags = await new OciLayoutStore(layout).tags();
    assert.equal(tags.length, 17);
    for (let i = 0; i < 8; i++) assert.ok(tags.includes(`p${i}a`) && tags.includes(`p${i}b`), `p${i}`);
  });
});

describe('tags pagination', () => {
  it('follows Link headers', async () => {
    for (const t of ['t1', 't2', 't3', 't4', 't5']) {
      await copyArtifact({ source: `${a.host}/src/hello:v1`, destination: `${a.host}/paged/hello:${t}` });
    }
    const repo = openRepository(parseReference(`${a.host}/paged/hello`), 'pull');
    try {
      assert.deepEqual((await repo.tags({ pageSize: 2 })).sort(), ['t1', 't2', 't3', 't4', 't5']);
    } finally {
      repo.client.close();
    }
  });
});
