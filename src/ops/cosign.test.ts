import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { OciLayoutStore } from '../content/layout.js';
import { MemoryStore } from '../content/memory.js';
import type { Target } from '../content/types.js';
import { copy, fetchManifest } from '../copy.js';
import { hasCode } from '../errors.js';
import { parseManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';
import { keySigner } from '../sign/cosign/signer.js';
import { findSignatures, requireVerified, signManifest } from './cosign.js';
import { updateTag } from './tag-update.js';
import type { TargetSpec } from './target.js';

/**
 * Signing into a store in memory: many signers at once on one subject (the fallback index and the
 * `.sig` manifest are read-modify-writes of a tag, with no compare-and-swap), and the checks that
 * findSignatures makes of what it finds.
 */

const spec: TargetSpec = { kind: 'layout', path: 'memory', defaultedTag: false };

function subjectIn(store: MemoryStore) {
  const config = store.add(MediaType.ociEmpty, Buffer.from('{}'));
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [] }),
  );
  const subject = store.add(MediaType.ociManifest, manifest);
  return subject;
}

/** A layout in a temporary directory (it keeps the referrers index itself), with a subject in it. */
async function layoutWithSubject() {
  const store = new OciLayoutStore(join(await mkdtemp(join(tmpdir(), 'wasm-to-oci-cosign-')), 'layout'));
  const memory = new MemoryStore();
  const subject = subjectIn(memory);
  await copy(memory, subject.digest, store, 'v1');
  return { store, subject };
}

const signers = (n: number) =>
  Array.from({ length: n }, () => keySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));

async function manifestAt(store: Target, tag: string) {
  const desc = await store.resolve(tag);
  return parseManifest(await fetchManifest(store, desc), desc.mediaType);
}

describe('signing with many writers at once', () => {
  it('10 bundle referrers signed at once are all listed in a layout’s fallback index', async () => {
    const { store, subject } = await layoutWithSubject();
    const written = await Promise.all(
      signers(10).map((s) => signManifest(store, spec, subject, s, { settleMs: 5 })),
    );
    const index = await manifestAt(store, `sha256-${subject.digest.slice(7)}`);
    assert.equal(index.kind, 'index');
    const listed = index.kind === 'index' ? index.index.manifests.map((m) => m.digest) : [];
    assert.deepEqual([...listed].sort(), written.map((w) => w.manifest.digest).sort());
    assert.equal(new Set(listed).size, 10);
  });

  it('10 .sig signatures by 10 keys at once all end up in the layers; the same key twice adds nothing', async () => {
    const store = new MemoryStore();
    const subject = subjectIn(store);
    const keys = signers(10);
    await Promise.all(
      keys.map((s) => signManifest(store, spec, subject, s, { legacyTag: true, settleMs: 5 })),
    );
    const sig = await manifestAt(store, `sha256-${subject.digest.slice(7)}.sig`);
    assert.equal(sig.kind === 'manifest' ? sig.manifest.layers.length : 0, 10);
    const again = await signManifest(store, spec, subject, keys[3] as (typeof keys)[number], {
      legacyTag: true,
      settleMs: 5,
    });
    assert.equal(again.existed, true);
    for (const key of keys) {
      const found = await findSignatures(store, subject, key.verifier());
      assert.equal(found.length, 10);
      assert.equal(found.filter((f) => f.verified).length, 1, 'its own signature, and only that');
    }
  });

  it('updateTag gives up, with a REGISTRY error, on a tag that keeps losing the change', async () => {
    let value: string[] = [];
    await assert.rejects(
      updateTag<string[]>(
        {
          read: async () => ({ digest: String(Math.random()), value }),
          has: (v) => v.includes('ours'),
          async write() {
            // Another writer replaces every write at once.
            value = ['theirs'];
          },
        },
        { settleMs: 1, rounds: 5 },
      ),
      (e) => hasCode(e, 'REGISTRY'),
    );
  });
});

