import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  deepJson,
  expectResultOrErrorAsync,
  HOSTILE_KEYS,
  HOSTILE_STRINGS,
  mutateBytesN,
  mutateJson,
  Rng,
} from '../../test/harness/fuzz.js';
import {
  anyString,
  hostileKey,
  hostileNumber,
  hostileValue,
  jsonInput,
  mostly,
  nearRecord,
  optional,
  outcomeAsync,
  params,
  withKey,
} from '../../test/harness/properties.js';
import { type Descriptor, parseDescriptor } from '../oci/descriptor.js';
import { digestOf } from '../oci/digest.js';
import { MediaType } from '../oci/mediatypes.js';
import { OciLayoutStore } from './layout.js';

/**
 * Seeded fuzzing of an OCI layout's index.json (a directory anyone may have written): a mutated index
 * gives tags, resolutions and new tags, or FILE / INVALID_MANIFEST / UNSUPPORTED / TOO_LARGE /
 * NOT_FOUND; a tag written into a hostile index keeps it readable.
 */

const SEEDS = [81, 82, 83];
const CODES = ['FILE', 'INVALID_MANIFEST', 'UNSUPPORTED', 'TOO_LARGE', 'NOT_FOUND', 'USAGE'];
const MANIFEST = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf('{}'), size: 2 },
    layers: [],
  }),
);
const MANIFEST_DESC: Descriptor = {
  mediaType: MediaType.ociManifest,
  digest: digestOf(MANIFEST),
  size: MANIFEST.length,
};
const INDEX = {
  schemaVersion: 2,
  mediaType: MediaType.ociIndex,
  manifests: [
    { ...MANIFEST_DESC, annotations: { 'org.opencontainers.image.ref.name': 'v1' } },
    {
      mediaType: MediaType.ociIndex,
      digest: digestOf('other'),
      size: 5,
      annotations: { 'org.opencontainers.image.ref.name': 'latest', x: 'y' },
      platform: { os: 'wasip1', architecture: 'wasm' },
    },
    { ...MANIFEST_DESC },
  ],
};

