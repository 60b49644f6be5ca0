import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore } from './content/memory.js';
import { readAll } from './content/verify.js';
import { CopySession, copy, fetchManifest, type ProgressEvent } from './copy.js';
import { WasmOciError } from './errors.js';
import type { Descriptor } from './oci/descriptor.js';
import { digestOf } from './oci/digest.js';
import { serializeIndex } from './oci/manifest.js';
import { packClassic } from './wasm/classic.js';

const wasm = Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);

async function artifact(store: MemoryStore, tag: string) {
  const layer = {
    mediaType: 'application/vnd.wasm.content.layer.v1+wasm',
    digest: digestOf(wasm),
    size: wasm.length,
  };
  await store.push(layer, wasm);
  const packed = packClassic(layer, 'm.wasm');
  await store.push(packed.config.desc, packed.config.bytes);
  await store.pushReference(packed.desc, packed.bytes, tag);
  return { layer, packed };
}

/** Counts what a destination is asked to store. */
class CountingStore extends MemoryStore {
  pushed: string[] = [];
  override async push(desc: Descriptor, content: Parameters<MemoryStore['push']>[1]) {
    this.pushed.push(desc.digest);
    return super.push(desc, content);
  }
}

describe('copy', () => {
  it('copies a manifest graph children first, tags the root, and skips what the destination has', async () => {
    const src = new MemoryStore();
    const { layer, packed } = await artifact(src, 'v1');
    const dst = new CountingStore();
    const events: ProgressEvent[] = [];
    const root = await copy(src, 'v1', dst, 'v2', { tags: ['v3'], onProgress: (e) => events.push(e) });
    assert.deepEqual(root, packed.desc);
    assert.deepEqual(dst.pushed.slice(-1), [packed.desc.digest], 'the manifest is stored last');
    assert.deepEqual(
      new Set(dst.pushed),
      new Set([layer.digest, packed.config.desc.digest, packed.desc.digest]),
    );
    assert.deepEqual(await dst.resolve('v2'), packed.desc);
    assert.deepEqual(await dst.resolve('v3'), packed.desc);
    assert.deepEqual(await readAll(await dst.fetch(layer), 100), wasm);
    assert.ok(
      events.some((e) => e.type === 'progress' && e.desc.digest === layer.digest && e.bytes === wasm.length),
    );

    dst.pushed = [];
    const again: ProgressEvent[] = [];
    await copy(src, 'v1', dst, 'v4', { onProgress: (e) => again.push(e) });
    assert.deepEqual(dst.pushed, [packed.desc.digest], 'only the root manifest is written again');
    assert.equal(again.filter((e) => e.type === 'skip').length, 2);
  });

  it('copies a shared blob once for an index of two manifests', async () => {
    const src = new MemoryStore();
    const a = await artifact(src, 'a');
    const other = Buffer.from('{"x":1}');
    const otherConfig = {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: digestOf(other),
      size: other.length,
    };
    await src.push(otherConfig, other);
    const m2 = Buffer.from(JSON.stringify({ schemaVersion: 2, config: otherConfig, layers: [a.layer] }));
    const m2desc = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: digestOf(m2),
      size: m2.length,
    };
    await src.push(m2desc, m2);
    const index = serializeIndex({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [a.packed.desc, m2desc],
    });
    const idesc = {
      mediaType: 'application/vnd.oci.image.index.v1+json',
      digest: digestOf(index),
      size: index.length,
    };
    await src.pushReference(idesc, index, 'multi');
    const dst = new CountingStore();
    await copy(src, 'multi', dst, 'multi');
    assert.equal(dst.pushed.filter((x) => x === a.layer.digest).length, 1);
    assert.equal(dst.pushed.length, 6);
  });

  it('refuses corrupt source content and leaves the tag alone', async () => {
    const src = new MemoryStore();
    const { layer } = await artifact(src, 'v1');
    // Corrupt the stored layer behind the store's back.
    const stored = src.get(layer.digest);
    assert.ok(stored);
    stored[7] = 9;
    const dst = new MemoryStore();
    await assert.rejects(copy(src, 'v1', dst, 'v1'), { code: 'DIGEST_MISMATCH' });
    await assert.rejects(dst.resolve('v1'), { code: 'NOT_FOUND' });
  });

  it('stops when aborted', async () => {
    const src = new MemoryStore();
    await artifact(src, 'v1');
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(copy(src, 'v1', new MemoryStore(), 'v1', { signal: controller.signal }), {
      code: 'ABORTED',
    });
  });
});