describe('findSignatures and requireVerified', () => {
  it('no signature at all, and none by the key, are SIGNATURE_INVALID with what was found', async () => {
    const { store, subject } = await layoutWithSubject();
    const [mine, theirs] = signers(2) as [ReturnType<typeof keySigner>, ReturnType<typeof keySigner>];
    assert.throws(
      () => requireVerified([], 'x@sha256:1'),
      (e) => hasCode(e, 'SIGNATURE_INVALID') && /has no cosign signature/.test(e.message),
    );
    await signManifest(store, spec, subject, theirs, { settleMs: 1 });
    const found = await findSignatures(store, subject, mine.verifier());
    assert.equal(found.length, 1);
    assert.equal(found[0]?.verified, false);
    assert.throws(
      () => requireVerified(found, 'x'),
      (e) =>
        hasCode(e, 'SIGNATURE_INVALID') &&
        /no signature of x verifies with this key \(1 checked/.test(e.message),
    );
  });

  it('a referrer listed in the index of a subject it does not name fails, with the reason', async () => {
    const store = new MemoryStore();
    const subject = subjectIn(store);
    const other = store.add(
      MediaType.ociManifest,
      Buffer.from(JSON.stringify({ schemaVersion: 2, config: subject, layers: [], annotations: { a: 'b' } })),
    );
    const [signer] = signers(1) as [ReturnType<typeof keySigner>];
    // A signature of `other`, listed (by a confused writer) in the index of `subject`.
    const written = await signManifest(store, spec, other, signer, { settleMs: 1 });
    const listed = { ...written.manifest };
    const index = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [listed] }),
    );
    await store.pushReference(
      store.add(MediaType.ociIndex, index),
      index,
      `sha256-${subject.digest.slice(7)}`,
    );
    const found = await findSignatures(store, subject, signer.verifier());
    assert.equal(found[0]?.verified, false);
    assert.match(found[0]?.reason ?? '', /its subject is sha256:[0-9a-f]{64}, not/);
  });

  it('an index entry without artifactType (as go-containerregistry writes it) is still found; an SBOM is not listed', async () => {
    const store = new MemoryStore();
    const subject = subjectIn(store);
    const [signer] = signers(1) as [ReturnType<typeof keySigner>];
    const written = await signManifest(store, spec, subject, signer, { settleMs: 1 });
    const sbomLayer = store.add('application/spdx+json', Buffer.from('{}'));
    const sbom = store.add(
      MediaType.ociManifest,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          artifactType: 'application/spdx+json',
          config: sbomLayer,
          layers: [sbomLayer],
          subject,
        }),
      ),
    );
    // The index as ggcr writes it: bare descriptors, no artifactType, no annotations.
    const bare = (d: { mediaType: string; digest: string; size: number }) => ({
      mediaType: d.mediaType,
      digest: d.digest,
      size: d.size,
    });
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [bare(written.manifest), bare(sbom)],
      }),
    );
    await store.pushReference(
      store.add(MediaType.ociIndex, index),
      index,
      `sha256-${subject.digest.slice(7)}`,
    );
    const found = await findSignatures(store, subject, signer.verifier());
    assert.deepEqual(
      found.map((f) => [f.manifest.digest, f.verified]),
      [[written.manifest.digest, true]],
    );
  });
});

describe('findSignatures on hostile signature artifacts (seeded)', () => {
  it('mutated bundles, referrer manifests and .sig manifests give results, never exceptions', async () => {
    const { Rng, mutateBytes, mutateJson } = await import('../../test/harness/fuzz.js');
    const { bundleReferrer, signatureLayer, signatureManifest } = await import('../sign/cosign/artifacts.js');
    const { buildBundle, pae, signStatement } = await import('../sign/cosign/bundle.js');
    const { simpleSigningPayload } = await import('../sign/cosign/simplesigning.js');
    const [signer] = signers(1) as [ReturnType<typeof keySigner>];
    for (const seed of [161, 162, 163]) {
      const rng = new Rng(seed);
      for (let i = 0; i < 40; i++) {
        const store = new MemoryStore();
        const subject = subjectIn(store);
        const statement = signStatement(subject.digest);
        const bundle = Buffer.from(
          buildBundle(
            statement,
            await signer.sign(pae('application/vnd.in-toto+json', statement)),
            signer.material(),
          ),
        );
        const hostile = rng.bool(0.5)
          ? Buffer.from(mutateJson(rng, JSON.parse(bundle.toString())))
          : mutateBytes(rng, bundle);
        const built = bundleReferrer(subject, hostile, new Date(0));
        let manifestBytes = Buffer.from(built.bytes);
        if (rng.bool(0.3)) manifestBytes = Buffer.from(mutateJson(rng, JSON.parse(manifestBytes.toString())));
        for (const blob of built.blobs) store.add(blob.descriptor.mediaType, Buffer.from(blob.bytes));
        const referrer = store.add(MediaType.ociManifest, manifestBytes);
        const entry = { ...referrer, artifactType: built.descriptor.artifactType as string };
        const index = Buffer.from(
          JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [entry] }),
        );
        await store.pushReference(
          store.add(MediaType.ociIndex, index),
          index,
          `sha256-${subject.digest.slice(7)}`,
        );
        const payload = simpleSigningPayload('r/x', subject.digest);
        const sig = signatureManifest([], signatureLayer(payload, await signer.sign(payload)), payload);
        for (const blob of sig.blobs) store.add(blob.descriptor.mediaType, Buffer.from(blob.bytes));
        const sigBytes = Buffer.from(mutateJson(rng, JSON.parse(Buffer.from(sig.bytes).toString())));
        await store.pushReference(
          store.add(MediaType.ociManifest, sigBytes),
          sigBytes,
          `sha256-${subject.digest.slice(7)}.sig`,
        );
        let found: Awaited<ReturnType<typeof findSignatures>>;
        try {
          found = await findSignatures(store, subject, signer.verifier());
        } catch (err) {
          // A .sig manifest mutated past parsing is one line of a known code, nothing else.
          assert.ok(
            hasCode(err, 'INVALID_MANIFEST') || hasCode(err, 'UNSUPPORTED'),
            `seed ${seed} #${i}: ${String(err)}`,
          );
          assert.ok(!/\n/.test((err as Error).message));
          continue;
        }
        for (const f of found) {
          assert.equal(typeof f.verified, 'boolean');
          if (f.kind === 'bundle' && f.verified)
            assert.ok(hostile.equals(bundle) || hostile.includes('dsseEnvelope'));
          if (!f.verified) assert.ok(f.reason && !/\n/.test(f.reason), f.reason);
        }
      }
    }
  });
});