/** A string as Go's encoder writes it: lone surrogates become U+FFFD. */
function wellFormed(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

describe('OCI layout index.json fuzzing', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-layout-fuzz-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A layout holding the manifest blob, with `index` as its index.json. */
  async function layout(name: string, index: Buffer): Promise<OciLayoutStore> {
    const root = join(dir, name);
    await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(root, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(join(root, 'blobs', 'sha256', MANIFEST_DESC.digest.slice(7)), MANIFEST);
    await writeFile(join(root, 'index.json'), index);
    return new OciLayoutStore(root);
  }

  for (const seed of SEEDS) {
    it(`seed ${seed}: mutated indexes give tags and resolutions, take new tags, or fail with a layout code`, async () => {
      const rng = new Rng(seed);
      let readable = 0;
      const store = await layout(`s${seed}`, Buffer.from('{}'));
      for (let i = 0; i < 80; i++) {
        const index =
          i % 8 === 7
            ? mutateBytesN(rng, Buffer.from(JSON.stringify(INDEX)), 1 + rng.int(3))
            : Buffer.from(mutateJson(rng, INDEX));
        await writeFile(join(store.root, 'index.json'), index);
        const context = `seed ${seed} case ${i}`;
        const tags = await expectResultOrErrorAsync(
          () => store.tags(),
          CODES,
          context,
          index,
          (list) => {
            for (const t of list) assert.equal(typeof t, 'string', context);
          },
        );
        if (tags instanceof Error) continue;
        readable++;
        for (const reference of [
          'v1',
          'latest',
          MANIFEST_DESC.digest,
          digestOf('none'),
          rng.pick(HOSTILE_KEYS),
          rng.pick(HOSTILE_STRINGS),
        ]) {
          await expectResultOrErrorAsync(
            () => store.resolve(reference),
            CODES,
            `${context} resolve ${reference}`,
            index,
            (desc) => assert.deepEqual(parseDescriptor(desc, 'resolved'), desc, context),
          );
        }
        // A tag written into whatever index was read keeps the index readable, the old tags with it.
        const tag = rng.pick(['v2', 'v1', rng.pick(HOSTILE_KEYS)]);
        const tagged = await expectResultOrErrorAsync(
          () => store.tag(MANIFEST_DESC, tag),
          CODES,
          `${context} tag ${tag}`,
          index,
        );
        if (tagged instanceof Error) continue;
        const after = await store.tags();
        assert.ok(after.includes(tag), `${context}: tag ${tag} not written`);
        for (const t of tags) assert.ok(t === tag || after.includes(t), `${context}: tag ${t} lost`);
        await expectResultOrErrorAsync(
          () => store.deleteManifest(MANIFEST_DESC.digest),
          CODES,
          context,
          index,
        );
      }
      assert.ok(readable > 10, `only ${readable} indexes were readable`);
    });
  }

  describe('index.json properties (fast-check)', () => {
    const refName = mostly(fc.constantFrom('v1', 'latest', 'v2'), fc.oneof(hostileKey, anyString(12)), 4);
    const entry = mostly(
      fc.record(
        {
          mediaType: mostly(fc.constantFrom(MediaType.ociManifest, MediaType.ociIndex), anyString(10), 12),
          digest: mostly(fc.constantFrom(MANIFEST_DESC.digest, digestOf('other')), anyString(10), 12),
          size: mostly(fc.constantFrom(MANIFEST_DESC.size, 5), hostileNumber, 12),
          annotations: optional(
            fc
              .tuple(refName, fc.option(fc.tuple(hostileKey, anyString(8))))
              .map(([name, extra]) =>
                withKey('org.opencontainers.image.ref.name', name, extra ? withKey(extra[0], extra[1]) : {}),
              ),
          ),
        },
        { requiredKeys: ['mediaType', 'digest', 'size'] },
      ),
      hostileValue,
      12,
    );
    const index = nearRecord(
      {
        schemaVersion: mostly(fc.constant(2), hostileValue, 12),
        mediaType: optional(mostly(fc.constant(MediaType.ociIndex), anyString(10), 12)),
        manifests: mostly(fc.array(entry, { maxLength: 4 }), hostileValue, 12),
        annotations: optional(fc.dictionary(hostileKey, anyString(8), { maxKeys: 2 })),
      },
      16,
    );

    it('any index.json gives tags and resolutions and takes a tag, or fails with a layout code', async () => {
      const store = await layout('fc', Buffer.from('{}'));
      let readable = 0;
      await fc.assert(
        fc.asyncProperty(
          jsonInput(index),
          fc.constantFrom('v1', 'latest', MANIFEST_DESC.digest, ...HOSTILE_KEYS),
          fc.constantFrom('v2', 'v1', ...HOSTILE_KEYS),
          async (bytes, reference, tag) => {
            await writeFile(join(store.root, 'index.json'), bytes);
            const tags = await outcomeAsync(
              () => store.tags(),
              CODES,
              bytes,
              (list) => {
                for (const t of list) assert.equal(typeof t, 'string');
              },
            );
            if (tags instanceof Error) return;
            readable++;
            await outcomeAsync(
              () => store.resolve(reference),
              CODES,
              bytes,
              (desc) => assert.deepEqual(parseDescriptor(desc, 'resolved'), desc),
            );
            const tagged = await outcomeAsync(() => store.tag(MANIFEST_DESC, tag), CODES, bytes);
            if (tagged instanceof Error) return;
            const after = await store.tags();
            assert.ok(after.includes(tag), `tag ${tag} not written`);
            // Names are written as Go writes them: a lone surrogate becomes U+FFFD (as Go reads it, too).
            for (const t of tags)
              assert.ok(t === tag || after.includes(wellFormed(t)), `tag ${JSON.stringify(t)} lost`);
          },
        ),
        params(0x1a9001, 150),
      );
      assert.ok(readable > 20, `only ${readable} indexes were readable`);
    });
  });

  it('a missing, oversized, deeply nested or non-file index.json is an error of the layout', async () => {
    const cases: Array<[string, Buffer]> = [
      ['huge', Buffer.alloc(4 * 1024 * 1024 + 1, 0x20)],
      ['deep', Buffer.from(`{"schemaVersion":2,"manifests":${deepJson(50_000)}}`)],
      [
        'deep-annotations',
        Buffer.from(
          JSON.stringify({ ...INDEX, annotations: '@' }).replace('"@"', deepJson(50_000, 'object')),
        ),
      ],
      ['not an index', MANIFEST],
      ['empty', Buffer.alloc(0)],
    ];
    for (const [name, bytes] of cases) {
      const store = await layout(`edge-${name}`, bytes);
      await expectResultOrErrorAsync(() => store.index(), CODES, name, bytes);
      await expectResultOrErrorAsync(() => store.resolve('v1'), CODES, name, bytes);
    }
    const missing = new OciLayoutStore(join(dir, 'nothing-here'));
    assert.deepEqual(await missing.tags(), []);
    const asDirectory = join(dir, 'index-is-dir');
    await mkdir(join(asDirectory, 'index.json'), { recursive: true });
    await assert.rejects(new OciLayoutStore(asDirectory).index(), { code: 'FILE' });
  });

  it('a FIFO or a directory where index.json or a blob belongs is refused at once, never read or replaced', async () => {
    const fifoIndex = await layout('fifo-index', Buffer.from('{}'));
    await rm(join(fifoIndex.root, 'index.json'));
    execFileSync('mkfifo', [join(fifoIndex.root, 'index.json')]);
    await assert.rejects(fifoIndex.index(), { code: 'FILE', message: /index\.json: not a regular file$/ });

    const blobs = await layout('fifo-blob', Buffer.from(JSON.stringify(INDEX)));
    const blob = Buffer.from('module bytes');
    const desc: Descriptor = { mediaType: 'application/wasm', digest: digestOf(blob), size: blob.length };
    const blobPath = blobs.blobPath(desc.digest);
    execFileSync('mkfifo', [blobPath]);
    assert.equal(await blobs.exists(desc), false);
    await assert.rejects(blobs.fetch(desc), { code: 'FILE', message: /not a regular file$/ });
    await assert.rejects(
      blobs.fetchInto(desc, () => undefined),
      { code: 'FILE', message: /not a regular file$/ },
    );
    await assert.rejects(blobs.resolve(desc.digest), { code: 'NOT_FOUND' });
    // A push onto the FIFO (or a directory) fails clearly and leaves it as it was.
    await assert.rejects(blobs.push(desc, blob), { code: 'FILE', message: /not a regular file$/ });
    await rm(blobPath);
    await mkdir(blobPath);
    await assert.rejects(blobs.push(desc, blob), { code: 'FILE', message: /not a regular file$/ });
    await assert.rejects(blobs.fetch(desc), { code: 'FILE' });
  });

  it('a stored blob that is no manifest does not resolve by digest', async () => {
    const rng = new Rng(84);
    const store = await layout('blobs', Buffer.from(JSON.stringify({ ...INDEX, manifests: [] })));
    for (let i = 0; i < 60; i++) {
      const blob = i % 2 ? rng.bytes(rng.int(100)) : mutateBytesN(rng, MANIFEST, 1 + rng.int(3));
      const digest = digestOf(blob);
      await writeFile(join(store.root, 'blobs', 'sha256', digest.slice(7)), blob);
      await expectResultOrErrorAsync(
        () => store.resolve(digest),
        CODES,
        `blob ${i}`,
        blob,
        (desc) => assert.equal(desc.digest, digest),
      );
    }
  });
});
