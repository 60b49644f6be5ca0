import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { digestOf, referrersTag } from '../oci/digest.js';
import { parseManifest, serializeIndex, serializeManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';
import { MemoryStore } from './memory.js';
import {
  addReferrer,
  listReferrers,
  type ReferrersIndexOptions,
  referrerEntry,
  referrerOf,
  removeReferrer,
} from './referrers.js';

const EMPTY: Descriptor = { mediaType: MediaType.ociEmpty, digest: digestOf('{}'), size: 2 };

/** A store holding a subject manifest; `refer()` adds a referrer manifest of it (not indexed). */
function fixture() {
  const store = new MemoryStore();
  store.add(EMPTY.mediaType, Buffer.from('{}'));
  const subject = store.add(
    MediaType.ociManifest,
    Buffer.from(
      serializeManifest({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: EMPTY, layers: [] }),
    ),
  );
  let n = 0;
  const refer = (artifactType = 'application/vnd.example.sbom'): Descriptor => {
    const bytes = Buffer.from(
      serializeManifest({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        artifactType,
        config: EMPTY,
        layers: [],
        subject,
        annotations: { 'org.example.n': String(n++) },
      }),
    );
    const desc = store.add(MediaType.ociManifest, bytes);
    return (referrerOf(desc, bytes) as { entry: Descriptor }).entry;
  };
  return { store, subject, refer };
}

/** Records sleeps instead of waiting. */
function noWait(): ReferrersIndexOptions & { slept: number[] } {
  const slept: number[] = [];
  return { slept, sleep: async (ms) => void slept.push(ms), random: () => 0.5 };
}

async function listed(store: MemoryStore, subject: Descriptor): Promise<string[]> {
  return (await listReferrers(store, subject)).referrers.map((d) => d.digest);
}

describe('referrerEntry / referrerOf', () => {
  it('copies artifactType and annotations; falls back to the config media type', () => {
    const { refer, subject } = fixture();
    const entry = refer('application/vnd.example.sig');
    assert.equal(entry.artifactType, 'application/vnd.example.sig');
    assert.equal(entry.annotations?.['org.example.n'], '0');
    const bytes = Buffer.from(
      serializeManifest({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: 'application/vnd.example.config', digest: EMPTY.digest, size: 2 },
        layers: [],
        subject,
      }),
    );
    const desc = { mediaType: MediaType.ociManifest, digest: digestOf(bytes), size: bytes.length };
    const parsed = parseManifest(bytes);
    assert.deepEqual(referrerEntry(desc, parsed), {
      ...desc,
      artifactType: 'application/vnd.example.config',
    });
    assert.equal(referrerOf(desc, Buffer.from('not json')), undefined);
    assert.equal(
      referrerOf(subject, Buffer.from(serializeIndex({ schemaVersion: 2, manifests: [] }))),
      undefined,
    );
  });
});

