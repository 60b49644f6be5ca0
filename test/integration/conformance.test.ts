import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { OciLayoutStore } from '../../src/content/layout.js';
import { MemoryStore } from '../../src/content/memory.js';
import type { ReferencePusher, Target } from '../../src/content/types.js';
import { readAll } from '../../src/content/verify.js';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { digestOf } from '../../src/oci/digest.js';
import { openRepository } from '../../src/ops/target.js';
import { parseReference } from '../../src/reference.js';
import { packClassic } from '../../src/wasm/classic.js';
import { tempDir } from '../harness/fixtures.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

/**
 * One suite, three stores: every Target must behave the same for push, fetch, exists, resolve, tag,
 * refused content and concurrent writers.
 */

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

let n = 0;
type Store = Target & ReferencePusher;
const stores: Array<[string, () => { store: Store; close(): void }]> = [
  ['MemoryStore', () => ({ store: new MemoryStore(), close: () => {} })],
  ['OciLayoutStore', () => ({ store: new OciLayoutStore(`${dir.path}/layout${n++}`), close: () => {} })],
  [
    'RemoteRepository (Distribution)',
    () => {
      const repo = openRepository(parseReference(`${registry.host}/conformance/r${n++}`), 'push');
      return { store: repo, close: () => repo.client.close() };
    },
  ],
];

const wasm = Buffer.concat([Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), Buffer.from('conformance')]);
const layer: Descriptor = { mediaType: 'application/wasm', digest: digestOf(wasm), size: wasm.length };

async function pushArtifact(store: Store, tag: string) {
  await store.push(layer, wasm);
  const packed = packClassic(layer, 'c.wasm');
  await store.push(packed.config.desc, packed.config.bytes);
  await store.pushReference(packed.desc, packed.bytes, tag);
  return packed;
}

for (const [name, open] of stores) {
  describe(`Target conformance: ${name}`, () => {
    it('push, exists and fetch a blob (from bytes and from a stream)', async () => {
      const { store, close } = open();
      try {
        assert.equal(await store.exists(layer), false);
        await store.push(layer, Readable.from([wasm.subarray(0, 5), wasm.subarray(5)]));
        assert.equal(await store.exists(layer), true);
        assert.deepEqual(await readAll(await store.fetch(layer), 1024), wasm);
        await store.push(layer, wasm); // pushing again is harmless
        assert.deepEqual(await readAll(await store.fetch(layer), 1024), wasm);
      } finally {
        close();
      }
    });

    it('refuses content that does not match its descriptor and stores nothing', async () => {
      const { store, close } = open();
      try {
        const wrong: Descriptor = { ...layer, digest: digestOf('something else') };
        await assert.rejects(store.push(wrong, wasm));
        assert.equal(await store.exists(wrong), false);
        const short: Descriptor = { ...layer, digest: digestOf(wasm.subarray(0, 4)), size: 4 };
        await assert.rejects(store.push(short, wasm));
        assert.equal(await store.exists(short), false);
      } finally {
        close();
      }
    });

    it('resolves a pushed manifest by tag and digest, tags it again, and knows unknown tags', async () => {
      const { store, close } = open();
      try {
        const packed = await pushArtifact(store, 'v1');
        const byTag = await store.resolve('v1');
        assert.equal(byTag.digest, packed.desc.digest);
        assert.equal(byTag.size, packed.desc.size);
        assert.equal((await store.resolve(packed.desc.digest)).digest, packed.desc.digest);
        await store.tag(packed.desc, 'v2');
        assert.equal((await store.resolve('v2')).digest, packed.desc.digest);
        assert.deepEqual(await readAll(await store.fetch(byTag), 4096), Buffer.from(packed.bytes));
        await assert.rejects(store.resolve('nope'), { code: 'NOT_FOUND' });
      } finally {
        close();
      }
    });

    it('survives concurrent writers: one blob pushed six times at once, eight tags at once', async () => {
      const { store, close } = open();
      try {
        const packed = await pushArtifact(store, 'base');
        await Promise.all(Array.from({ length: 6 }, () => store.push(layer, wasm)));
        assert.equal(await store.exists(layer), true);
        const tags = Array.from({ length: 8 }, (_, i) => `t${i}`);
        await Promise.all(tags.map((t) => store.tag(packed.desc, t)));
        for (const t of tags) assert.equal((await store.resolve(t)).digest, packed.desc.digest, t);
      } finally {
        close();
      }
    });
  });
}
