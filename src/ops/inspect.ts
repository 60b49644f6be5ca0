import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobCache } from '../cache/cache.js';
import { privateTempDir } from '../content/output.js';
import type { ReadOnlyTarget } from '../content/types.js';
import { readVerified } from '../content/verify.js';
import { fetchManifest } from '../copy.js';
import { hasCode, WasmOciError } from '../errors.js';
import type { Annotations, Descriptor } from '../oci/descriptor.js';
import { type ImageManifest, MAX_MANIFEST_BYTES, parseManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';
import { importsByModule, inspectWasmFile, type WasmInfo } from '../wasm/inspect.js';
import { WasmMediaType } from '../wasm/mediatypes.js';
import { selectIndexEntry, selectWasmLayer } from '../wasm/select.js';
import { peekBlob, writeLayer } from './pull.js';
import { type ConnectOptions, formatTarget, openTarget, parseTarget, targetReference } from './target.js';

/**
 * `inspect`: what an artifact or a local file is. The JSON shape (`ArtifactReport`, `FileReport`) is
 * part of the public API: fields are only ever added.
 */

export type ArtifactFormat =
  | 'classic'
  | 'cncf'
  | 'spin'
  | 'wasmcloud'
  | 'istio'
  | 'oras'
  | 'docker'
  | 'unknown'
  /** An image index none of whose entries was chosen (no wasm platform, no `platform` asked for). */
  | 'index';

export interface WasmReport extends WasmInfo {
  /** Core modules: imports grouped by module name. */
  importsByModule?: Record<string, string[]>;
}

export interface ArtifactReport {
  reference: string;
  format: ArtifactFormat;
  /** The manifest described; for an index with no entry chosen, the index itself. */
  manifest: Descriptor;
  /** Set when the reference named an index: the index, and every entry (with platform and artifactType). */
  index?: { descriptor: Descriptor; manifests: Descriptor[]; annotations?: Annotations };
  artifactType?: string;
  /** The config descriptor (absent for an index with no entry chosen). */
  config?: Descriptor;
  /** The config blob when it is JSON (capped at 4 MiB). */
  configJson?: unknown;
  annotations: Annotations;
  layers: Descriptor[];
  /** The layer that holds the module, when one does. */
  layer?: Descriptor;
  /** The module, when there is one. */
  wasm?: WasmReport;
  /** For a tar layer: the file inside it that holds the module. */
  unpacked?: { entry: string; size: number; digest: string };
  /** When there is no module: why (one line). */
  noWasm?: string;
}

export interface FileReport {
  file: string;
  size: number;
  digest: string;
  wasm: WasmReport;
}

/** Which wasm-in-OCI layout a manifest follows (FORMATS.md of the design brief, section 3). */
export function detectFormat(manifest: ImageManifest, mediaType: string): ArtifactFormat {
  const config = manifest.config.mediaType;
  const layerTypes = manifest.layers.map((l) => l.mediaType);
  if (config === WasmMediaType.classicConfig) return 'classic';
  if (config === WasmMediaType.cncfConfig) return 'cncf';
  if (config === WasmMediaType.moduleConfig) return 'istio';
  if (layerTypes.includes(WasmMediaType.moduleLayer)) return 'wasmcloud';
  if (mediaType === MediaType.dockerManifest || config === MediaType.dockerConfig) return 'docker';
  if (config === MediaType.ociConfig && layerTypes.includes(WasmMediaType.classicLayer)) return 'spin';
  if (manifest.artifactType || config === MediaType.ociEmpty || layerTypes.includes(WasmMediaType.cncfLayer))
    return 'oras';
  return 'unknown';
}

function report(info: WasmInfo): WasmReport {
  return info.kind === 'module' ? { ...info, importsByModule: importsByModule(info) } : info;
}

/** Inspects a local file by positioned reads (only the preamble and import/export sections are read for structure). */
export async function inspectFile(path: string, name = path): Promise<FileReport> {
  const { fileError } = await import('../content/output.js');
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw fileError(err as NodeJS.ErrnoException, name);
  }
  try {
    const { size } = await handle.stat();
    const info = await inspectWasmFile(
      async (position, length) => {
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await handle.read(buffer, 0, length, position);
        return buffer.subarray(0, bytesRead);
      },
      size,
      name,
    );
    const { createHash } = await import('node:crypto');
    const hash = createHash('sha256');
    for await (const chunk of handle.createReadStream({ start: 0, autoClose: false }))
      hash.update(chunk as Buffer);
    return { file: path, size, digest: `sha256:${hash.digest('hex')}`, wasm: report(info) };
  } finally {
    await handle.close();
  }
}

/** Config JSON nested deeper is reported by descriptor only: printing it (JSON.stringify recurses) would overflow the stack. */
const MAX_CONFIG_DEPTH = 512;

