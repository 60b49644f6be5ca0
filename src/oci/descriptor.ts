import { WasmOciError } from '../errors.js';
import { type Digest, parseDigest } from './digest.js';

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

export const ANNOTATION_TITLE = 'org.opencontainers.image.title';
export const ANNOTATION_CREATED = 'org.opencontainers.image.created';
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates an untrusted JSON value as a descriptor; `where` names it in error messages. */
export function parseDescriptor(value: unknown, where: string): Descriptor {
  const bad = (why: string) => new WasmOciError('INVALID_MANIFEST', `${where}: ${why}`);
  if (!isRecord(value)) throw bad('descriptor is not an object');
  const { mediaType, digest, size, annotations } = value;
  if (typeof mediaType !== 'string' || mediaType === '') throw bad('descriptor has no mediaType');
  if (typeof digest !== 'string') throw bad('descriptor has no digest');
  try {
    parseDigest(digest);
  } catch (cause) {
    throw new WasmOciError('INVALID_MANIFEST', `${where}: bad digest "${digest}"`, { cause });
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw bad('descriptor size is not a non-negative integer');
  }
  const out: Descriptor = { mediaType, digest, size };
  if (annotations !== undefined && annotations !== null) {
    if (!isRecord(annotations) || Object.values(annotations).some((v) => typeof v !== 'string')) {
      throw bad('annotations must map strings to strings');
    }
    out.annotations = annotations as Annotations;
  }
  if (typeof value.artifactType === 'string') out.artifactType = value.artifactType;
  if (isRecord(value.platform)) {
    const { architecture, os } = value.platform;
    if (typeof architecture === 'string' && typeof os === 'string') {
      out.platform = value.platform as unknown as Platform;
    }
  }
  if (Array.isArray(value.urls)) out.urls = value.urls.filter((u): u is string => typeof u === 'string');
  return out;
}

/** A short human-readable name for a descriptor in messages and progress output. */
export function describe(desc: Descriptor): string {
  return desc.annotations?.[ANNOTATION_TITLE] ?? desc.digest;
}
