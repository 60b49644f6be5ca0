import { WasmOciError } from '../errors.js';
import { type Digest, digestOf, parseDigest } from './digest.js';
import { MediaType } from './mediatypes.js';

export type Annotations = Record<string, string>;

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
}

/** An OCI content descriptor: what a blob is, its digest and its exact size. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Annotations;
  artifactType?: string;
  platform?: Platform;
  urls?: string[];
  data?: string;
}

/**
 * The empty JSON object `{}` and its descriptor (image-spec "Guidance for an Empty Descriptor"): the
 * config of an artifact that needs none, or its one layer when it has no files.
 */
export const EMPTY_JSON = Buffer.from('{}', 'utf8');
export const EMPTY_DESCRIPTOR: Descriptor = {
  mediaType: MediaType.ociEmpty,
  digest: digestOf(EMPTY_JSON),
  size: EMPTY_JSON.length,
};

export const ANNOTATION_TITLE = 'org.opencontainers.image.title';
export const ANNOTATION_CREATED = 'org.opencontainers.image.created';
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** RFC 6838 `type/subtype` (no parameters): what the image spec allows for media and artifact types. */
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Generous bounds on strings a descriptor carries (annotation values may be long: descriptions). */
const MAX_ANNOTATIONS = 4096;
const MAX_KEY = 1024;
const MAX_SHORT = 1024;

export function isMediaType(value: unknown): boolean {
  return typeof value === 'string' && MEDIA_TYPE.test(value);
}

/**
 * Validates an annotations map of untrusted JSON: an object of strings to strings, rebuilt as a fresh
 * object (keys such as `__proto__` stay plain keys). `where` names it in errors.
 */
export function parseAnnotations(value: unknown, where: string): Annotations | undefined {
  if (value === undefined || value === null) return undefined;
  const bad = (why: string) => new WasmOciError('INVALID_MANIFEST', `${where}: annotations ${why}`);
  if (!isRecord(value)) throw bad('must map strings to strings');
  const entries = Object.entries(value);
  if (entries.length > MAX_ANNOTATIONS) throw bad(`hold more than ${MAX_ANNOTATIONS} entries`);
  for (const [k, v] of entries) {
    if (typeof v !== 'string') throw bad('must map strings to strings');
    if (k === '' || k.length > MAX_KEY) throw bad('have an empty or overlong key');
  }
  return Object.fromEntries(entries) as Annotations;
}

function parsePlatform(value: unknown, where: string): Platform {
  const bad = (why: string) => new WasmOciError('INVALID_MANIFEST', `${where}: platform ${why}`);
  if (!isRecord(value)) throw bad('is not an object');
  const { architecture, os, variant } = value;
  const version = value['os.version'];
  const features = value['os.features'];
  const short = (v: unknown) => typeof v === 'string' && v.length <= MAX_SHORT;
  if (!short(architecture) || !short(os)) throw bad('needs architecture and os strings');
  if (version !== undefined && !short(version)) throw bad('os.version is not a string');
  if (variant !== undefined && !short(variant)) throw bad('variant is not a string');
  if (features !== undefined && (!Array.isArray(features) || features.length > 256 || !features.every(short)))
    throw bad('os.features is not a list of strings');
  return {
    architecture: architecture as string,
    os: os as string,
    ...(version !== undefined ? { 'os.version': version as string } : {}),
    ...(features !== undefined ? { 'os.features': [...(features as string[])] } : {}),
    ...(variant !== undefined ? { variant: variant as string } : {}),
  };
}

/**
 * Validates an untrusted JSON value as a descriptor, field by field (image-spec "Descriptor"): types,
 * the media type and digest grammars, a non-negative safe size, string URLs, base64 `data` of the
 * descriptor's size, a well-formed platform. The result is built from validated values only; unknown
 * fields are dropped. `where` names the descriptor in error messages.
 */
export function parseDescriptor(value: unknown, where: string): Descriptor {
  const bad = (why: string) => new WasmOciError('INVALID_MANIFEST', `${where}: ${why}`);
  if (!isRecord(value)) throw bad('descriptor is not an object');
  const { mediaType, digest, size, artifactType, urls, data } = value;
  if (typeof mediaType !== 'string' || mediaType === '') throw bad('descriptor has no mediaType');
  if (!isMediaType(mediaType)) throw bad(`malformed mediaType ${JSON.stringify(mediaType.slice(0, 100))}`);
  if (typeof digest !== 'string') throw bad('descriptor has no digest');
  try {
    parseDigest(digest);
  } catch (cause) {
    throw new WasmOciError(
      'INVALID_MANIFEST',
      `${where}: bad digest ${JSON.stringify(digest.slice(0, 140))}`,
      {
        cause,
      },
    );
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw bad('descriptor size is not a non-negative integer');
  }
  const out: Descriptor = { mediaType, digest, size };
  if (urls !== undefined && urls !== null) {
    if (
      !Array.isArray(urls) ||
      urls.length > 256 ||
      !urls.every((u) => typeof u === 'string' && u.length <= 8192)
    )
      throw bad('urls is not a list of strings');
    if (urls.length) out.urls = [...urls];
  }
  const annotations = parseAnnotations(value.annotations, where);
  if (annotations) out.annotations = annotations;
  if (data !== undefined && data !== null) {
    if (typeof data !== 'string' || !BASE64.test(data)) throw bad('data is not base64');
    if (Buffer.byteLength(data, 'base64') !== size) throw bad("data does not hold the descriptor's size");
    if (data !== '') out.data = data;
  }
  if (value.platform !== undefined && value.platform !== null)
    out.platform = parsePlatform(value.platform, where);
  if (artifactType !== undefined && artifactType !== null) {
    if (typeof artifactType !== 'string' || !isMediaType(artifactType)) throw bad('malformed artifactType');
    out.artifactType = artifactType;
  }
  return out;
}

/** A short human-readable name for a descriptor in messages and progress output. */
export function describe(desc: Descriptor): string {
  return desc.annotations?.[ANNOTATION_TITLE] ?? desc.digest;
}
