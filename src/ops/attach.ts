import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { FileBackedStore } from '../content/file.js';
import { fileError } from '../content/output.js';
import { referrerOf } from '../content/referrers.js';
import { canDeleteManifest } from '../content/types.js';
import { copy, fetchManifest, type ProgressEvent } from '../copy.js';
import { WasmOciError } from '../errors.js';
import {
  ANNOTATION_CREATED,
  ANNOTATION_TITLE,
  type Annotations,
  type Descriptor,
  EMPTY_DESCRIPTOR,
  EMPTY_JSON,
  isMediaType,
} from '../oci/descriptor.js';
import { Digester, isDigest } from '../oci/digest.js';
import { type ImageManifest, serializeManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';
import type { TargetOptions } from './repository.js';
import { formatTarget, openTarget, parseTarget, targetReference } from './target.js';

/** The layer media type of a file given without one. */
export const DEFAULT_FILE_MEDIA_TYPE = 'application/octet-stream';

/** Files up to this size are read into memory; larger ones are hashed, then streamed from disk. */
const IN_MEMORY_LIMIT = 16 * 1024 * 1024;

export interface AttachFile {
  path: string;
  /** The layer's media type (default `application/octet-stream`). */
  mediaType?: string | undefined;
}

/**
 * `path[:type]` as oras writes it: a suffix after the last `:` that is a media type (`type/subtype`)
 * is the layer's media type; anything else is part of the path.
 */
export function parseAttachFile(argument: string): AttachFile {
  const colon = argument.lastIndexOf(':');
  if (colon > 0) {
    const type = argument.slice(colon + 1);
    if (isMediaType(type)) return { path: argument.slice(0, colon), mediaType: type };
    if (type.includes('/') && !argument.slice(0, colon).includes('/')) {
      throw new WasmOciError('USAGE', `"${type}" is not a media type (type/subtype)`, {
        hint: 'write a file as path[:type/subtype], e.g. sbom.json:application/spdx+json',
      });
    }
  }
  return { path: argument };
}

export interface AttachOptions extends TargetOptions {
  /** The artifact's `artifactType` (required). */
  artifactType: string;
  files: readonly AttachFile[];
  /** Manifest annotations (`org.opencontainers.image.created` is added, as oras does, unless given). */
  annotations?: Annotations | undefined;
  /** The creation time (default: now). */
  now?: Date | undefined;
  concurrency?: number | undefined;
  onProgress?: ((event: ProgressEvent) => void) | undefined;
}

export interface AttachResult {
  /** The referrer, by digest: `host/repo@sha256:…`. */
  reference: string;
  subject: Descriptor;
  manifest: Descriptor;
  artifactType: string;
  layers: Descriptor[];
}

/** Hashes a file (a regular one) and keeps it in the store: small ones in memory, others linked. */
async function addFile(store: FileBackedStore, file: AttachFile): Promise<Descriptor> {
  const mediaType = file.mediaType ?? DEFAULT_FILE_MEDIA_TYPE;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file.path, 'r');
  } catch (err) {
    throw fileError(err as NodeJS.ErrnoException, file.path);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new WasmOciError('FILE', `${file.path}: not a regular file`);
    const title = { [ANNOTATION_TITLE]: basename(file.path) };
    if (info.size <= IN_MEMORY_LIMIT) {
      const bytes = await handle.readFile();
      return { ...store.add(mediaType, bytes), annotations: title };
    }
    const digester = new Digester();
    let size = 0;
    for await (const chunk of createReadStream('', { fd: handle.fd, autoClose: false, start: 0 })) {
      digester.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    const desc: Descriptor = { mediaType, digest: digester.digest(), size, annotations: title };
    store.linkFile(desc, file.path);
    return desc;
  } finally {
    await handle.close();
  }
}

/**
 * Attaches files to the manifest `reference` names, as oras attach does: an image manifest with that
 * manifest as its `subject`, the given `artifactType`, the empty config and one layer per file (titled
 * by its base name; the empty descriptor when there are none). Pushed by digest through copy(); where the registry keeps no referrers (no
 * `OCI-Subject` answer) or the target is a layout, the subject's `<alg>-<hex>` index lists it.
 */