/** Tracks how many requests are in flight on either side (each takes a few event-loop turns). */
class InFlight {
  now = 0;
  max = 0;
  async around<T>(job: () => Promise<T>): Promise<T> {
    this.now++;
    this.max = Math.max(this.max, this.now);
    try {
      await new Promise((r) => setImmediate(r));
      return await job();
    } finally {
      this.now--;
    }
  }
}

class SlowStore extends MemoryStore {
  constructor(private readonly flight: InFlight) {
    super();
  }
  override exists(desc: Descriptor) {
    return this.flight.around(() => super.exists(desc));
  }
  override fetch(desc: Descriptor) {
    return this.flight.around(() => super.fetch(desc));
  }
  override push(desc: Descriptor, content: Parameters<MemoryStore['push']>[1]) {
    return this.flight.around(() => super.push(desc, content));
  }
}

describe('copy within its concurrency', () => {
  it('keeps every request (checks, manifest fetches, transfers) of a 2000-layer copy within --concurrency', async () => {
    const flight = new InFlight();
    const src = new SlowStore(flight);
    const layers: Descriptor[] = [];
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(`layer ${i}`);
      const desc = { mediaType: 'application/octet-stream', digest: digestOf(bytes), size: bytes.length };
      await src.push(desc, bytes);
      layers.push(desc);
    }
    const config = Buffer.from('{}');
    const configDesc = { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(config), size: 2 };
    await src.push(configDesc, config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: configDesc,
        layers,
      }),
    );
    const root = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: digestOf(manifest),
      size: manifest.length,
    };
    await src.pushReference(root, manifest, 'big');
    flight.max = 0;
    const dst = new SlowStore(flight);
    await copy(src, 'big', dst, 'big', { concurrency: 3 });
    assert.ok(flight.max <= 3, `${flight.max} requests at once`);
    assert.ok(flight.max >= 2, 'and it did run requests concurrently');
    for (const l of layers) assert.ok(await dst.exists(l));
  });

  it('sends again what a destination lost and retries the manifest (MANIFEST_BLOB_UNKNOWN)', async () => {
    const src = new MemoryStore();
    const { layer, packed } = await artifact(src, 'v1');
    let refusals = 0;
    class Forgetful extends MemoryStore {
      forgotten: string[] = [];
      forget(digest: string) {
        this.forgotten.push(digest);
      }
      override async pushReference(desc: Descriptor, bytes: Uint8Array, ref: string) {
        if (refusals++ === 0) {
          const { WasmOciError } = await import('./errors.js');
          throw new WasmOciError('REGISTRY', 'push manifest: HTTP 400 (MANIFEST_BLOB_UNKNOWN)', {
            details: { missingContent: true },
          });
        }
        return super.pushReference(desc, bytes, ref);
      }
    }
    const dst = new Forgetful();
    await copy(src, 'v1', dst, 'v1');
    assert.equal(refusals, 2, 'refused once, accepted the second time');
    assert.deepEqual(new Set(dst.forgotten), new Set([layer.digest, packed.config.desc.digest]));
    assert.deepEqual(await dst.resolve('v1'), packed.desc);
  });
});

