import { listReferrers } from '../content/referrers.js';
import type { ReadOnlyTarget, Target } from '../content/types.js';
import { copy, type ProgressEvent } from '../copy.js';
import { WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { isManifestMediaType } from '../oci/mediatypes.js';
import { registryMemory } from '../registry/client.js';
import {
  type ConnectOptions,
  formatTarget,
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
  const { referrers } = await listReferrers(src, subject, { signal: options?.signal });
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
