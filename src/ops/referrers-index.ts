import { MemoryStore } from '../content/memory.js';
import { canListReferrers, type ReadOnlyTarget, type Target } from '../content/types.js';
import { copy, fetchManifest } from '../copy.js';
import { abortError, hasCode, WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { referrersTag } from '../oci/digest.js';
import { parseManifest, serializeIndex } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';

/**
 * Writing referrers where there is no referrers API (Distribution 2.8, OCI layouts): the referrer
 * manifest is pushed by digest, then its descriptor (with `artifactType` and annotations, which some
 * peers leave out) is added to the image index under the tag `<alg>-<hex>` of the subject. That is a
 * read-modify-write of a tag that other writers may be doing at the same time (`updateTag`).
 *
 * One place, so the general attach path (issue 15) can take it over.
 */

/** One read-modify-write of what a tag names. */
export interface TagUpdate<T> {
  /** What the tag names now (`digest` undefined: no such tag). */
  read(): Promise<{ digest?: string | undefined; value: T }>;
  /** True when `value` already holds our change. */
  has(value: T): boolean;
  /** Writes `value` with our change under the tag. */
  write(value: T): Promise<void>;
}

export interface SettleOptions {
  /** How long the tag must stay unchanged after our write (default 250 ms, plus up to 50 % jitter). */
  settleMs?: number | undefined;
  /** Rounds before giving up (default 24). */
  rounds?: number | undefined;
  signal?: AbortSignal | undefined;
}

const sleep = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * Makes our change to a tag and sees that it stays: a registry has no compare-and-swap, so a writer
 * that read the tag before our write may replace it with a version without our change. After writing,
 * the tag is read again until it holds our change and has not changed for `settleMs` (longer than
 * a read-to-write of another writer takes); a version that lost our change gets it again. A change that
 * was there before we started is left alone. Returns true when this call wrote.
 */
export async function updateTag<T>(update: TagUpdate<T>, options: SettleOptions = {}): Promise<boolean> {
  const settle = options.settleMs ?? 250;
  const rounds = options.rounds ?? 24;
  let wrote = false;
  let seen: string | undefined;
  for (let round = 0; round < rounds; round++) {
    const current = await update.read();
    if (!update.has(current.value)) {
      await update.write(current.value);
      wrote = true;
      seen = undefined;
      continue;
    }
    if (!wrote || (seen !== undefined && current.digest === seen)) return wrote;
    seen = current.digest;
    await sleep(settle * (1 + Math.random() / 2), options.signal);
  }
  throw new WasmOciError('REGISTRY', 'the tag kept changing under other writers: our change may be lost', {
    hint: 'try again; a registry with the OCI 1.1 referrers API lists referrers itself',
  });
}

/** The manifest a tag names, or undefined when the tag does not exist. */
export async function readTagged(
  target: ReadOnlyTarget,
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
): Promise<{ digest?: string | undefined; value: Descriptor[] }> {
  const tagged = await readTagged(target, tag, signal);
  // GitLab resolves `sha256-<hex>` to the subject itself: that is no index to extend.
  if (!tagged || tagged.descriptor.digest === subject.digest) return { value: [] };
  const parsed = parseManifest(tagged.bytes, tagged.descriptor.mediaType);
  if (parsed.kind !== 'index') {
    throw new WasmOciError(
      'UNSUPPORTED',
      `the tag ${tag} holds a manifest, not the referrers index of ${subject.digest}: not replacing it`,
    );
  }
  return { digest: tagged.descriptor.digest, value: parsed.index.manifests };
}

/** True when the target answers the referrers API (then the registry keeps the index itself). */
async function hasReferrersApi(target: Target, subject: Descriptor, signal: AbortSignal | undefined) {
  return canListReferrers(target) && (await target.referrers(subject, { signal })) !== undefined;
}

/**
 * Pushes a referrer manifest (and its blobs, from `store`) by digest, and lists it in the subject's
 * fallback index unless the target has the referrers API. Returns the index tag when it wrote one.
 */
export async function pushReferrer(
  target: Target,
  store: MemoryStore,
  referrer: Descriptor,
  subject: Descriptor,
  options: SettleOptions = {},
): Promise<{ indexTag?: string | undefined }> {
  const { signal } = options;
  await copy(store, referrer.digest, target, undefined, { signal });
  if (await hasReferrersApi(target, subject, signal)) return {};
  const tag = referrersTag(subject.digest);
  await updateTag<Descriptor[]>(
    {
      read: () => indexEntries(target, tag, subject, signal),
      has: (entries) => entries.some((e) => e.digest === referrer.digest),
      async write(entries) {
        const index = serializeIndex({
          schemaVersion: 2,
          mediaType: MediaType.ociIndex,
          manifests: [...entries, referrer],
        });
        const scratch = new MemoryStore();
        const desc = scratch.add(MediaType.ociIndex, Buffer.from(index));
        // The entries are there already (they are what the index lists): only the index is written.
        await copy(scratch, desc.digest, target, tag, { signal, findSuccessors: () => [] });
      },
    },
    options,
  );
  return { indexTag: tag };
}
