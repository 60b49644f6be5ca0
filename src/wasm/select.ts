import { WasmOciError } from '../errors.js';
import { ANNOTATION_TITLE, type Descriptor } from '../oci/descriptor.js';
import type { ImageIndex, ImageManifest } from '../oci/manifest.js';
import { detectWasm } from './detect.js';
import { WASM_LAYER_MEDIA_TYPES } from './mediatypes.js';

export interface SelectOptions {
  /** Pick the layer with this digest or title instead of guessing. */
  layer?: string | undefined;
  /**
   * Reads the first bytes of a layer: with it, a manifest without any wasm media type (an oras generic
   * push) is searched for layers whose bytes start with `\0asm`.
   */
  peek?: ((desc: Descriptor) => Promise<Uint8Array>) | undefined;
}

/**
 * Layers that are tar archives (container image layers). Istio's "compat" images carry their module as
 * a file in the one layer of a container image: pull unpacks it rather than writing the archive.
 */
const ARCHIVE_LAYER_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
]);

export function isArchiveLayer(desc: Descriptor): boolean {
  return ARCHIVE_LAYER_TYPES.has(desc.mediaType);
}

/** Generic pushes are sniffed only when they have few layers (each sniff is a request). */
const MAX_SNIFFED_LAYERS = 16;

/** The layers on one line (error messages are one line): `<media type> <size> bytes <title|digest>; ...`. */
function layerList(layers: readonly Descriptor[]): string {
  return layers
    .map((l) => `${l.mediaType} ${l.size} bytes ${l.annotations?.[ANNOTATION_TITLE] ?? l.digest}`)
    .join('; ');
}

/**
 * Chooses the layer that holds the wasm module. Exactly one layer with a wasm media type is taken; zero
 * or several is an error listing the layers, never a guess. `layer` (digest or title) picks explicitly.
 */
export async function selectWasmLayer(
  manifest: ImageManifest,
  options: SelectOptions = {},
): Promise<Descriptor> {
  const { layers } = manifest;
  if (options.layer !== undefined) {
    const wanted = options.layer;
    const found = layers.find((l) => l.digest === wanted || l.annotations?.[ANNOTATION_TITLE] === wanted);
    if (found) return found;
    throw new WasmOciError(
      'NO_WASM_LAYER',
      `no layer has the digest or title "${wanted}"; the layers are: ${layerList(layers)}`,
      {
        details: { layers },
      },
    );
  }
  let candidates = layers.filter((l) => WASM_LAYER_MEDIA_TYPES.includes(l.mediaType));
  if (candidates.length === 0 && options.peek && layers.length <= MAX_SNIFFED_LAYERS) {
    const peek = options.peek;
    const sniffed = await Promise.all(
      layers.map(async (l) => (l.size >= 8 && detectWasm(await peek(l)) !== undefined ? l : undefined)),
    );
    candidates = sniffed.filter((l): l is Descriptor => l !== undefined);
  }
  if (candidates.length === 1) return candidates[0] as Descriptor;
  if (candidates.length === 0 && layers.length === 1 && manifest.artifactType?.includes('wasm')) {
    return layers[0] as Descriptor;
  }
  // An Istio compat image: one tar layer, the module a file in it.
  if (candidates.length === 0 && layers.length === 1 && isArchiveLayer(layers[0] as Descriptor)) {
    return layers[0] as Descriptor;
  }
  const why =
    candidates.length === 0
      ? 'no layer holds a wasm module'
      : `${candidates.length} layers hold wasm modules`;
  throw new WasmOciError('NO_WASM_LAYER', `${why}; the layers are: ${layerList(layers)}`, {
    hint: 'pick one with the `layer` option (a digest or a title)',
    details: { layers },
  });
}

const WASM_PLATFORMS = new Set(['wasm', 'wasi', 'wasip1', 'wasip2']);

/**
 * From an index, the manifest for `platform` (`os/architecture`, either part may be `*`), else the
 * one for a wasm platform (`wasm`/`wasi`/`wasip1`/`wasip2`), or the only manifest.
 */
export function selectIndexEntry(index: ImageIndex, platform?: string): Descriptor {
  const { manifests } = index;
  if (platform !== undefined) {
    const [os, arch] = platform.split('/');
    const matching = manifests.filter(
      (m) =>
        m.platform &&
        (os === '*' || m.platform.os === os) &&
        (arch === undefined || arch === '*' || m.platform.architecture === arch),
    );
    if (matching.length === 1) return matching[0] as Descriptor;
    throw new WasmOciError(
      'NO_WASM_LAYER',
      `${matching.length === 0 ? 'no' : 'several'} index entries for platform ${platform}`,
      {
        hint: `the platforms are: ${manifests.map((m) => (m.platform ? `${m.platform.os}/${m.platform.architecture}` : '(none)')).join(', ')}`,
      },
    );
  }
  if (manifests.length === 1) return manifests[0] as Descriptor;
  const wasm = manifests.filter(
    (m) => m.platform && (WASM_PLATFORMS.has(m.platform.architecture) || WASM_PLATFORMS.has(m.platform.os)),
  );
  if (wasm.length === 1) return wasm[0] as Descriptor;
  const list = manifests
    .map((m) => `${m.digest} ${m.platform ? `${m.platform.os}/${m.platform.architecture}` : '(no platform)'}`)
    .join('; ');
  throw new WasmOciError(
    'NO_WASM_LAYER',
    `the index has ${manifests.length} manifests and ${wasm.length === 0 ? 'none' : 'several'} for a wasm platform: ${list}`,
    { hint: 'pull one of them by digest: <registry>/<repository>@<digest>', details: { manifests } },
  );
}