export async function attach(options: AttachOptions): Promise<AttachResult> {
  if (!isMediaType(options.artifactType)) {
    throw new WasmOciError('USAGE', `the artifact type must be a media type, not "${options.artifactType}"`, {
      hint: 'for example application/vnd.example.sbom.v1+json',
    });
  }
  if (options.files.length === 0 && !Object.keys(options.annotations ?? {}).length) {
    throw new WasmOciError('USAGE', 'nothing to attach: give files or annotations');
  }
  const titles = new Set<string>();
  for (const file of options.files) {
    const title = basename(file.path);
    if (titles.has(title)) throw new WasmOciError('USAGE', `two files are named ${title}`);
    titles.add(title);
  }
  const spec = parseTarget(options.reference, { layout: options.ociLayout });
  const { signal } = options;
  const { target, close } = openTarget(spec, 'push', options);
  try {
    const found = await target.resolve(targetReference(spec), { signal });
    const subject: Descriptor = { mediaType: found.mediaType, digest: found.digest, size: found.size };
    const store = new FileBackedStore();
    store.add(EMPTY_DESCRIPTOR.mediaType, EMPTY_JSON);
    const layers: Descriptor[] = [];
    for (const file of options.files) layers.push(await addFile(store, file));
    // No files (annotations only): the empty descriptor as the one layer, as the image spec advises.
    if (layers.length === 0) layers.push(EMPTY_DESCRIPTOR);
    const created = (options.now ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: options.artifactType,
      config: EMPTY_DESCRIPTOR,
      layers,
      subject,
      annotations: { [ANNOTATION_CREATED]: created, ...(options.annotations ?? {}) },
    };
    const desc = store.add(MediaType.ociManifest, Buffer.from(serializeManifest(manifest)));
    await copy(store, desc.digest, target, undefined, {
      signal,
      concurrency: options.concurrency,
      onProgress: options.onProgress,
    });
    return {
      reference: formatTarget({ ...spec, tag: undefined, digest: desc.digest }),
      subject,
      manifest: desc,
      artifactType: options.artifactType,
      layers,
    };
  } finally {
    close();
  }
}

export interface DetachOptions extends TargetOptions {
  /** The digest of the referrer to remove. */
  referrer: string;
}

export interface DetachResult {
  /** The subject, by digest. */
  reference: string;
  subject: Descriptor;
  /** The referrer removed. */
  digest: string;
}

/**
 * Removes a referrer of the manifest `reference` names: its entry leaves the subject's `<alg>-<hex>`
 * index (read, modify, write, confirmed), then the referrer's manifest is deleted.
 */
export async function detach(options: DetachOptions): Promise<DetachResult> {
  if (!isDigest(options.referrer)) {
    throw new WasmOciError('INVALID_DIGEST', `"${options.referrer}" is not a digest`, {
      hint: 'name the referrer by its digest, as discover shows it: sha256:<hex>',
    });
  }
  const spec = parseTarget(options.reference, { layout: options.ociLayout });
  const { signal } = options;
  const { target, close } = openTarget(spec, 'push', options);
  try {
    const subject = await target.resolve(targetReference(spec), { signal });
    const referrer = await target.resolve(options.referrer, { signal });
    const referred = referrerOf(referrer, await fetchManifest(target, referrer, signal));
    if (referred?.subject.digest !== subject.digest) {
      throw new WasmOciError(
        'USAGE',
        `${options.referrer} does not refer to ${formatTarget(spec)} (${subject.digest})`,
        { hint: 'see what refers to it with: discover' },
      );
    }
    if (!canDeleteManifest(target))
      throw new WasmOciError('UNSUPPORTED', 'this target cannot delete manifests');
    // The target's delete takes the entry out of the subject's index first (content/referrers.ts).
    await target.deleteManifest(referrer.digest, { signal });
    return {
      reference: formatTarget({ ...spec, tag: undefined, digest: subject.digest }),
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      digest: referrer.digest,
    };
  } finally {
    close();
  }
}
