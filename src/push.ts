import type { Stats } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { DigestCache } from './content/digest-cache.js';
import { FileBackedStore } from './content/file.js';
import { fileError } from './content/output.js';
import { copy, copyGraph, ingest, type ProgressEvent } from './copy.js';
import { hasCode, throwIfAborted, WasmOciError } from './errors.js';
import type { Annotations, Descriptor } from './oci/descriptor.js';
import { isManifestMediaType } from './oci/mediatypes.js';
import { isValidTag } from './reference.js';
import type { TrustOptions } from './signing.js';
import {
  type ConnectOptions,
  formatTarget,
  openTarget,
  parseTarget,
  type TargetSpec,
  targetReference,
} from './target.js';
import { classicConfig, classicTitle, type PackedManifest, packClassic } from './wasm/classic.js';
import { creationTime, packCncf } from './wasm/cncf.js';
import { DIAGNOSIS_LENGTH, requireWasm, type WasmKind } from './wasm/detect.js';
import { inspectWasm, inspectWasmFile, type WasmInfo } from './wasm/inspect.js';
import { WasmMediaType } from './wasm/mediatypes.js';

export interface PushOptions extends ConnectOptions {
  /** The module's path, as the user typed it: it becomes the layer's title annotation. */
  file: string;
  /** How messages name the module (default: `file`); e.g. `standard input` for a spooled copy. */
  name?: string | undefined;
  /** Where to push: `host[:port]/repository[:tag]`, or a layout `oci:<dir>[:tag]`. */
  reference: string;
  /** Treat `reference` as an OCI image-layout directory (`<dir>[:tag]`) even without `oci:`. */
  ociLayout?: boolean | undefined;
  /** Override the title annotation ('' for none). */
  title?: string | undefined;
  /** `classic` (the original tool's, default) or `cncf` (the CNCF Wasm OCI Artifact layout). */
  format?: 'classic' | 'cncf' | undefined;
  /** cncf: the creation time (RFC 3339); else `sourceDateEpoch`, else now. */
  created?: string | undefined;
  /** cncf: `SOURCE_DATE_EPOCH` (seconds), for reproducible digests. */
  sourceDateEpoch?: string | undefined;
  /** cncf: the config's author. */
  author?: string | undefined;
  /** cncf: the WIT world a component targets (`component.target`). */
  targetWorld?: string | undefined;
  /** Manifest annotations. */
  annotations?: Annotations | undefined;
  /** The manifest's `artifactType` (opt-in). */
  artifactType?: string | undefined;
  /** More tags to point at the pushed manifest. */
  tags?: readonly string[] | undefined;
  /** Remembers digests of large files so an unchanged re-push sends no blob bytes. */
  digestCache?: DigestCache | undefined;
  concurrency?: number | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((event: ProgressEvent) => void) | undefined;
  /**
   * Sign the module with Notary v1 (TUF): a target per tag, in the collection `<registry>/<repository>`
   * of the trust server. The trust data is checked and the keys made ready before anything is pushed.
   */
  sign?: TrustOptions | undefined;
}

export interface SignResult {
  /** The trusted collection (GUN). */
  collection: string;
  /** The trust server's URL. */
  server: string;
  /** The signed target names (the tags). */
  targets: string[];
  /** True when this push created the collection (new root, targets and snapshot keys). */
  created: boolean;
}

export interface PushResult {
  /** The reference pushed, with its tag: `localhost:5000/hello:v1`. */
  reference: string;
  /** True when the input had no tag and `latest` was used. */
  defaultedTag: boolean;
  /** Digest of the manifest. */
  digest: string;
  /** Media type of the manifest. */
  mediaType: string;
  /** Size of the wasm layer (the module). */
  size: number;
  manifest: Descriptor;
  layer: Descriptor;
  kind: WasmKind;
  /** Every reference written (one per tag). */
  references: string[];
  /** Blob bytes actually sent to the registry (0 when it had everything). */
  uploadedBytes: number;
  /** What was signed, with `sign`. */
  signed?: SignResult | undefined;
}

/**
 * Modules up to this size are read into memory once, hashed, and uploaded only if the registry lacks
 * them. Larger ones are never held in memory: they stream from disk, hashed as they are sent.
 */
