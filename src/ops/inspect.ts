import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobCache } from '../cache/cache.js';
import { privateTempDir } from '../content/output.js';
import { readVerified } from '../content/verify.js';
import { fetchManifest } from '../copy.js';
import type { Annotations, Descriptor } from '../oci/descriptor.js';
import { type ImageManifest, MAX_MANIFEST_BYTES, parseManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';
import { importsByModule, inspectWasmFile, type WasmInfo } from '../wasm/inspect.js';
import { WasmMediaType } from '../wasm/mediatypes.js';
import { pull } from './pull.js';
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
  | 'unknown';

export interface WasmReport extends WasmInfo {
  /** Core modules: imports grouped by module name. */
  importsByModule?: Record<string, string[]>;
}

export interface ArtifactReport {
  reference: string;
  format: ArtifactFormat;
  manifest: Descriptor;
  /** Set when the reference named an index: the index, and the entry that was chosen. */
  index?: { descriptor: Descriptor; manifests: Descriptor[] };
  artifactType?: string;
  config: Descriptor;
  /** The config blob when it is JSON (capped at 4 MiB). */
  configJson?: unknown;
  annotations: Annotations;
  layers: Descriptor[];
  layer: Descriptor;
  wasm: WasmReport;
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
export async function inspectFile(path: string): Promise<FileReport> {
  const { fileError } = await import('../content/output.js');
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw fileError(err as NodeJS.ErrnoException, path);
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
      path,
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

/** Inspects an artifact: format, descriptors, annotations, config, and the module's imports and exports. */
export async function inspectArtifact(options: InspectOptions): Promise<ArtifactReport> {
  const spec = parseTarget(options.reference, { layout: options.ociLayout });
  const { target, close } = openTarget(spec, 'pull', options);
  const dir = await privateTempDir('wasm-to-oci-inspect-');
  const temp = join(dir, 'module.wasm');
  try {
    const root = await target.resolve(targetReference(spec), { signal: options.signal });
    const rootParsed = parseManifest(await fetchManifest(target, root, options.signal), root.mediaType);
    const pulled = await pull({ ...options, output: temp, outputMode: 0o600 });
    const parsed = parseManifest(
      await fetchManifest(target, pulled.manifest, options.signal),
      pulled.manifest.mediaType,
    );
    if (parsed.kind !== 'manifest') throw new Error('unreachable: pull returned an index');
    const { manifest } = parsed;
    let configJson: unknown;
    if (manifest.config.size <= MAX_MANIFEST_BYTES) {
      const bytes = await readVerified(
        await target.fetch(manifest.config, { signal: options.signal }),
        manifest.config,
        MAX_MANIFEST_BYTES,
      );
      try {
        const json: unknown = JSON.parse(bytes.toString('utf8'));
        if (nestsWithin(json, MAX_CONFIG_DEPTH)) configJson = json;
      } catch {
        // Not JSON: reported by descriptor only.
      }
    }
    const file = await inspectFile(temp);
    return {
      reference: formatTarget(spec),
      format: detectFormat(manifest, parsed.mediaType),
      manifest: pulled.manifest,
      ...(rootParsed.kind === 'index'
        ? { index: { descriptor: root, manifests: rootParsed.index.manifests } }
        : {}),
      ...(manifest.artifactType ? { artifactType: manifest.artifactType } : {}),
      config: manifest.config,
      ...(configJson !== undefined ? { configJson } : {}),
      annotations: manifest.annotations ?? {},
      layers: manifest.layers,
      layer: pulled.layer,
      wasm: file.wasm,
    };
  } finally {
    close();
    await rm(dir, { recursive: true, force: true });
  }
}
