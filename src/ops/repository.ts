import { FileOutputStore } from '../content/file.js';
import { canDeleteManifest, canListTags, canStatBlob, type TagListOptions } from '../content/types.js';
import { copyGraph, fetchManifest, type ProgressEvent } from '../copy.js';
import { WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { isDigest } from '../oci/digest.js';
import { isValidTag } from '../reference.js';
import {
  type ConnectOptions,
  formatTarget,
  openTarget,
  parseTarget,
  type TargetSpec,
  targetReference,
} from './target.js';

/**
 * Registry housekeeping on any target (registry repository or layout): tags, resolve, tag, manifest
 * get/delete and blob get. Each is one call taking a reference string, as crane's facade does.
 */

export interface TargetOptions extends ConnectOptions {
  reference: string;
  ociLayout?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

/** Bounds of a tag listing (defaults: 1000 tags a page, at most 10,000 pages and 64 MiB). */
export type TagListBounds = Omit<TagListOptions, 'signal'>;

type OpenedTarget = ReturnType<typeof openTarget>['target'];

async function withTarget<T>(
  options: TargetOptions,
  access: 'pull' | 'push',
  fn: (t: OpenedTarget, spec: ReturnType<typeof parseTarget>) => Promise<T>,
): Promise<T> {
  const spec = parseTarget(options.reference, { layout: options.ociLayout });
  const opened = openTarget(spec, access, options);
  try {
    return await fn(opened.target, spec);
  } finally {
    opened.close();
  }
}

/** A target without a capability an operation needs. */
function unsupported(what: string, reference: string): WasmOciError {
  return new WasmOciError('USAGE', `${reference} cannot ${what}`);
}

/** Every tag of a repository or layout (bounded: a registry that paginates without end is stopped). */
export async function listTags(options: TargetOptions & TagListBounds): Promise<string[]> {
  const tags: string[] = [];
  for await (const page of tagPages(options)) tags.push(...page);
  return tags;
}

/** The tags page by page, as the registry sends them (a layout's come in one page). */
export async function* tagPages(options: TargetOptions & TagListBounds): AsyncGenerator<string[]> {
  const spec = parseTarget(options.reference, { layout: options.ociLayout });
  const opened = openTarget(spec, 'pull', options);
  try {
    const { target } = opened;
    if (!canListTags(target)) throw unsupported('list tags', options.reference);
    const { pageSize, maxPages, maxBytes, signal } = options;
    yield* target.tagPages({ signal, pageSize, maxPages, maxBytes });
  } finally {
    opened.close();
  }
}

/** The descriptor (digest, media type, size) of what a reference names. */
export function resolveReference(options: TargetOptions): Promise<Descriptor & { reference: string }> {
  return withTarget(options, 'pull', async (t, spec) => ({
    ...(await t.resolve(targetReference(spec), { signal: options.signal })),
    reference: formatTarget(spec),
  }));
}

/**
 * The tag a `tag` argument names: a bare tag, or a full reference in the same repository or layout
 * (`host/repo:v9` beside `host/repo:v1`, as crane and regctl accept). Anything else is a usage error,
 * raised before any tag is written.
 */
export function tagInSameTarget(spec: TargetSpec, argument: string, ociLayout?: boolean): string {
  if (isValidTag(argument)) return argument;
  const where = formatTarget({ ...spec, tag: undefined, digest: undefined });
  let other: TargetSpec;
  try {
    other = parseTarget(argument, { layout: ociLayout || spec.kind === 'layout' });
  } catch {
    throw new WasmOciError('USAGE', `"${argument}" is neither a tag nor a reference`, {
      hint: `give a tag (letters, digits, "_", "." and "-", up to 128) or ${where}:<tag>`,
    });
  }
  const same =
    other.kind === spec.kind &&
    (other.kind === 'registry' && spec.kind === 'registry'
      ? other.ref.registry === spec.ref.registry && other.ref.repository === spec.ref.repository
      : other.kind === 'layout' && spec.kind === 'layout' && other.path === spec.path);
  if (!same) {
    throw new WasmOciError('USAGE', `${argument} is not in ${where}: tag names tags within one repository`, {
      hint: `to put the artifact in another repository, copy it there: copy ${formatTarget(spec)} ${argument}`,
    });
  }
  if (other.digest !== undefined || other.defaultedTag || other.tag === undefined) {
    throw new WasmOciError('USAGE', `${argument} names no tag`, { hint: `write it as ${where}:<tag>` });
  }
  return other.tag;
}

/**
 * Points more tags at what a reference names, without re-uploading anything. Each tag is a bare tag or
 * a reference in the same repository; all are checked before the first is written.
 */
export function tagReference(
  options: TargetOptions & { tags: readonly string[] },
): Promise<{ desc: Descriptor; references: string[] }> {
  const spec = parseTarget(options.reference, { layout: options.ociLayout });
  const tags = options.tags.map((t) => tagInSameTarget(spec, t, options.ociLayout));
  return withTarget(options, 'push', async (t, spec) => {
    const desc = await t.resolve(targetReference(spec), { signal: options.signal });
    for (const tag of tags) await t.tag(desc, tag, { signal: options.signal });
    const untagged = { ...spec, digest: undefined };
    return { desc, references: tags.map((tag) => formatTarget(untagged, tag)) };
  });
}

/** A manifest's exact bytes and descriptor. */
export function getManifest(options: TargetOptions): Promise<{ desc: Descriptor; bytes: Buffer }> {
  return withTarget(options, 'pull', async (t, spec) => {
    const desc = await t.resolve(targetReference(spec), { signal: options.signal });
    return { desc, bytes: await fetchManifest(t, desc, options.signal) };
  });
}

/**
 * Deletes a manifest by digest; a tag is resolved first (`resolvedFromTag` says so, since every tag
 * of that manifest goes with it).
 */
export function deleteManifest(
  options: TargetOptions,
): Promise<{ digest: string; manifest: Descriptor; resolvedFromTag: string | undefined }> {
  return withTarget(options, 'push', async (t, spec) => {
    const reference = targetReference(spec);
    // Resolved by digest too: the result names what was deleted, and a missing one is NOT_FOUND.
    const manifest = await t.resolve(reference, { signal: options.signal });
    if (!canDeleteManifest(t)) throw unsupported('delete manifests', options.reference);
    await t.deleteManifest(manifest.digest, { signal: options.signal });
    return {
      digest: manifest.digest,
      manifest,
      resolvedFromTag: isDigest(reference) ? undefined : reference,
    };
  });
}

/** Downloads one blob (`repo@sha256:...`) into a file, verified, atomically. */
export function getBlob(
  options: TargetOptions & { output: string; onProgress?: ((event: ProgressEvent) => void) | undefined },
): Promise<Descriptor> {
  return withTarget(options, 'pull', async (t, spec) => {
    if (spec.digest === undefined) {
      throw new WasmOciError('USAGE', `blob get needs a digest: ${options.reference}`, {
        hint: 'write it as host/repository@sha256:<digest>',
      });
    }
    if (!canStatBlob(t)) throw unsupported('describe blobs', options.reference);
    const desc = await t.blobDescriptor(spec.digest, { signal: options.signal });
    const sink = new FileOutputStore();
    sink.expect(desc, options.output);
    await copyGraph(t, sink, desc, { signal: options.signal, onProgress: options.onProgress });
    return desc;
  });
}