export const IN_MEMORY_LIMIT = 16 * 1024 * 1024;

async function openModule(
  path: string,
  name: string,
): Promise<{ handle: FileHandle; stats: Stats; kind: WasmKind }> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw fileError(err as NodeJS.ErrnoException, name);
  }
  try {
    const stats = await handle.stat();
    if (stats.isDirectory()) throw new WasmOciError('FILE', `${name}: is a directory`);
    const preamble = Buffer.alloc(DIAGNOSIS_LENGTH);
    const { bytesRead } = await handle.read(preamble, 0, DIAGNOSIS_LENGTH, 0);
    const kind = requireWasm(preamble.subarray(0, bytesRead), name);
    return { handle, stats, kind };
  } catch (err) {
    await handle.close();
    if (err instanceof WasmOciError) throw err;
    throw fileError(err as NodeJS.ErrnoException, name);
  }
}

/**
 * Pushes a wasm module in the classic wasm-to-oci format. Blobs the registry already has are not sent;
 * the manifest goes last, under its tag, so a failed push never moves the tag.
 */
export async function push(options: PushOptions): Promise<PushResult> {
  const spec = parseTarget(options.reference, { layout: options.ociLayout });
  if (spec.digest !== undefined) {
    throw new WasmOciError('USAGE', `push needs a tag, not a digest: ${options.reference}`, {
      hint: 'the digest of what you push is computed from the content; name a tag instead',
    });
  }
  const tag = targetReference(spec);
  // Every tag is checked before anything is read or sent: a bad one must not leave the others moved.
  for (const extra of options.tags ?? []) {
    if (!isValidTag(extra)) {
      throw new WasmOciError('USAGE', `"${extra}" is not a valid tag`, {
        hint: 'a tag has up to 128 letters, digits, "_", "." and "-", and does not start with "." or "-"',
      });
    }
  }
  const { signal, onProgress } = options;
  const name = options.name ?? options.file;
  const { handle, stats, kind } = await openModule(options.file, name);
  let signing: Awaited<ReturnType<typeof prepareSignedPush>> | undefined;
  try {
    if (options.sign) signing = await prepareSignedPush(spec, options, options.sign);
  } catch (err) {
    await handle.close().catch(() => {});
    throw err;
  }
  const { target: repo, close } = openTarget(spec, 'push', options);
  const source = new FileBackedStore();
  let uploadedBytes = 0;
  const progress = (event: ProgressEvent) => {
    if (event.type === 'done' && !isManifestMediaType(event.desc.mediaType)) {
      uploadedBytes += event.desc.size;
    }
    onProgress?.(event);
  };
  const format = options.format ?? 'classic';
  if (format !== 'classic' && format !== 'cncf') {
    throw new WasmOciError('USAGE', `unknown format "${String(format)}"`, {
      hint: 'use --format classic or --format cncf',
    });
  }
  const title = options.title ?? classicTitle(options.file);
  // Filled from the binary before `pack` runs (cncf only).
  let info: WasmInfo | undefined;
  let pack: (layer: Descriptor) => PackedManifest;
  if (format === 'cncf') {
    const created = creationTime(options.created, options.sourceDateEpoch, new Date());
    const cncf = {
      created,
      author: options.author,
      targetWorld: options.targetWorld,
      annotations: options.annotations,
    };
    pack = (layer) =>
      packCncf(layer, info as WasmInfo, { ...cncf, title, artifactType: options.artifactType });
  } else {
    pack = (layer) =>
      packClassic(layer, title, { annotations: options.annotations, artifactType: options.artifactType });
  }
  try {
    let layer: Descriptor;
    const mediaType = format === 'cncf' ? WasmMediaType.cncfLayer : WasmMediaType.classicLayer;
    if (stats.size <= IN_MEMORY_LIMIT) {
      const bytes = await handle.readFile();
      requireWasm(bytes, name);
      if (format === 'cncf') info = inspectWasm(bytes, name);
      layer = source.add(mediaType, bytes);
    } else {
      if (format === 'cncf') {
        info = await inspectWasmFile(
          async (position, length) => {
            const buffer = Buffer.alloc(length);
            const { bytesRead } = await handle.read(buffer, 0, length, position);
            return buffer.subarray(0, bytesRead);
          },
          stats.size,
          name,
        );
      }
      const cached = await options.digestCache?.get(stats);
      if (cached !== undefined) {
        layer = { mediaType, digest: cached, size: stats.size };
        source.linkFile(layer, options.file);
      } else {
        throwIfAborted(signal);
        // Single pass: the file is hashed while it is uploaded; the manifest is built afterwards. The
        // classic config does not depend on the module, so it goes up meanwhile.
        const file = { fd: handle.fd, start: 0, length: stats.size };
        const upload = ingest(repo, mediaType, file, { size: stats.size, signal, onProgress: progress });
        if (format === 'classic') {
          const config = classicConfig();
          await source.push(config.desc, config.bytes);
          [layer] = await Promise.all([
            upload,
            copyGraph(source, repo, config.desc, { signal, onProgress: progress }),
          ]);
        } else layer = await upload;
        await options.digestCache?.set(stats, layer.digest);
      }
    }

    const packed = pack(layer);
    await source.push(packed.config.desc, packed.config.bytes);
    await source.push(packed.desc, packed.bytes);
    await source.tag(packed.desc, tag);
    const extraTags = options.tags ?? [];
    try {
      await copy(source, tag, repo, tag, {
        signal,
        onProgress: progress,
        concurrency: options.concurrency,
        tags: extraTags,
      });
    } catch (err) {
      // A cached digest that no longer matches the file: forget it so the next push re-reads the file.
      if (hasCode(err, 'DIGEST_MISMATCH') || hasCode(err, 'SIZE_MISMATCH'))
        await options.digestCache?.delete(stats);
      throw err;
    }
    const references = [tag, ...extraTags].map((t) => formatTarget(spec, t));
    const signed = signing
      ? await signing.publish(options.file, layer, [tag, ...extraTags], references)
      : undefined;
    return {
      reference: formatTarget(spec),
      defaultedTag: spec.defaultedTag,
      digest: packed.desc.digest,
      mediaType: packed.desc.mediaType,
      size: layer.size,
      manifest: packed.desc,
      layer: packed.manifest.layers[0] as Descriptor,
      kind,
      uploadedBytes,
      references,
      ...(signed ? { signed } : {}),
    };
  } finally {
    await handle.close().catch(() => {});
    signing?.close();
    close();
  }
}

