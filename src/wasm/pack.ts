import type { Stats } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { DigestCache } from '../cache/digest-cache.js';
import { FileBackedStore } from '../content/file.js';
import { fileError } from '../content/output.js';
import type { Ingester, Storage } from '../content/types.js';
import { copyGraph, ingest, type ProgressEvent } from '../copy.js';
import { throwIfAborted, WasmOciError } from '../errors.js';
import type { Annotations, Descriptor } from '../oci/descriptor.js';
import { classicConfig, classicTitle, type PackedManifest, packClassic } from './classic.js';
import { creationTime, packCncf } from './cncf.js';
import { DIAGNOSIS_LENGTH, requireWasm, type WasmKind } from './detect.js';
import { inspectWasm, inspectWasmFile, type WasmInfo } from './inspect.js';
import { WasmMediaType } from './mediatypes.js';

/**
 * Packing: a module file and a format become an artifact in a store (config, layer, manifest), ready
 * for `copy()` to send. Small modules are read into memory once and hashed; a module over
 * IN_MEMORY_LIMIT is never held in memory: with a digest the digest cache remembers it is linked by
 * path, else it streams to the destination while it is hashed (a single pass over the file), and only
 * the manifest is built afterwards.
 */

/** The artifact layouts: the original tool's (default) and the CNCF Wasm OCI Artifact layout. */
export type PackFormat =
  | { kind: 'classic' }
  | {
      kind: 'cncf';
      /** The creation time (RFC 3339); else `sourceDateEpoch`, else now. */
      created?: string | undefined;
      /** `SOURCE_DATE_EPOCH` (seconds), for reproducible digests. */
      sourceDateEpoch?: string | undefined;
      /** The config's author. */
      author?: string | undefined;
      /** The WIT world a component targets (`component.target`). */
      targetWorld?: string | undefined;
    };

/** Modules up to this size are read into memory once; larger ones stream from disk. */
export const IN_MEMORY_LIMIT = 16 * 1024 * 1024;

export interface PackOptions {
  /** The module's path, as the user typed it: it becomes the layer's title annotation. */
  file: string;
  /** How messages name the module (default: `file`); e.g. `standard input` for a spooled copy. */
  name?: string | undefined;
  format?: PackFormat | undefined;
  /** Override the title annotation ('' for none). */
  title?: string | undefined;
  annotations?: Annotations | undefined;
  artifactType?: string | undefined;
  /** Remembers digests of large files, so an unchanged one is not read again. */
  digestCache?: DigestCache | undefined;
  /** Where the artifact goes: a large module streams there while it is hashed. */
  destination: Ingester & Storage;
  signal?: AbortSignal | undefined;
  onProgress?: ((event: ProgressEvent) => void) | undefined;
}

export interface Packed {
  /** Holds the manifest, the config and the layer (its bytes, or a link to the file). */
  store: FileBackedStore;
  /** The manifest. */
  root: Descriptor;
  config: Descriptor;
  layer: Descriptor;
  kind: WasmKind;
  /** Drops the digest cache's entry for the file (a copy found it no longer matches). */
  forgetDigest(): Promise<void>;
}

/** Checks a format given from outside (the library is also called from plain JavaScript). */
export function checkFormat(format: PackFormat | undefined): PackFormat {
  const kind: unknown = format?.kind ?? 'classic';
  if (kind !== 'classic' && kind !== 'cncf') {
    throw new WasmOciError('USAGE', `unknown format "${String(kind)}"`, {
      hint: 'the formats are classic and cncf',
    });
  }
  return format ?? { kind: 'classic' };
}

async function openModule(
  path: string,
  name = path,
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

/** Checks that `path` is a readable WebAssembly binary (before work that should not start otherwise). */
export async function checkModuleFile(path: string, name = path): Promise<WasmKind> {
  const { handle, kind } = await openModule(path, name);
  await handle.close().catch(() => {});
  return kind;
}

/** Packs the module `options.file` in `options.format`. */
export async function packModule(options: PackOptions): Promise<Packed> {
  const format = checkFormat(options.format);
  const { handle, stats, kind } = await openModule(options.file, options.name);
  const store = new FileBackedStore();
  try {
    const { layer, info } = await addLayer(options, format, handle, stats, store);
    const packed = packManifest(options, format, layer, info);
    await store.push(packed.config.desc, packed.config.bytes);
    await store.push(packed.desc, packed.bytes);
    return {
      store,
      root: packed.desc,
      config: packed.config.desc,
      layer: packed.manifest.layers[0] as Descriptor,
      kind,
      forgetDigest: async () => {
        await options.digestCache?.delete(stats);
      },
    };
  } finally {
    await handle.close().catch(() => {});
  }
}

/** The layer in `store` (or already at the destination, when it streamed there); cncf: its inspection. */
async function addLayer(
  options: PackOptions,
  format: PackFormat,
  handle: FileHandle,
  stats: Stats,
  store: FileBackedStore,
): Promise<{ layer: Descriptor; info: WasmInfo | undefined }> {
  const { signal } = options;
  const file = options.name ?? options.file;
  const mediaType = format.kind === 'cncf' ? WasmMediaType.cncfLayer : WasmMediaType.classicLayer;
  if (stats.size <= IN_MEMORY_LIMIT) {
    const bytes = await handle.readFile();
    requireWasm(bytes, file);
    return {
      layer: store.add(mediaType, bytes),
      info: format.kind === 'cncf' ? inspectWasm(bytes, file) : undefined,
    };
  }
  const info =
    format.kind === 'cncf'
      ? await inspectWasmFile(
          async (position, length) => {
            const buffer = Buffer.alloc(length);
            const { bytesRead } = await handle.read(buffer, 0, length, position);
            return buffer.subarray(0, bytesRead);
          },
          stats.size,
          file,
        )
      : undefined;
  const cached = await options.digestCache?.get(stats);
  if (cached !== undefined) {
    const layer = { mediaType, digest: cached, size: stats.size };
    store.linkFile(layer, file);
    return { layer, info };
  }
  const dst = options.destination;
  throwIfAborted(signal);
  // Single pass: the file is hashed while it is uploaded. The classic config does not depend on the
  // module, so it goes up meanwhile.
  const range = { fd: handle.fd, start: 0, length: stats.size };
  const upload = ingest(dst, mediaType, range, { size: stats.size, signal, onProgress: options.onProgress });
  let layer: Descriptor;
  if (format.kind === 'classic') {
    const config = classicConfig();
    await store.push(config.desc, config.bytes);
    [layer] = await Promise.all([
      upload,
      copyGraph(store, dst, config.desc, { signal, onProgress: options.onProgress }),
    ]);
  } else layer = await upload;
  await options.digestCache?.set(stats, layer.digest);
  return { layer, info };
}

function packManifest(
  options: PackOptions,
  format: PackFormat,
  layer: Descriptor,
  info: WasmInfo | undefined,
): PackedManifest {
  const title = options.title ?? classicTitle(options.file);
  const { annotations, artifactType } = options;
  if (format.kind === 'classic') return packClassic(layer, title, { annotations, artifactType });
  const created = creationTime(format.created, format.sourceDateEpoch, new Date());
  return packCncf(layer, info as WasmInfo, {
    created,
    author: format.author,
    targetWorld: format.targetWorld,
    annotations,
    title,
    artifactType,
  });
}
