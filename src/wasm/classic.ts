import { basename, isAbsolute } from 'node:path';
import { ANNOTATION_TITLE, type Annotations, type Descriptor } from '../oci/descriptor.js';
import { digestOf } from '../oci/digest.js';
import { type ImageManifest, serializeManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';
import { CLASSIC_CONFIG_BYTES, CLASSIC_CONFIG_DIGEST, WasmMediaType } from './mediatypes.js';

/** The title annotation the original tool writes: the path as typed, or the base name of an absolute path. */
export function classicTitle(pathAsTyped: string): string {
  return isAbsolute(pathAsTyped) ? basename(pathAsTyped) : pathAsTyped;
}

/** The classic config blob: the two bytes `{}`. */
export function classicConfig(): { desc: Descriptor; bytes: Uint8Array } {
  return {
    desc: {
      mediaType: WasmMediaType.classicConfig,
      digest: CLASSIC_CONFIG_DIGEST,
      size: CLASSIC_CONFIG_BYTES.length,
    },
    bytes: CLASSIC_CONFIG_BYTES,
  };
}

export interface PackedManifest {
  manifest: ImageManifest;
  /** The exact manifest bytes that get pushed and hashed. */
  bytes: Uint8Array;
  /** Descriptor of the manifest itself. */
  desc: Descriptor;
  /** The config blob and its descriptor. */
  config: { desc: Descriptor; bytes: Uint8Array };
}

/**
 * Builds the original wasm-to-oci manifest around a layer: config `{}`, one layer with the title
 * annotation, no top-level mediaType, serialised byte for byte as Go's encoding/json writes it.
 */
export function packClassic(
  layer: { digest: string; size: number },
  title: string,
  extra: { annotations?: Annotations | undefined; artifactType?: string | undefined } = {},
): PackedManifest {
  const config = classicConfig();
  const manifest: ImageManifest = {
    schemaVersion: 2,
    config: config.desc,
    layers: [
      {
        mediaType: WasmMediaType.classicLayer,
        digest: layer.digest,
        size: layer.size,
        ...(title ? { annotations: { [ANNOTATION_TITLE]: title } } : {}),
      },
    ],
    ...(extra.artifactType ? { artifactType: extra.artifactType } : {}),
    ...(extra.annotations && Object.keys(extra.annotations).length ? { annotations: extra.annotations } : {}),
  };
  const bytes = serializeManifest(manifest);
  return {
    manifest,
    bytes,
    desc: { mediaType: MediaType.ociManifest, digest: digestOf(bytes), size: bytes.length },
    config,
  };
}