/**
 * Gets signing ready before anything is pushed (trust data verified, keys decrypted or created), so
 * that a wrong passphrase or a foreign collection fails without moving the tag. `publish` then signs
 * the module's length and hashes, re-read from the file and checked against the pushed layer.
 */
async function prepareSignedPush(spec: TargetSpec, options: PushOptions, trust: TrustOptions) {
  if (spec.kind !== 'registry') {
    throw new WasmOciError('USAGE', '--sign needs a registry reference, not an OCI layout', {
      hint: 'signatures live on a trust server, keyed by registry and repository',
    });
  }
  const signing = await import('./signing.js');
  const gun = signing.trustCollection(spec.ref);
  const { ctx, close } = signing.openTrust(gun, trust, options);
  let prepared: Awaited<ReturnType<typeof signing.prepareSign>>;
  try {
    prepared = await signing.prepareSign(ctx);
  } catch (err) {
    close();
    throw err;
  }
  return {
    close,
    async publish(
      file: string,
      layer: Descriptor,
      tags: string[],
      references: string[],
    ): Promise<SignResult> {
      try {
        const meta = await signing.fileTargetMeta(file);
        if (signing.signedDigest(meta) !== layer.digest || meta.length !== layer.size) {
          throw new WasmOciError('FILE', `${file} changed while it was pushed: not signing it`);
        }
        await prepared.publish(Object.fromEntries(tags.map((t) => [t, meta])));
      } catch (err) {
        const e =
          err instanceof WasmOciError ? err : new WasmOciError('REGISTRY', String(err), { cause: err });
        throw new WasmOciError(e.code, `pushed ${references.join(', ')} but signing failed: ${e.message}`, {
          cause: err,
          hint: `the tag now points to an unsigned module (pull --sign refuses it); push --sign again${e.hint ? `; ${e.hint}` : ''}`,
        });
      }
      return { collection: gun, server: ctx.server.url.href, targets: tags, created: prepared.creating };
    },
  };
}
