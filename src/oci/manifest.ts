import { WasmOciError } from '../errors.js';
import {
  type Annotations,
  type Descriptor,
  isMediaType,
  type Platform,
  parseAnnotations,
  parseDescriptor,
} from './descriptor.js';
import { type GoJson, type GoValue, goArray, goMap, goStruct } from './gojson.js';
import { INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MediaType } from './mediatypes.js';

/** Manifests, indexes and configs are capped before parsing, as the distribution spec suggests. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** An image manifest (OCI or Docker schema 2): one config and a list of layers. */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Annotations;
}

/** An image index (or Docker manifest list): manifests for several platforms or artifacts. */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Annotations;
}

export type ParsedManifest =
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest }
  | { kind: 'index'; mediaType: string; index: ImageIndex };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringMap(value: unknown, where: string): Annotations | undefined {
  return parseAnnotations(value, where);
}

/**
 * Parses manifest bytes. `mediaType` is what the registry (or a parent descriptor) said; the body's own
 * `mediaType` field wins when present, and a body without one is told apart by its `manifests` or
 * `layers` field (the classic wasm-to-oci manifest has no top-level mediaType at all).
 */
export function parseManifest(bytes: Uint8Array, mediaType?: string): ParsedManifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new WasmOciError('TOO_LARGE', `manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (cause) {
    throw new WasmOciError('INVALID_MANIFEST', 'manifest is not valid JSON', { cause });
  }
  if (!isRecord(json)) throw new WasmOciError('INVALID_MANIFEST', 'manifest is not a JSON object');
  if (json.schemaVersion !== 2) {
    // Named without converting it: String() of {"toString":1} throws, of a deep array overflows the stack.
    const version = json.schemaVersion;
    const shown =
      typeof version === 'number' || typeof version === 'string'
        ? JSON.stringify(version).slice(0, 40)
        : version === null || version === undefined
          ? String(version)
          : `of type ${Array.isArray(version) ? 'array' : typeof version}`;
    throw new WasmOciError('UNSUPPORTED', `manifest schemaVersion ${shown} is not supported`, {
      hint: 'only schema version 2 manifests (OCI and Docker v2) are supported',
    });
  }
  const declared = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  const type = declared ?? (mediaType && mediaType !== '' ? mediaType : undefined);
  const isIndex =
    (type !== undefined && INDEX_MEDIA_TYPES.includes(type)) ||
    (type === undefined && Array.isArray(json.manifests));
  if (json.artifactType !== undefined && json.artifactType !== null && !isMediaType(json.artifactType)) {
    throw new WasmOciError('INVALID_MANIFEST', 'manifest artifactType is malformed');
  }
  if (json.mediaType !== undefined && !isMediaType(json.mediaType)) {
    throw new WasmOciError('INVALID_MANIFEST', 'manifest mediaType is malformed');
  }
  const common = {
    ...(typeof json.artifactType === 'string' ? { artifactType: json.artifactType } : {}),
    ...(json.subject !== undefined && json.subject !== null
      ? { subject: parseDescriptor(json.subject, 'manifest subject') }
      : {}),
  };
  const annotations = stringMap(json.annotations, 'manifest');

  if (isIndex) {
    if (!Array.isArray(json.manifests))
      throw new WasmOciError('INVALID_MANIFEST', 'index has no manifests list');
    const index: ImageIndex = {
      schemaVersion: 2,
      ...(declared !== undefined ? { mediaType: declared } : {}),
      ...common,
      manifests: json.manifests.map((m, i) => parseDescriptor(m, `index entry ${i}`)),
      ...(annotations ? { annotations } : {}),
    };
    return { kind: 'index', mediaType: type ?? MediaType.ociIndex, index };
  }
  if (type !== undefined && !MANIFEST_MEDIA_TYPES.includes(type)) {
    throw new WasmOciError('UNSUPPORTED', `unsupported manifest media type "${type}"`);
  }
  if (!Array.isArray(json.layers)) throw new WasmOciError('INVALID_MANIFEST', 'manifest has no layers list');
  const manifest: ImageManifest = {
    schemaVersion: 2,
    ...(declared !== undefined ? { mediaType: declared } : {}),
    ...common,
    config: parseDescriptor(json.config, 'manifest config'),
    layers: json.layers.map((l, i) => parseDescriptor(l, `manifest layer ${i}`)),
    ...(annotations ? { annotations } : {}),
  };
  return { kind: 'manifest', mediaType: type ?? MediaType.ociManifest, manifest };
}

/** The descriptors a manifest or index points at (what a graph copy must move first). */
export function successors(parsed: ParsedManifest): Descriptor[] {
  if (parsed.kind === 'index') {
    return parsed.index.subject
      ? [parsed.index.subject, ...parsed.index.manifests]
      : [...parsed.index.manifests];
  }
  const { manifest } = parsed;
  return [...(manifest.subject ? [manifest.subject] : []), manifest.config, ...manifest.layers];
}

function goPlatform(p: Platform): GoJson {
  return goStruct([
    ['architecture', p.architecture],
    ['os', p.os],
    ['os.version', p['os.version'] || undefined],
    ['os.features', p['os.features']?.length ? p['os.features'] : undefined],
    ['variant', p.variant || undefined],
  ]);
}

function nonEmptyMap(map: Annotations | undefined): GoJson | undefined {
  return map && Object.keys(map).length > 0 ? goMap(map) : undefined;
}

/** A descriptor in the image-spec's Go field order (mediaType, digest, size, urls, annotations, ...). */
export function goDescriptor(d: Descriptor): GoJson {
  return goStruct([
    ['mediaType', d.mediaType],
    ['digest', d.digest],
    ['size', d.size],
    ['urls', d.urls?.length ? (d.urls as GoValue[]) : undefined],
    ['annotations', nonEmptyMap(d.annotations)],
    ['data', d.data || undefined],
    ['platform', d.platform ? goPlatform(d.platform) : undefined],
    ['artifactType', d.artifactType || undefined],
  ]);
}

/**
 * Serialises a manifest exactly as Go's encoding/json does with the image-spec structs: compact, fields
 * in struct order, empty optional fields omitted, annotation keys sorted. A manifest without `mediaType`
 * (the classic wasm-to-oci format) is written without one.
 */
export function serializeManifest(m: ImageManifest): Uint8Array {
  const json = goStruct([
    ['schemaVersion', m.schemaVersion],
    ['mediaType', m.mediaType || undefined],
    ['artifactType', m.artifactType || undefined],
    ['config', goDescriptor(m.config)],
    ['layers', goArray(m.layers.map(goDescriptor))],
    ['subject', m.subject ? goDescriptor(m.subject) : undefined],
    ['annotations', nonEmptyMap(m.annotations)],
  ]).json;
  return Buffer.from(json, 'utf8');
}

export function serializeIndex(index: ImageIndex): Uint8Array {
  const json = goStruct([
    ['schemaVersion', index.schemaVersion],
    ['mediaType', index.mediaType || undefined],
    ['artifactType', index.artifactType || undefined],
    ['manifests', goArray(index.manifests.map(goDescriptor))],
    ['subject', index.subject ? goDescriptor(index.subject) : undefined],
    ['annotations', nonEmptyMap(index.annotations)],
  ]).json;
  return Buffer.from(json, 'utf8');
}
