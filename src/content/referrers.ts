import { sleep as abortableSleep, hasCode, WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { digestOf, referrersTag } from '../oci/digest.js';
import {
  goDescriptor,
  MAX_MANIFEST_BYTES,
  type ParsedManifest,
  parseManifest,
  serializeIndex,
} from '../oci/manifest.js';
import { INDEX_MEDIA_TYPES, MediaType } from '../oci/mediatypes.js';
import {
  canListReferrers,
  canLockIndex,
  canPushReference,
  type ReadOnlyTarget,
  type ReferrersQuery,
  resolveIfPresent,
  type Target,
} from './types.js';
import { readVerified } from './verify.js';

/**
 * The referrers of a subject (the manifests whose `subject` is its digest), whichever way the target
 * offers them: the referrers API where it has one (a registry that implements OCI 1.1), else the tag
 * schema, an image index under the tag `<alg>-<hex>`. A tag that resolves to the subject itself is no
 * referrers index (GitLab resolves `sha256-<hex>` tags to the manifest of that digest), nor is a
 * manifest that is not an index.
 */
export async function listReferrers(
  target: ReadOnlyTarget,
  subject: Descriptor,
  query: ReferrersQuery = {},
): Promise<{ referrers: Descriptor[]; via: 'api' | 'tag-schema' }> {
  if (canListReferrers(target)) {
    const listed = await target.referrers(subject, query);
    if (listed) return { referrers: listed, via: 'api' };
  }
  const referrers = await referrersFromTagSchema(target, subject, query);
  return { referrers, via: 'tag-schema' };
}

/** Each digest once, the first entry kept (an index written by two racing tools can list one twice). */
function uniqueDigests(manifests: Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return manifests.filter((d) => !seen.has(d.digest) && seen.add(d.digest));
}

/** The referrers the tag schema lists (none when the tag is missing or names no index). */
export async function referrersFromTagSchema(
  target: ReadOnlyTarget,
  subject: Descriptor,
  query: ReferrersQuery = {},
): Promise<Descriptor[]> {
  const index = await resolveIfPresent(target, referrersTag(subject.digest), { signal: query.signal });
  if (index === undefined || index.digest === subject.digest) return [];
  const bytes = await readVerified(
    await target.fetch(index, { signal: query.signal }),
    index,
    MAX_MANIFEST_BYTES,
  );
  const parsed = parseManifest(bytes, index.mediaType);
  if (parsed.kind !== 'index') return [];
  const manifests = uniqueDigests(parsed.index.manifests);
  return query.artifactType ? manifests.filter((d) => d.artifactType === query.artifactType) : manifests;
}

/** How a referrers index is updated where the target keeps none itself. */
export interface ReferrersIndexOptions {
  signal?: AbortSignal | undefined;
  /** Writes tried in all before giving up on a raced index (default 8). */
  attempts?: number | undefined;
  /**
   * The least time (ms; a jitter adds up to half) to wait after a write before reading the index once
   * more, on a target without an index lock (default 250): a writer that read the index before our write and
   * wrote after it would have replaced it by then, and our entry goes in again. The wait is at least 4
   * times what our own read and write took (another writer on a loaded machine is as slow), at most 10 s.
   */
  settleMs?: number | undefined;
  /** The wait (tests pass one that records). */
  sleep?: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
  /** The jitter's randomness, in [0, 1). */
  random?: (() => number) | undefined;
}

const DEFAULT_ATTEMPTS = 8;
const DEFAULT_SETTLE_MS = 250;
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 3200;
const MAX_SETTLE_MS = 10_000;

/**
 * The descriptor a referrers listing holds for a manifest (distribution-spec "Listing Referrers"): its
 * own media type, digest and size, its `artifactType` (else its config's media type) and its
 * annotations. go-containerregistry and cosign leave the last two out of the indexes they write; then
 * a filter by artifact type finds nothing.
 */
export function referrerEntry(desc: Descriptor, parsed: ParsedManifest): Descriptor {
  const body = parsed.kind === 'index' ? parsed.index : parsed.manifest;
  const artifactType =
    body.artifactType ?? (parsed.kind === 'manifest' ? parsed.manifest.config.mediaType : undefined);
  return {
    mediaType: desc.mediaType,
    digest: desc.digest,
    size: desc.size,
    ...(artifactType ? { artifactType } : {}),
    ...(body.annotations && Object.keys(body.annotations).length ? { annotations: body.annotations } : {}),
  };
}

/** The subject of a manifest's bytes and the entry that lists it, or nothing (no subject, or unreadable). */
export function referrerOf(
  desc: Descriptor,
  bytes: Uint8Array,
): { subject: Descriptor; entry: Descriptor } | undefined {
  let parsed: ParsedManifest;
  try {
    parsed = parseManifest(bytes, desc.mediaType);
  } catch {
    return undefined;
  }
  const subject = parsed.kind === 'index' ? parsed.index.subject : parsed.manifest.subject;
  return subject ? { subject, entry: referrerEntry(desc, parsed) } : undefined;
}

/** A referrers index as read: its entries (each digest once), and what the tag named (`at`). */
interface IndexState {
  manifests: Descriptor[];
  /** The tag names an index (not the subject, not something else). */
  found: boolean;
  /** The digest the tag resolved to; none when there is no such tag. */
  at?: string | undefined;
}

/** What the tag `<alg>-<hex>` names now (nothing when there is no such tag). */
async function tagged(
  target: Target,
  subject: Descriptor,
  signal: AbortSignal | undefined,
): Promise<Descriptor | undefined> {
  return resolveIfPresent(target, referrersTag(subject.digest), { signal });
}

/** What the tag `<alg>-<hex>` holds now, as a referrers index: none when it is missing or no index. */
async function currentIndex(
  target: Target,
  subject: Descriptor,
  signal: AbortSignal | undefined,
): Promise<IndexState> {
  const desc = await tagged(target, subject, signal);
  if (!desc) return { manifests: [], found: false };
  const tag = referrersTag(subject.digest);
  const none = { manifests: [], found: false, at: desc.digest };
  // GitLab resolves a sha256-<hex> tag to the manifest of that digest: the subject is not its own index.
  if (desc.digest === subject.digest || !INDEX_MEDIA_TYPES.includes(desc.mediaType)) return none;
  let bytes: Buffer;
  try {
    bytes = await readVerified(await target.fetch(desc, { signal }), desc, MAX_MANIFEST_BYTES);
  } catch (err) {
    if (hasCode(err, 'TOO_LARGE')) {
      throw new WasmOciError('TOO_LARGE', `the referrers index under the tag ${tag} is larger than 4 MiB`, {
        cause: err,
        hint: 'remove referrers (detach) or the tag before adding more',
      });
    }
    throw err;
  }
  let parsed: ParsedManifest;
  try {
    parsed = parseManifest(bytes, desc.mediaType);
  } catch (err) {
    // Not an index at all (garbage under a reserved tag): a fresh index replaces it.
    if (hasCode(err, 'INVALID_MANIFEST') || hasCode(err, 'UNSUPPORTED')) return none;
    throw err;
  }
  if (parsed.kind !== 'index') return none;
  return { manifests: uniqueDigests(parsed.index.manifests), found: true, at: desc.digest };
}

async function writeIndex(
  target: Target,
  subject: Descriptor,
  manifests: Descriptor[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const tag = referrersTag(subject.digest);
  const bytes = serializeIndex({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests });
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new WasmOciError('TOO_LARGE', `the referrers index under the tag ${tag} would pass 4 MiB`, {
      hint: 'remove referrers (detach) before adding more',
    });
  }
  const desc: Descriptor = { mediaType: MediaType.ociIndex, digest: digestOf(bytes), size: bytes.byteLength };
  if (canPushReference(target)) await target.pushReference(desc, bytes, tag, { signal });
  else {
    await target.push(desc, bytes, { signal });
    await target.tag(desc, tag, { signal });
  }
}

/**
 * One read-modify-write of the subject's referrers index, made as safe as a registry without
 * compare-and-swap allows: the tag is resolved once more just before the write (changed since it was
 * read: read again); after the write the index is read back at once and again after a settling wait
 * (where the target has no index lock). When our change is gone, a writer that read the index before
 * our write replaced it: the entries of our write that it dropped go back in with ours, and we try
 * again after a growing jittered wait (bounded). `change` returns the new list, or nothing when the
 * index needs no write; `holds` says whether a list shows our change; `dropped` is the digest our
 * change removes, never put back.
 */
async function updateIndex(
  target: Target,
  subject: Descriptor,
  change: (current: IndexState) => Descriptor[] | undefined,
  holds: (manifests: Descriptor[]) => boolean,
  options: ReferrersIndexOptions,
  dropped?: string,
): Promise<boolean> {
  const { signal } = options;
  const attempts = Math.max(1, options.attempts ?? DEFAULT_ATTEMPTS);
  const sleep = options.sleep ?? abortableSleep;
  const random = options.random ?? Math.random;
  const jitter = (ms: number) => Math.round(ms * (0.5 + random()));
  const locked = canLockIndex(target);
  const run = <T>(fn: () => Promise<T>) => (canLockIndex(target) ? target.lockIndex(fn) : fn());
  /** What our last write listed: put back what a stale writer dropped of it. */
  let carried: Descriptor[] = [];
  for (let attempt = 1; ; attempt++) {
    const started = Date.now();
    const wrote = await run(async () => {
      const current = await currentIndex(target, subject, signal);
      const listed = new Set(current.manifests.map((d) => d.digest));
      const lost = carried.filter((d) => !listed.has(d.digest) && d.digest !== dropped);
      const merged = { ...current, manifests: [...current.manifests, ...lost] };
      const next = change(merged) ?? (lost.length ? merged.manifests : undefined);
      if (next === undefined) return false;
      if (!locked && (await tagged(target, subject, signal))?.digest !== current.at) return undefined;
      await writeIndex(target, subject, next, signal);
      carried = next;
      return true;
    });
    if (wrote === false) return false;
    const took = Date.now() - started;
    if (wrote && holds((await currentIndex(target, subject, signal)).manifests)) {
      if (locked) return true;
      const settle = Math.min(Math.max(options.settleMs ?? DEFAULT_SETTLE_MS, 4 * took), MAX_SETTLE_MS);
      // Never shorter than the settle time itself: the jitter only adds (up to half).
      await sleep(Math.round(settle * (1 + random() / 2)), signal);
      if (holds((await currentIndex(target, subject, signal)).manifests)) return true;
    }
    if (attempt >= attempts) {
      throw new WasmOciError(
        'REGISTRY',
        `another writer kept replacing the referrers index ${referrersTag(subject.digest)}; gave up after ${attempts} tries`,
        { hint: 'try again when the other writers are done' },
      );
    }
    await sleep(jitter(Math.min(FIRST_BACKOFF_MS * 2 ** (attempt - 1), MAX_BACKOFF_MS)), signal);
  }
}

/**
 * Lists `entry` in the referrers index of `subject` (the tag schema: an image index under
 * `<alg>-<hex>`), for a target that keeps no referrers itself: a missing tag, one naming the subject
 * itself (GitLab) or anything that is no index starts a fresh index; an entry of the same digest is
 * replaced (so one written without `artifactType` gets it). True when the index was written.
 */
export function addReferrer(
  target: Target,
  subject: Descriptor,
  entry: Descriptor,
  options: ReferrersIndexOptions = {},
): Promise<boolean> {
  const same = (d: Descriptor) => goDescriptor(d).json === goDescriptor(entry).json;
  return updateIndex(
    target,
    subject,
    ({ manifests }) =>
      manifests.some(same) ? undefined : [...manifests.filter((d) => d.digest !== entry.digest), entry],
    (manifests) => manifests.some((d) => d.digest === entry.digest),
    options,
  );
}

/**
 * Removes the entry of `digest` from the referrers index of `subject` (read, modify, write, confirm,
 * as addReferrer). True when it was listed; a missing index, or one without it, is left as it is.
 */
export function removeReferrer(
  target: Target,
  subject: Descriptor,
  digest: string,
  options: ReferrersIndexOptions = {},
): Promise<boolean> {
  return updateIndex(
    target,
    subject,
    ({ manifests, found }) =>
      found && manifests.some((d) => d.digest === digest)
        ? manifests.filter((d) => d.digest !== digest)
        : undefined,
    (manifests) => !manifests.some((d) => d.digest === digest),
    options,
    digest,
  );
}