describe('addReferrer / removeReferrer', () => {
  it('starts an index, appends, does not write twice, removes, and leaves a missing index alone', async () => {
    const { store, subject, refer } = fixture();
    const [a, b] = [refer(), refer()] as [Descriptor, Descriptor];
    const options = noWait();
    assert.equal(await addReferrer(store, subject, a, options), true);
    assert.equal(await addReferrer(store, subject, b, options), true);
    assert.equal(await addReferrer(store, subject, b, options), false, 'already listed: no write');
    assert.deepEqual(await listed(store, subject), [a.digest, b.digest]);
    const { referrers } = await listReferrers(store, subject, {
      artifactType: 'application/vnd.example.sbom',
    });
    assert.equal(referrers.length, 2, 'entries carry artifactType, so the filter finds them');
    assert.equal(await removeReferrer(store, subject, a.digest, options), true);
    assert.equal(await removeReferrer(store, subject, a.digest, options), false);
    assert.deepEqual(await listed(store, subject), [b.digest]);
    const other = fixture();
    assert.equal(await removeReferrer(other.store, other.subject, b.digest, options), false);
    await assert.rejects(other.store.resolve(referrersTag(other.subject.digest)), /not found/);
  });

  it('replaces an entry written without artifactType (as ggcr and cosign write them)', async () => {
    const { store, subject, refer } = fixture();
    const a = refer();
    const bare = { mediaType: a.mediaType, digest: a.digest, size: a.size };
    const index = Buffer.from(
      serializeIndex({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [bare] }),
    );
    await store.pushReference(store.add(MediaType.ociIndex, index), index, referrersTag(subject.digest));
    assert.equal(await addReferrer(store, subject, a, noWait()), true);
    const [entry] = (await listReferrers(store, subject)).referrers;
    assert.equal(entry?.artifactType, 'application/vnd.example.sbom');
  });

  it('does not take the subject itself for its index (GitLab): a fresh index replaces it', async () => {
    const { store, subject, refer } = fixture();
    await store.tag(subject, referrersTag(subject.digest));
    const a = refer();
    assert.equal(await addReferrer(store, subject, a, noWait()), true);
    assert.deepEqual(await listed(store, subject), [a.digest]);
    assert.notEqual((await store.resolve(referrersTag(subject.digest))).digest, subject.digest);
  });

  it('puts its entry (and what the stale writer dropped) back when a racing writer replaced the index', async () => {
    const { store, subject, refer } = fixture();
    const [early, ours, theirs] = [refer(), refer(), refer()] as [Descriptor, Descriptor, Descriptor];
    await addReferrer(store, subject, early, noWait());
    // Another writer read the index before our write (it lists `early` only) and writes after it.
    const stale = Buffer.from(
      serializeIndex({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [theirs] }),
    );
    const staleDesc = store.add(MediaType.ociIndex, stale);
    let raced = 0;
    const racing = Object.assign(Object.create(store) as MemoryStore, {
      pushReference: async (desc: Descriptor, bytes: Uint8Array, ref: string) => {
        await store.pushReference(desc, bytes, ref);
        if (raced++ === 0) await store.tag(staleDesc, ref);
      },
    });
    const options = noWait();
    assert.equal(await addReferrer(racing, subject, ours, options), true);
    assert.equal(raced, 2, 'written twice');
    assert.deepEqual(
      (await listed(store, subject)).sort(),
      [early.digest, ours.digest, theirs.digest].sort(),
    );
    assert.ok(options.slept.length >= 2, 'settled and backed off');
  });

  it('tries again when the tag moved between its read and its write', async () => {
    const { store, subject, refer } = fixture();
    const [ours, theirs] = [refer(), refer()] as [Descriptor, Descriptor];
    let resolves = 0;
    const moving = Object.assign(Object.create(store) as MemoryStore, {
      resolve: async (reference: string) => {
        // The second look (just before the write) sees another writer's index.
        if (reference === referrersTag(subject.digest) && ++resolves === 2)
          await addReferrer(store, subject, theirs, noWait());
        return store.resolve(reference);
      },
    });
    assert.equal(await addReferrer(moving, subject, ours, noWait()), true);
    assert.deepEqual(await listed(store, subject), [theirs.digest, ours.digest]);
  });

  it('gives up with one REGISTRY error after the bounded tries, with growing jittered waits', async () => {
    const { store, subject, refer } = fixture();
    const ours = refer();
    const empty = Buffer.from(
      serializeIndex({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }),
    );
    const emptyDesc = store.add(MediaType.ociIndex, empty);
    let writes = 0;
    const hostile = Object.assign(Object.create(store) as MemoryStore, {
      pushReference: async (desc: Descriptor, bytes: Uint8Array, ref: string) => {
        writes++;
        await store.pushReference(desc, bytes, ref);
        await store.tag(emptyDesc, ref);
      },
    });
    const options = { ...noWait(), attempts: 5, random: () => 0.99 };
    await assert.rejects(addReferrer(hostile, subject, ours, options), (err: unknown) => {
      assert.ok(err instanceof WasmOciError);
      assert.equal(err.code, 'REGISTRY');
      assert.match(err.message, /gave up after 5 tries/);
      return true;
    });
    assert.equal(writes, 5);
    assert.deepEqual(options.slept, [149, 298, 596, 1192], 'doubling from 100 ms, jittered to ×1.49');
  });
});

describe('the settling wait', () => {
  it('ends with ABORTED when the signal aborts during it', async () => {
    const { store, subject, refer } = fixture();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(
      addReferrer(store, subject, refer(), { settleMs: 10_000, signal: controller.signal }),
      (err) => err instanceof WasmOciError && err.code === 'ABORTED',
    );
  });
});
