import { DEFAULT_CONCURRENCY } from '../content/defaults.js';
import { listReferrers } from '../content/referrers.js';
import { canListTags, type ReadOnlyTarget, resolveIfPresent, type Target } from '../content/types.js';
import { CopySession, copy, type ProgressEvent } from '../copy.js';
import { type ErrorCode, WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { isManifestMediaType } from '../oci/mediatypes.js';
import { registryMemory } from '../registry/client.js';
import { type TagSelection, tagFilter } from './tag-glob.js';
import {
  type ConnectOptions,
  formatTarget,
  type OpenTarget,
  openTarget,
  parseTarget,
  type TargetSpec,
  targetReference,
} from './target.js';

export interface CopyArtifactOptions extends ConnectOptions {
  /** Credentials for the source's registry (default: `credentials`). */
  sourceCredentials?: ConnectOptions['credentials'];
  /** Credentials for the destination's registry (default: `credentials`). */
  destinationCredentials?: ConnectOptions['credentials'];
  /** `host/repo[:tag][@digest]` or `oci:<dir>[:tag][@digest]`. */
  source: string;
  /** Same forms; `:tag1,tag2` tags the copy several times. Without a tag, the source's tag is used. */
  destination: string;
  fromOciLayout?: boolean | undefined;
  toOciLayout?: boolean | undefined;
  /** More tags for the copy. */
  tags?: readonly string[] | undefined;
  /**
   * Also copy the artifacts that refer to it (signatures, SBOMs...), and theirs, as the source lists them
   * (referrers API or tag schema); the tags move only once all of them are copied.
   */
  recursive?: boolean | undefined;
  concurrency?: number | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((event: ProgressEvent) => void) | undefined;
}

export interface CopyArtifactResult {
  source: string;
  /** Every destination reference written. */
  destinations: string[];
  digest: string;
  mediaType: string;
  /** The root's descriptor (the manifest or index copied). */
  manifest: Descriptor;
  /** Blob bytes sent to the destination. */
  copiedBytes: number;
  /** Blobs mounted from the source repository instead of sent. */
  mountedBlobs: number;
  /** Blobs and manifests the destination already had. */
  skipped: number;
  /** Referring artifacts copied with --recursive. */
  referrers: number;
}

/** Splits `ref:tag1,tag2` into the reference with its first tag and the other tags. */
export function splitTags(input: string): { reference: string; tags: string[] } {
  const match = /^(.*):([\w][\w.-]*(?:,[\w][\w.-]*)+)$/.exec(input);
  if (!match) return { reference: input, tags: [] };
  const [first, ...rest] = (match[2] ?? '').split(',');
  return { reference: `${match[1]}:${first}`, tags: rest };
}

/** Opens the source for reading and the destination for pushing, each with its own credentials. */
function openBoth(
  source: TargetSpec,
  destination: TargetSpec,
  options: ConnectOptions & Pick<CopyArtifactOptions, 'sourceCredentials' | 'destinationCredentials'>,
): { src: OpenTarget; dst: OpenTarget } {
  // One memory for both sides: a registry's scheme and upload scheme are learnt once.
  const memory = options.memory ?? registryMemory();
  const src = openTarget(source, 'pull', {
    ...options,
    memory,
    credentials: options.sourceCredentials ?? options.credentials,
  });
  const dst = openTarget(destination, 'push', {
    ...options,
    memory,
    credentials: options.destinationCredentials ?? options.credentials,
  });
  return { src, dst };
}

/**
 * Copies an artifact between any two targets (registry repositories and layouts) with the one copy():
 * the whole graph, skipping what the destination has, mounting blobs across repositories of one
 * registry, streaming across registries; digests are preserved byte for byte.
 */
export async function copyArtifact(options: CopyArtifactOptions): Promise<CopyArtifactResult> {
  const source = parseTarget(options.source, { layout: options.fromOciLayout });
  const split = splitTags(options.destination);
  let destination: TargetSpec = parseTarget(split.reference, { layout: options.toOciLayout });
  if (destination.defaultedTag) {
    // No tag given: keep the source's tag, or none at all for a copy by digest.
    destination = { ...destination, tag: source.digest ? undefined : source.tag, defaultedTag: false };
  }
  if (destination.digest !== undefined) {
    throw new WasmOciError('USAGE', 'the destination takes tags, not a digest: the digest is the source’s', {
      hint: 'write the destination as host/repo[:tag,...] or oci:<dir>[:tag]',
    });
  }
  const { src, dst } = openBoth(source, destination, options);
  let copiedBytes = 0;
  let mountedBlobs = 0;
  let skipped = 0;
  const onProgress = (event: ProgressEvent) => {
    if (event.type === 'done' && !isManifestMediaType(event.desc.mediaType)) copiedBytes += event.desc.size;
    if (event.type === 'mount') mountedBlobs++;
    if (event.type === 'skip') skipped++;
    options.onProgress?.(event);
  };
  const copyOptions = { signal: options.signal, concurrency: options.concurrency, onProgress };
  try {
    const tags = [
      ...(destination.tag !== undefined ? [destination.tag] : []),
      ...split.tags,
      ...(options.tags ?? []),
    ];
    const [first, ...more] = tags;
    let root: Descriptor;
    let referrers = 0;
    if (options.recursive) {
      // The tags move only once the artifact and everything that refers to it are there.
      root = await copy(src.target, targetReference(source), dst.target, undefined, copyOptions);
      referrers = await copyReferrers(src.target, dst.target, root, copyOptions);
      for (const tag of tags) await dst.target.tag(root, tag, { signal: options.signal });
    } else {
      root = await copy(src.target, targetReference(source), dst.target, first, {
        ...copyOptions,
        tags: more,
      });
    }
    return {
      source: formatTarget(source),
      destinations: tags.length
        ? tags.map((t) => formatTarget(destination, t))
        : [`${formatTarget(destination)}@${root.digest}`],
      digest: root.digest,
      mediaType: root.mediaType,
      manifest: root,
      copiedBytes,
      mountedBlobs,
      skipped,
      referrers,
    };
  } finally {
    src.close();
    dst.close();
  }
}

/** At most this many referrers are copied with one artifact (a registry could list without end). */
const MAX_REFERRERS = 10_000;

/**
 * Copies the artifacts that refer to `subject` (and theirs, in turn, each digest once), as the source
 * lists them (its referrers API, else the `<alg>-<hex>` tag schema). Each goes through copy() by digest;
 * the destination lists it the way it can: a registry with the referrers API by itself (`OCI-Subject`),
 * anything else in the subject's `<alg>-<hex>` index, kept by the destination's push
 * (content/referrers.ts addReferrer).
 */
async function copyReferrers(
  src: ReadOnlyTarget,
  dst: Target,
  subject: Descriptor,
  options: Parameters<typeof copy>[4],
  seen = new Set<string>([subject.digest]),
): Promise<number> {
  // Within a session, these requests share its limit with the copies.
  const run = <T>(job: () => Promise<T>): Promise<T> => options?.session?.run(job) ?? job();
  const { referrers } = await run(() => listReferrers(src, subject, { signal: options?.signal }));
  let count = 0;
  for (const referrer of referrers) {
    if (seen.has(referrer.digest)) continue;
    seen.add(referrer.digest);
    if (seen.size > MAX_REFERRERS) {
      throw new WasmOciError('TOO_LARGE', `more than ${MAX_REFERRERS} referrers; stopped`);
    }
    await copy(src, referrer.digest, dst, undefined, options);
    count += 1 + (await copyReferrers(src, dst, referrer, options, seen));
  }
  return count;
}

/** True when `target` has `tag` pointing at `desc` (a missing tag is false; other failures throw). */
async function hasTag(target: Target, tag: string, desc: Descriptor, signal?: AbortSignal): Promise<boolean> {
  return (await resolveIfPresent(target, tag, { signal }))?.digest === desc.digest;
}

export interface CopyAllTagsOptions
  extends Omit<CopyArtifactOptions, 'tags' | 'source' | 'destination'>,
    TagSelection {
  /** `host/repo` or `oci:<dir>`, with neither tag nor digest: every tag of it is copied. */
  source: string;
  /** `host/repo` or `oci:<dir>`, with neither tag nor digest: each tag keeps its name. */
  destination: string;
  /** Tags copied at once (default `DEFAULT_CONCURRENCY`); their requests share the same limit. */
  concurrency?: number | undefined;
  /** Called as each tag is settled (copied, skipped or failed), in the order they settle. */
  onTag?: ((outcome: TagOutcome) => void) | undefined;
}

/** A tag copied, or skipped because the destination had it on the same manifest. */
export interface CopiedTag {
  tag: string;
  manifest: { mediaType: string; digest: string; size: number };
  /** Blob bytes sent for this tag (a blob that tags share counts for the one that sent it). */
  bytesSent: number;
  /** The destination had this tag on this manifest already: nothing was fetched or sent for it. */
  skipped: boolean;
  /** With `recursive`: the referring artifacts found (copied now or there already). */
  referrers?: number;
}

/** A tag that could not be copied; the other tags still were. */
export interface FailedTag {
  tag: string;
  error: { code: ErrorCode; message: string; hint?: string };
}

export type TagOutcome = CopiedTag | FailedTag;

export interface CopyAllTagsResult {
  source: string;
  destination: string;
  /** The tags copied or skipped, sorted. */
  tags: CopiedTag[];
  /** Blob bytes sent in all. */
  bytesSent: number;
  /** The tags that failed, sorted. */
  failed: FailedTag[];
}

/** The spec of a repository or layout as a whole: a tag or a digest is refused. */
function wholeRepository(input: string, layout: boolean | undefined, side: string): TargetSpec {
  const spec = parseTarget(input, { layout });
  if (!spec.defaultedTag) {
    const bare = formatTarget({ ...spec, tag: undefined, digest: undefined });
    throw new WasmOciError(
      'USAGE',
      `copying every tag needs a ${side} repository, not a tag or digest: ${input}`,
      {
        hint: `write the ${side} without a tag or digest: ${bare}`,
      },
    );
  }
  return { ...spec, tag: undefined, defaultedTag: false };
}

/**
 * Copies every tag of a repository or layout (those the `include` and `exclude` patterns select) to
 * another, in one session: one client per side, so connections and tokens serve every tag; blobs the
 * tags share are sent once; a tag the destination has on the same manifest is skipped without
 * fetching anything more. A tag that fails is reported in `failed` and the others are still copied;
 * cancellation and failures to list the tags end the whole copy.
 */
export async function copyAllTags(options: CopyAllTagsOptions): Promise<CopyAllTagsResult> {
  const select = tagFilter(options);
  const source = wholeRepository(options.source, options.fromOciLayout, 'source');
  const destination = wholeRepository(options.destination, options.toOciLayout, 'destination');
  const { signal } = options;
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
  const { src, dst } = openBoth(source, destination, options);
  try {
    if (!canListTags(src.target)) {
      throw new WasmOciError('USAGE', `${formatTarget(source)} cannot list its tags`);
    }
    const listed = new Set<string>();
    for await (const page of src.target.tagPages({ signal })) for (const t of page) listed.add(t);
    // In code-unit order, whatever order the registry lists them in (Distribution 2.8 does not sort).
    const tags = [...listed].filter(select).sort();
    const session = new CopySession(concurrency);
    // Tags on one manifest share its referrers: found and copied once, counted for each of them.
    const referrersOf = new Map<string, Promise<number>>();
    const outcomes = new Map<string, TagOutcome>();

    const copyTag = async (tag: string): Promise<CopiedTag> => {
      let bytesSent = 0;
      const onProgress = (event: ProgressEvent) => {
        if (event.type === 'done' && !isManifestMediaType(event.desc.mediaType)) bytesSent += event.desc.size;
        options.onProgress?.(event);
      };
      const copyOptions = { signal, onProgress, session };
      const root = await session.run(() => src.target.resolve(tag, { signal }));
      const skipped = await session.run(() => hasTag(dst.target, tag, root, signal));
      if (!skipped) await copy(src.target, root, dst.target, tag, copyOptions);
      let referrers: number | undefined;
      if (options.recursive) {
        let pending = referrersOf.get(root.digest);
        if (!pending) {
          pending = copyReferrers(src.target, dst.target, root, copyOptions);
          referrersOf.set(root.digest, pending);
        }
        referrers = await pending;
      }
      const { mediaType, digest, size } = root;
      return {
        tag,
        manifest: { mediaType, digest, size },
        bytesSent,
        skipped: skipped && bytesSent === 0,
        ...(referrers !== undefined ? { referrers } : {}),
      };
    };

    // `concurrency` workers take the tags in turn; a failure that is not the tag's own (cancellation,
    // a bug) stops them taking more, and is thrown once they have all stopped.
    let next = 0;
    let fatal: { error: unknown } | undefined;
    const worker = async () => {
      while (fatal === undefined && next < tags.length) {
        const tag = tags[next++] as string;
        let outcome: TagOutcome;
        try {
          outcome = await copyTag(tag);
        } catch (err) {
          if (!(err instanceof WasmOciError) || err.code === 'ABORTED' || signal?.aborted) {
            fatal ??= { error: err };
            return;
          }
          outcome = {
            tag,
            error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) },
          };
        }
        outcomes.set(tag, outcome);
        options.onTag?.(outcome);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, tags.length) }, worker));
    if (fatal !== undefined) throw fatal.error;
    const settled = tags.map((t) => outcomes.get(t) as TagOutcome);
    const copied = settled.filter((o): o is CopiedTag => !('error' in o));
    return {
      source: formatTarget(source),
      destination: formatTarget(destination),
      tags: copied,
      bytesSent: copied.reduce((sum, o) => sum + o.bytesSent, 0),
      failed: settled.filter((o): o is FailedTag => 'error' in o),
    };
  } finally {
    src.close();
    dst.close();
  }
}
