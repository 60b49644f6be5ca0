import { MemoryStore } from '../content/memory.js';
import { canListReferrers, type Target } from '../content/types.js';
import { copy, fetchManifest } from '../copy.js';
import { hasCode, WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { referrersTag } from '../oci/digest.js';
import { parseManifest, serializeIndex } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';

/**
 * Writing referrers where there is no referrers API (Distribution 2.8, OCI layouts): the referrer
 * manifest is pushed by digest, then its descriptor (with `artifactType` and annotations, which some
 * peers leave out) is added to the image index under the tag `<alg>-<hex>` of the subject. That is a
 * read-modify-write of a tag: the index is read back after the write, and when another writer replaced
 * it in between (our entry is gone), the update is made again on what is there now, a few times.
 *
 * One function, in one place, so the general attach path (issue 15) can take it over.
 */

/** How often an index update lost to another writer is tried again. */
const INDEX_TRIES = 8;

/** The manifest a tag names, parsed, or undefined when the tag does not exist. */
async function readTagged(
  target: Target,
  tag: string,
  signal: AbortSignal | undefined,
): Promise<{ descriptor: Descriptor; bytes: Buffer } | undefined> {
  let descriptor: Descriptor;
  try {
    descriptor = await target.resolve(tag, { signal });
  } catch (err) {
    if (hasCode(err, 'NOT_FOUND')) return undefined;
    throw err;
  }
  return { descriptor, bytes: await fetchManifest(target, descriptor, signal) };
}

/** The manifests of the fallback index now under the subject's tag (none when it is missing or no index). */
async function indexEntries(
  target: Target,
  tag: string,
  subject: Descriptor,
  signal: AbortSignal | undefined,
): Promise<{ entries: Descriptor[]; current?: string | undefined }> {
  const tagged = await readTagged(target, tag, signal);
  // GitLab resolves `sha256-<hex>` to the subject itself: that is no index to extend.
  if (!tagged || tagged.descriptor.digest === subject.digest) return { entries: [] };
  const parsed = parseManifest(tagged.bytes, tagged.descriptor.mediaType);
  if (parsed.kind !== 'index') {
    throw new WasmOciError(
      'UNSUPPORTED',
      `the tag ${tag} holds a manifest, not the referrers index of ${subject.digest}: not replacing it`,
    );
  }
  return { entries: parsed.index.manifests, current: tagged.descriptor.digest };
}

/** True when the target answers the referrers API (then the registry keeps the index itself). */
async function hasReferrersApi(target: Target, subject: Descriptor, signal: AbortSignal | undefined) {
  return canListReferrers(target) && (await target.referrers(subject, { signal })) !== undefined;
}

/**
 * Pushes a referrer manifest (and its blobs, from `store`) by digest, and lists it in the subject's
 * fallback index unless the target has the referrers API. The index never loses an entry it had.
 */
export async function pushReferrer(
  target: Target,
  store: MemoryStore,
  referrer: Descriptor,
  subject: Descriptor,
  signal?: AbortSignal | undefined,
): Promise<{ index?: Descriptor | undefined }> {
  await copy(store, referrer.digest, target, undefined, { signal });
  if (await hasReferrersApi(target, subject, signal)) return {};
  const tag = referrersTag(subject.digest);
  for (let attempt = 1; ; attempt++) {
    const { entries } = await indexEntries(target, tag, subject, signal);
    const kept = entries.filter((e) => e.digest !== referrer.digest);
    const index = serializeIndex({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [...kept, referrer],
    });
    const scratch = new MemoryStore();
    const desc = scratch.add(MediaType.ociIndex, Buffer.from(index));
    await copy(scratch, desc.digest, target, tag, { signal });
    // Read back: another writer may have replaced the index between our read and our write.
    const after = await indexEntries(target, tag, subject, signal);
    if (after.entries.some((e) => e.digest === referrer.digest)) return { index: desc };
    if (attempt >= INDEX_TRIES) {
      throw new WasmOciError(
        'REGISTRY',
        `the referrers index ${tag} kept changing under other writers: ${referrer.digest} is pushed but not listed`,
        { hint: 'try again; a registry with the OCI 1.1 referrers API lists referrers itself' },
      );
    }
  }
}