function nestsWithin(value: unknown, max: number): boolean {
  const pending: Array<[unknown, number]> = [[value, 1]];
  while (pending.length) {
    const [node, depth] = pending.pop() as [unknown, number];
    if (typeof node !== 'object' || node === null) continue;
    if (depth > max) return false;
    for (const child of Object.values(node)) pending.push([child, depth + 1]);
  }
  return true;
}

export interface InspectOptions extends ConnectOptions {
  reference: string;
  ociLayout?: boolean | undefined;
  platform?: string | undefined;
  layer?: string | undefined;
  cache?: BlobCache | undefined;
  signal?: AbortSignal | undefined;
}

/** The config blob as JSON, when it is small enough, JSON, and not absurdly nested. */
async function readConfigJson(
  target: ReadOnlyTarget,
  config: Descriptor,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  if (config.size > MAX_MANIFEST_BYTES) return undefined;
  const bytes = await readVerified(await target.fetch(config, { signal }), config, MAX_MANIFEST_BYTES);
  try {
    const json: unknown = JSON.parse(bytes.toString('utf8'));
    return nestsWithin(json, MAX_CONFIG_DEPTH) ? json : undefined;
  } catch {
    return undefined; // Not JSON: reported by descriptor only.
  }
}

/**
 * Inspects an artifact: any manifest (wasm artifacts, container images, unknown artifacts) or index.
 * An index's entry is described too when one is chosen (`platform`, or the one wasm platform); the
 * module's imports and exports are read when a layer holds one (pulled verified, through the cache).
 */
export async function inspectArtifact(options: InspectOptions): Promise<ArtifactReport> {
  const spec = parseTarget(options.reference, { layout: options.ociLayout });
  const { signal } = options;
  const { target, close } = openTarget(spec, 'pull', options);
  const dir = await privateTempDir('wasm-to-oci-inspect-');
  const temp = join(dir, 'module.wasm');
  try {
    const root = await target.resolve(targetReference(spec), { signal });
    let manifestDesc = root;
    let parsed = parseManifest(await fetchManifest(target, root, signal), root.mediaType);
    let index: ArtifactReport['index'];
    if (parsed.kind === 'index') {
      const { manifests, annotations } = parsed.index;
      index = { descriptor: root, manifests, ...(annotations ? { annotations } : {}) };
      let entry: Descriptor | undefined;
      try {
        entry = selectIndexEntry(parsed.index, options.platform);
      } catch (err) {
        if (options.platform !== undefined || !hasCode(err, 'NO_WASM_LAYER')) throw err;
      }
      if (entry === undefined) {
        return {
          reference: formatTarget(spec),
          format: 'index',
          manifest: root,
          index,
          ...(parsed.index.artifactType ? { artifactType: parsed.index.artifactType } : {}),
          annotations: annotations ?? {},
          layers: [],
          noWasm: `the index has ${manifests.length} entries and none for a wasm platform`,
        };
      }
      manifestDesc = entry;
      parsed = parseManifest(await fetchManifest(target, entry, signal), entry.mediaType);
      if (parsed.kind === 'index')
        throw new WasmOciError('UNSUPPORTED', 'nested image indexes are not supported');
    }
    const { manifest } = parsed;
    const configJson = await readConfigJson(target, manifest.config, signal);
    const report: ArtifactReport = {
      reference: formatTarget(spec),
      format: detectFormat(manifest, parsed.mediaType),
      manifest: manifestDesc,
      ...(index ? { index } : {}),
      ...(manifest.artifactType ? { artifactType: manifest.artifactType } : {}),
      config: manifest.config,
      ...(configJson !== undefined ? { configJson } : {}),
      annotations: manifest.annotations ?? {},
      layers: manifest.layers,
    };
    let layer: Descriptor;
    try {
      layer = await selectWasmLayer(manifest, {
        layer: options.layer,
        peek: (desc) => peekBlob(target, desc, signal),
      });
    } catch (err) {
      if (options.layer !== undefined || !hasCode(err, 'NO_WASM_LAYER')) throw err;
      return { ...report, noWasm: err.message.split(';')[0] as string };
    }
    let written: Awaited<ReturnType<typeof writeLayer>>;
    try {
      // On this target, with the entry and the layer chosen here: one manifest GET, one client.
      written = await writeLayer(target, spec, manifestDesc, layer, temp, { ...options, outputMode: 0o600 });
    } catch (err) {
      if (!hasCode(err, 'NOT_WASM')) throw err;
      return { ...report, layer, noWasm: err.message };
    }
    const { unpacked } = written;
    const file = await inspectFile(
      temp,
      unpacked ? `${unpacked.entry} in layer ${layer.digest}` : `layer ${layer.digest}`,
    );
    return { ...report, layer, wasm: file.wasm, ...(unpacked ? { unpacked } : {}) };
  } finally {
    close();
    await rm(dir, { recursive: true, force: true });
  }
}
