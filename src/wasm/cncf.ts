import { WasmOciError } from '../errors.js';
import {
  ANNOTATION_CREATED,
  ANNOTATION_TITLE,
  type Annotations,
  type Descriptor,
} from '../oci/descriptor.js';
import { digestOf } from '../oci/digest.js';
import { type ImageManifest, serializeManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';
import type { PackedManifest } from './classic.js';
import type { WasmInfo } from './inspect.js';
import { WasmMediaType } from './mediatypes.js';

/**
 * The CNCF TAG Runtime "Wasm OCI Artifact layout": config `application/vnd.wasm.config.v0+json` with
 * created, author, architecture `wasm`, os `wasip1` (core module) or `wasip2` (component), the layer
 * digests and, for a component, its top-level imports and exports; one `application/wasm` layer.
 */

export interface CncfOptions {
  /** RFC 3339 creation time (fixed for reproducible digests). */
  created: string;
  author?: string | undefined;
  /** `component.target`: the WIT world the component targets. */
  targetWorld?: string | undefined;
  title?: string | undefined;
  /** Manifest annotations (`org.opencontainers.image.created` is added unless given). */
  annotations?: Annotations | undefined;
  artifactType?: string | undefined;
}

export interface CncfConfig {
  created: string;
  author?: string;
  architecture: 'wasm';
  os: 'wasip1' | 'wasip2';
  layerDigests: string[];
  component?: { imports: string[]; exports: string[]; target?: string };
}

/** `--created`, else `SOURCE_DATE_EPOCH` (seconds), else now; always RFC 3339 in UTC, whole seconds. */
export function creationTime(
  created: string | undefined,
  sourceDateEpoch: string | undefined,
  now: Date,
): string {
  let date: Date;
  if (created !== undefined) {
    date = new Date(created);
    if (Number.isNaN(date.getTime()) || !/^\d{4}-\d{2}-\d{2}T/.test(created)) {
      throw new WasmOciError(
        'USAGE',
        `the \`created\` option wants an RFC 3339 time such as 2024-05-01T12:00:00Z, not "${created}"`,
      );
    }
  } else if (sourceDateEpoch !== undefined && sourceDateEpoch !== '') {
    if (!/^\d+$/.test(sourceDateEpoch))
      throw new WasmOciError('USAGE', `SOURCE_DATE_EPOCH must be whole seconds, not "${sourceDateEpoch}"`);
    date = new Date(Number(sourceDateEpoch) * 1000);
  } else date = now;
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The config JSON, keys in the spec's order, compact. */
export function cncfConfig(layerDigest: string, info: WasmInfo, options: CncfOptions): CncfConfig {
  const config: CncfConfig = {
    created: options.created,
    ...(options.author ? { author: options.author } : {}),
    architecture: 'wasm',
    os: info.kind === 'component' ? 'wasip2' : 'wasip1',
    layerDigests: [layerDigest],
  };
  if (info.kind === 'component') {
    config.component = {
      imports: info.imports.map((i) => i.name),
      exports: info.exports.map((e) => e.name),
      ...(options.targetWorld ? { target: options.targetWorld } : {}),
    };
  }
  return config;
}

export function packCncf(
  layer: { digest: string; size: number },
  info: WasmInfo,
  options: CncfOptions,
): PackedManifest {
  const configBytes = Buffer.from(JSON.stringify(cncfConfig(layer.digest, info, options)));
  const configDesc: Descriptor = {
    mediaType: WasmMediaType.cncfConfig,
    digest: digestOf(configBytes),
    size: configBytes.length,
  };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    ...(options.artifactType ? { artifactType: options.artifactType } : {}),
    config: configDesc,
    layers: [
      {
        mediaType: WasmMediaType.cncfLayer,
        digest: layer.digest,
        size: layer.size,
        ...(options.title ? { annotations: { [ANNOTATION_TITLE]: options.title } } : {}),
      },
    ],
    annotations: { [ANNOTATION_CREATED]: options.created, ...(options.annotations ?? {}) },
  };
  const bytes = serializeManifest(manifest);
  return {
    manifest,
    bytes,
    desc: { mediaType: MediaType.ociManifest, digest: digestOf(bytes), size: bytes.length },
    config: { desc: configDesc, bytes: configBytes },
  };
}