describe('CopySession', () => {
  it('sends a blob that copies share once, keeps every request under one limit, and retries what failed', async () => {
    const src = new MemoryStore();
    const { layer, packed } = await artifact(src, 'v1');
    await src.pushReference(packed.desc, packed.bytes, 'v2');
    /** Counts requests in flight and fails the first fetch of the layer. */
    class Flaky extends MemoryStore {
      active = 0;
      peak = 0;
      failOnce = true;
      /** No bytes in hand: every blob goes through fetch(). */
      override bytesOf(): undefined {
        return undefined;
      }
      override async fetch(desc: Descriptor) {
        this.active++;
        this.peak = Math.max(this.peak, this.active);
        try {
          await new Promise((r) => setTimeout(r, 5));
          if (desc.digest === layer.digest && this.failOnce) {
            this.failOnce = false;
            throw new WasmOciError('NETWORK', 'connection lost');
          }
          return await src.fetch(desc);
        } finally {
          this.active--;
        }
      }
    }
    const flaky = new Flaky();
    for (const d of [layer, packed.config.desc]) await flaky.push(d, await readAll(await src.fetch(d), 100));
    await flaky.pushReference(packed.desc, packed.bytes, 'v1');
    await flaky.pushReference(packed.desc, packed.bytes, 'v2');
    const dst = new CountingStore();
    const session = new CopySession(1);
    // The first copy fails on the layer; the failure is not remembered by the session.
    await assert.rejects(copy(flaky, 'v1', dst, 'v1', { session }), /connection lost/);
    const copies = await Promise.all(
      ['v1', 'v2'].map((tag) => copy(flaky, tag, dst, tag, { session, concurrency: 8 })),
    );
    assert.deepEqual(
      copies.map((d) => d.digest),
      [packed.desc.digest, packed.desc.digest],
    );
    assert.equal(dst.pushed.filter((d) => d === layer.digest).length, 1, 'the shared layer went once');
    assert.equal(flaky.peak, 1, "the session's limit of 1 holds for both copies (not their own 8)");
    assert.equal(await session.run(async () => 'own request'), 'own request');
  });

  it('takes a resolved root descriptor without resolving it again', async () => {
    const src = new MemoryStore();
    const { packed } = await artifact(src, 'v1');
    let resolved = 0;
    const counting = Object.assign(Object.create(src) as MemoryStore, {
      resolve: (ref: string) => {
        resolved++;
        return src.resolve(ref);
      },
    });
    const dst = new MemoryStore();
    assert.deepEqual(await copy(counting, packed.desc, dst, 'v9'), packed.desc);
    assert.equal(resolved, 0);
    assert.deepEqual(await dst.resolve('v9'), packed.desc);
  });
});

describe('copy order', () => {
  it('starts a manifest’s children largest first (the module before its config), then the manifest', async () => {
    const src = new MemoryStore();
    const { layer, packed } = await artifact(src, 'v1');
    assert.ok(layer.size > packed.config.desc.size);
    for (const concurrency of [1, 4]) {
      const dst = new CountingStore();
      await copy(src, 'v1', dst, 'v1', { concurrency });
      assert.deepEqual(dst.pushed, [layer.digest, packed.config.desc.digest, packed.desc.digest]);
      assert.equal((await dst.resolve('v1')).digest, packed.desc.digest);
    }
  });
});

describe('fetchManifest', () => {
  const manifest = Buffer.from('{"schemaVersion":2,"layers":[]}');
  const desc: Descriptor = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: digestOf(manifest),
    size: manifest.length,
  };
  /** A source that holds `held` and fails any fetch: what fetchManifest reads shows which path it took. */
  const holding = (held: Buffer | undefined) => ({
    fetched: 0,
    bytesOf: () => held,
    async fetch(): Promise<never> {
      this.fetched++;
      throw new WasmOciError('NOT_FOUND', 'fetched');
    },
  });

  it('takes the bytes a source holds, without a fetch', async () => {
    const src = holding(manifest);
    assert.deepEqual(await fetchManifest(src, desc), manifest);
    assert.equal(src.fetched, 0);
  });

  it('checks held bytes again: other bytes of the same length are refused', async () => {
    const forged = Buffer.from(manifest);
    forged[forged.length - 2] = 0x20;
    const src = holding(forged);
    await assert.rejects(
      fetchManifest(src, desc),
      (err) => err instanceof WasmOciError && err.code === 'DIGEST_MISMATCH',
    );
    await assert.rejects(
      fetchManifest(holding(manifest.subarray(1)), desc),
      (err) => err instanceof WasmOciError && err.code === 'SIZE_MISMATCH',
    );
  });

  it('fetches when the source holds nothing for the descriptor', async () => {
    const src = holding(undefined);
    await assert.rejects(fetchManifest(src, desc), /fetched/);
    assert.equal(src.fetched, 1);
    const store = new MemoryStore();
    await store.push(desc, manifest);
    assert.deepEqual(await fetchManifest(store, desc), manifest);
  });
});
