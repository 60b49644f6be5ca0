import type { ReadOnlyTarget, Target } from '../content/types.js';
import { copy, fetchManifest, type ProgressEvent } from '../copy.js';
import { hasCode, WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { referrersTag } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
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
  /** Also copy the artifacts that refer to it (signatures...), found through the referrers tag schema. */
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
    const root = await copy(src.target, targetReference(source), dst.target, first, {
      ...copyOptions,
      tags: more,
    });
    const referrers = options.recursive ? await copyReferrers(src.target, dst.target, root, copyOptions) : 0;
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

/**
 * Copies the artifacts that refer to `subject` (and theirs, in turn), as listed by the referrers tag
 * schema `sha256-<hex>`: the index under that tag is copied too, so the destination lists them the
 * same way (Distribution 2.8 has no referrers API).
 */
async function copyReferrers(
  src: ReadOnlyTarget,
  dst: Target,
  subject: Descriptor,
  options: Parameters<typeof copy>[4],
  seen = new Set<string>(),
): Promise<number> {
  if (seen.has(subject.digest)) return 0;
  seen.add(subject.digest);
  const tag = referrersTag(subject.digest);
  let index: Descriptor;
  try {
    index = await src.resolve(tag, { signal: options?.signal });
  } catch (err) {
    if (hasCode(err, 'NOT_FOUND')) return 0;
    throw err;
  }
  await copy(src, tag, dst, tag, options);
  const parsed = parseManifest(await fetchManifest(src, index, options?.signal), index.mediaType);
  if (parsed.kind !== 'index') return 0;
  let count = parsed.index.manifests.length;
  for (const referrer of parsed.index.manifests)
    count += await copyReferrers(src, dst, referrer, options, seen);
  return count;
}
