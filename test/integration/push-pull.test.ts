import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileDigestCache } from '../../src/cache/digest-cache.js';
import { hasCode } from '../../src/errors.js';
import { inspectArtifact } from '../../src/ops/inspect.js';
import { pull } from '../../src/ops/pull.js';
import { push } from '../../src/ops/push.js';
import { IN_MEMORY_LIMIT } from '../../src/wasm/pack.js';
import { CountingEngine } from '../harness/counting-engine.js';
import { HELLO_WASM, tempDir, writeLargeWasm } from '../harness/fixtures.js';
import { raw, rawGetManifest, rawPushCncf, sha256 } from '../harness/raw.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

let registry: RegistryServer;
let dir: Awaited<ReturnType<typeof tempDir>>;

before(async () => {
  registry = await startRegistry();
  dir = await tempDir();
});
after(async () => {
  await registry?.stop();
  await dir?.remove();
});

describe('push and pull against the real Distribution registry', () => {
  it('round-trips testdata/hello.wasm with the original tool’s manifest bytes', async () => {
    const ref = `${registry.host}/hello:v1`;
    const module = await readFile(HELLO_WASM);
    const pushed = await push({ file: HELLO_WASM, reference: ref, title: 'testdata/hello.wasm' });
    assert.equal(pushed.reference, ref);
    assert.equal(pushed.size, module.length);
    assert.equal(pushed.kind, 'module');
    assert.equal(pushed.defaultedTag, false);

    // What the registry stores is exactly the Go-style manifest (built here by hand, not by the library).
    const expected =
      `{"schemaVersion":2,"config":{"mediaType":"application/vnd.wasm.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},` +
      `"layers":[{"mediaType":"application/vnd.wasm.content.layer.v1+wasm","digest":"${sha256(module)}","size":${module.length},"annotations":{"org.opencontainers.image.title":"testdata/hello.wasm"}}]}`;
    const got = await rawGetManifest(registry.host, 'hello', 'v1');
    assert.equal(got.status, 200);
    assert.equal(got.body.toString(), expected);
    assert.equal(got.headers['docker-content-digest'], pushed.digest);
    assert.equal(pushed.digest, sha256(expected));

    const out = join(dir.path, 'hello-out.wasm');
    const pulled = await pull({ reference: ref, output: out });
    assert.deepEqual(await readFile(out), module);
    assert.equal(pulled.digest, sha256(module));
    assert.equal(pulled.size, module.length);
    assert.equal(pulled.manifest.digest, pushed.digest);
  });

  it('uploads only missing blobs: a re-push sends no blob bytes', async () => {
    const engine = new CountingEngine();
    try {
      const first = await push({ file: HELLO_WASM, reference: `${registry.host}/dedupe:a`, engine });
      assert.ok(first.uploadedBytes > 0);
      engine.requests.length = 0;
      const again = await push({ file: HELLO_WASM, reference: `${registry.host}/dedupe:b`, engine });
      assert.equal(again.uploadedBytes, 0);
      assert.deepEqual(engine.blobUploads(), []);
      assert.ok(engine.requests.some((r) => r.method === 'HEAD' && r.path.includes('/blobs/')));
      assert.equal(again.digest, first.digest);
    } finally {
      engine.close();
    }
  });

  it('streams a large module in one pass, and skips it on re-push through the digest cache', async () => {
    const file = join(dir.path, 'large.wasm');
    const size = IN_MEMORY_LIMIT + 3 * 1024 * 1024 + 17;
    await writeLargeWasm(file, size);
    const cache = new FileDigestCache(join(dir.path, 'cache', 'digests.json'));
    const engine = new CountingEngine();
    try {
      const first = await push({ file, reference: `${registry.host}/large:v1`, engine, digestCache: cache });
      const methods = engine.blobUploads().map((r) => r.method);
      // One streamed PATCH and its committing PUT for the module, one monolithic PUT for the 2-byte
      // config (sent while the module streams, so the order varies).
      assert.deepEqual(methods.sort(), ['PATCH', 'PUT', 'PUT']);
      assert.equal(first.size, size);
      assert.equal(first.layer.digest, sha256(await readFile(file)));

      engine.requests.length = 0;
      const again = await push({ file, reference: `${registry.host}/large:v2`, engine, digestCache: cache });
      assert.deepEqual(engine.blobUploads(), [], 'an unchanged module is not uploaded again');
      assert.equal(again.digest, first.digest);

      const out = join(dir.path, 'large-out.wasm');
      await pull({ reference: `${registry.host}/large:v2`, output: out });
      assert.equal((await stat(out)).size, size);
      assert.equal(sha256(await readFile(out)), first.layer.digest);
    } finally {
      engine.close();
    }
  });

  it('a failed pull writes nothing and leaves an existing file untouched', async () => {
    const out = join(dir.path, 'keep.wasm');
    await writeFile(out, 'precious');
    await assert.rejects(pull({ reference: `${registry.host}/hello:missing`, output: out }), (err) =>
      hasCode(err, 'NOT_FOUND'),
    );
    assert.equal(await readFile(out, 'utf8'), 'precious');

    // Corrupt the stored blob behind the registry's back: the digest check must refuse it.
    const module = Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0, 1, 2, 3]);
    const src = join(dir.path, 'corrupt-me.wasm');
    await writeFile(src, module);
    const pushed = await push({ file: src, reference: `${registry.host}/corrupt:v1` });
    const hex = pushed.layer.digest.slice('sha256:'.length);
    const data = join(registry.root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    await writeFile(data, Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 9, 9, 9, 9]));
    await assert.rejects(pull({ reference: `${registry.host}/corrupt:v1`, output: out }), (err) =>
      hasCode(err, 'DIGEST_MISMATCH'),
    );
    assert.equal(await readFile(out, 'utf8'), 'precious');
    const { readdir } = await import('node:fs/promises');
    assert.deepEqual(
      (await readdir(dir.path)).filter((f) => f.includes('.part')),
      [],
      'no temporary file is left behind',
    );
  });

  it('a pull sends one manifest GET and one blob GET, and looks at its output meanwhile', async () => {
    await push({ file: HELLO_WASM, reference: `${registry.host}/two-gets:v1` });
    const engine = new CountingEngine();
    try {
      for (let run = 0; run < 15; run++) {
        engine.requests.length = 0;
        const out = join(dir.path, `two-gets-${run}.wasm`);
        const pulled = await pull({ reference: `${registry.host}/two-gets:v1`, output: out, engine });
        // The manifest the resolve fetched is read again from memory, not asked for again.
        assert.deepEqual(
          engine.requests.map((r) => `${r.method} ${r.path.includes('/manifests/') ? 'manifest' : 'blob'}`),
          ['GET manifest', 'GET blob'],
        );
        assert.equal(sha256(await readFile(out)), pulled.digest);
      }
      // Onto a directory: the output's error comes once the manifest is known, and nothing is written;
      // for a reference that does not exist, the missing manifest is what is reported.
      const { mkdir, readdir } = await import('node:fs/promises');
      const folder = join(dir.path, 'a-folder');
      await mkdir(folder);
      await assert.rejects(
        pull({ reference: `${registry.host}/two-gets:v1`, output: folder, engine }),
        (err) => hasCode(err, 'FILE'),
      );
      await assert.rejects(
        pull({ reference: `${registry.host}/two-gets:missing`, output: folder, engine }),
        (err) => hasCode(err, 'NOT_FOUND'),
      );
      assert.deepEqual(await readdir(folder), []);
    } finally {
      engine.close();
    }
  });

  it('pulls a CNCF-layout artifact pushed by raw HTTP requests (not through the library)', async () => {
    const module = await readFile(HELLO_WASM);
    const config = Buffer.from(
      JSON.stringify({
        created: '2024-05-01T00:00:00Z',
        author: null,
        architecture: 'wasm',
        os: 'wasip1',
        layerDigests: [sha256(module)],
        component: null,
      }),
    );
    const { manifest: manifestDigest, layer: layerDigest } = await rawPushCncf(
      registry.host,
      'cncf/hello',
      '1.0',
      module,
      config,
      { 'org.opencontainers.image.title': 'hello.wasm' },
    );
    const out = join(dir.path, 'cncf.wasm');
    const pulled = await pull({ reference: `${registry.host}/cncf/hello:1.0`, output: out });
    assert.deepEqual(await readFile(out), module);
    assert.equal(pulled.mediaType, 'application/wasm');
    assert.equal(pulled.manifest.digest, manifestDigest);

    // By digest too.
    const byDigest = await pull({ reference: `${registry.host}/cncf/hello@${manifestDigest}`, output: out });
    assert.equal(byDigest.digest, layerDigest);
  });

  it('refuses to push by digest and leaves the registry untouched', async () => {
    await assert.rejects(
      push({ file: HELLO_WASM, reference: `${registry.host}/nodigest@sha256:${'a'.repeat(64)}` }),
      (err) => hasCode(err, 'USAGE'),
    );
    const res = await raw('GET', `http://${registry.host}/v2/nodigest/tags/list`);
    assert.equal(res.status, 404);
  });

  it('inspect reads the manifest once, on one client, and each blob once', async () => {
    await push({ file: HELLO_WASM, reference: `${registry.host}/inspect-once:v1` });
    const engine = new CountingEngine();
    try {
      const report = await inspectArtifact({ reference: `${registry.host}/inspect-once:v1`, engine });
      assert.equal(report.format, 'classic');
      assert.equal(report.wasm?.kind, 'module');
      const manifestGets = engine.requests.filter((r) => r.path.includes('/manifests/'));
      assert.deepEqual(
        manifestGets.map((r) => `${r.method} ${r.status}`),
        ['GET 200'],
      );
      // The config and the layer, each once.
      assert.equal(engine.requests.filter((r) => r.path.includes('/blobs/')).length, 2);
    } finally {
      engine.close();
    }
  });
});
