import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  deepJson,
  expectResultOrErrorAsync,
  mutateBytesN,
  mutateJson,
  Rng,
} from '../../test/harness/fuzz.js';
import type { Descriptor } from '../oci/descriptor.js';
import { digestOf, referrersTag } from '../oci/digest.js';
import { serializeManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';
import { OciLayoutStore } from './layout.js';
import { MemoryStore } from './memory.js';
import { addReferrer, listReferrers, referrerOf } from './referrers.js';
import type { Target } from './types.js';

/**
 * Seeded fuzzing of a hostile fallback index already under `<alg>-<hex>` (anyone who can push to the
 * repository may have put it there): garbage, a mutated index, one past 4 MiB, the wrong media type,
 * duplicate entries, deep nesting. Adding a referrer then either lists it exactly once, every digest
 * once, or fails with one WasmOciError (TOO_LARGE, INVALID_MANIFEST, UNSUPPORTED); never an internal
 * exception.
 */

const SEED = 0x5e1f;
const CASES = 300;
const LAYOUT_CASES = 40;
const CODES = ['TOO_LARGE', 'INVALID_MANIFEST', 'UNSUPPORTED'] as const;
const EMPTY: Descriptor = { mediaType: MediaType.ociEmpty, digest: digestOf('{}'), size: 2 };
const noWait = { sleep: async () => {}, settleMs: 0 };

function subjectAndReferrer(): {
  manifests: Array<[Descriptor, Buffer]>;
  subject: Descriptor;
  entry: Descriptor;
} {
  const subjectBytes = Buffer.from(
    serializeManifest({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: EMPTY, layers: [] }),
  );
  const subject = {
    mediaType: MediaType.ociManifest,
    digest: digestOf(subjectBytes),
    size: subjectBytes.length,
  };
  const bytes = Buffer.from(
    serializeManifest({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: 'application/vnd.example.sbom',
      config: EMPTY,
      layers: [],
      subject,
    }),
  );
  const desc = { mediaType: MediaType.ociManifest, digest: digestOf(bytes), size: bytes.length };
  const { entry } = referrerOf(desc, bytes) as { entry: Descriptor };
  return {
    manifests: [
      [subject, subjectBytes],
      [desc, bytes],
    ],
    subject,
    entry,
  };
}

/** The bytes a hostile writer left under the tag, and the media type it claimed for them. */
function hostileIndex(rng: Rng, entry: Descriptor, huge: Buffer): [string, Buffer] {
  const other = { mediaType: MediaType.ociManifest, digest: digestOf(rng.hex(8)), size: 100 + rng.int(1000) };
  const valid = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [other, entry, other, { ...entry, artifactType: 'application/vnd.other' }],
  };
  const type = rng.pick([
    MediaType.ociIndex,
    MediaType.ociIndex,
    MediaType.dockerManifestList,
    MediaType.ociManifest,
    MediaType.dockerManifest,
    'application/octet-stream',
  ]);
  switch (rng.int(7)) {
    case 0:
      return [type, rng.bytes(rng.int(300))];
    case 1:
      return [type, Buffer.from(mutateJson(rng, valid))];
    case 2:
      return [type, mutateBytesN(rng, Buffer.from(JSON.stringify(valid)), 1 + rng.int(4))];
    case 3:
      return [type, huge];
    case 4:
      return [
        type,
        Buffer.from(deepJson(rng.pick([33, 513, 12_000]), rng.pick(['array', 'object', 'mixed']))),
      ];
    case 5:
      // The subject's own manifest under its tag (GitLab), or an image manifest.
      return [
        MediaType.ociManifest,
        Buffer.from(
          serializeManifest({
            schemaVersion: 2,
            mediaType: MediaType.ociManifest,
            config: EMPTY,
            layers: [],
          }),
        ),
      ];
    default:
      return [type, Buffer.from(JSON.stringify({ ...valid, manifests: Array(1 + rng.int(50)).fill(other) }))];
  }
}

/** Installs the hostile bytes under the tag, then adds the referrer and checks the outcome. */
async function attempt(store: Target, rng: Rng, context: string, huge: Buffer): Promise<boolean> {
  const { manifests, subject, entry } = subjectAndReferrer();
  for (const [desc, bytes] of manifests) await store.push(desc, bytes);
  const [mediaType, bytes] = hostileIndex(rng, entry, huge);
  const desc = { mediaType, digest: digestOf(bytes), size: bytes.length };
  await store.push(desc, bytes);
  if (mediaType === MediaType.ociIndex || mediaType.includes('manifest')) {
    await store.tag(desc, referrersTag(subject.digest)).catch(() => {});
  }
  const added = await expectResultOrErrorAsync(
    () => addReferrer(store, subject, entry, noWait),
    CODES,
    context,
    bytes.subarray(0, 200).toString('utf8'),
  );
  const result = await expectResultOrErrorAsync(
    () => listReferrers(store, subject),
    CODES,
    `${context} list`,
  );
  if (typeof added !== 'boolean') return false;
  assert.ok('referrers' in result, `${context}: an index we wrote or kept reads back`);
  const digests = result.referrers.map((d) => d.digest);
  assert.equal(new Set(digests).size, digests.length, `${context}: each digest once`);
  assert.ok(digests.includes(entry.digest), `${context}: ours is listed`);
  return true;
}

describe('a hostile fallback index (seeded fuzz)', () => {
  let dir: string;
  /** One index past 4 MiB, made once. */
  let huge: Buffer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-referrers-fuzz-'));
    const entry = { mediaType: MediaType.ociManifest, digest: digestOf('x'), size: 1 };
    huge = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: Array(60_000).fill(entry),
      }),
    );
    assert.ok(huge.length > 4 * 1024 * 1024);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(`in a memory store: result or one error, ${CASES} cases (seed ${SEED})`, async () => {
    const rng = new Rng(SEED);
    let listedOnce = 0;
    for (let i = 0; i < CASES; i++) {
      const store = new MemoryStore();
      store.add(EMPTY.mediaType, Buffer.from('{}'));
      if (await attempt(store, rng.fork(`memory ${i}`), `seed ${SEED} case ${i}`, huge)) listedOnce++;
    }
    assert.ok(listedOnce > CASES / 2, `most hostile indexes are repaired (${listedOnce} of ${CASES})`);
  });

  it(`in a layout: result or one error, ${LAYOUT_CASES} cases (seed ${SEED + 1})`, async () => {
    const rng = new Rng(SEED + 1);
    for (let i = 0; i < LAYOUT_CASES; i++) {
      const store = new OciLayoutStore(join(dir, `layout-${i}`));
      await store.push(EMPTY, Buffer.from('{}'));
      await attempt(store, rng.fork(`layout ${i}`), `seed ${SEED + 1} layout case ${i}`, huge);
    }
  });
});
