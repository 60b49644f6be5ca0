import { createHash, type Hash } from 'node:crypto';
import { WasmOciError } from '../errors.js';

/** Digest algorithms we can verify, with the length of their hex encoding. */
export type DigestAlgorithm = 'sha256' | 'sha512';
const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/** A validated digest string, `<algorithm>:<lowercase hex>`. */
export type Digest = string;

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
}

export function parseDigest(digest: string): ParsedDigest {
  const colon = digest.indexOf(':');
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  if (colon === -1 || !(algorithm === 'sha256' || algorithm === 'sha512')) {
    throw new WasmOciError('INVALID_DIGEST', `unsupported digest "${digest}"`, {
      hint: 'digests look like sha256:<64 hex digits> or sha512:<128 hex digits>',
    });
  }
  if (hex.length !== HEX_LENGTH[algorithm] || !/^[0-9a-f]+$/.test(hex)) {
    throw new WasmOciError('INVALID_DIGEST', `malformed ${algorithm} digest "${digest}"`);
  }
  return { algorithm, hex };
}

/**
 * The referrers tag schema of the distribution spec: the index listing a subject's referrers lives
 * under the tag `<alg>-<hex>` (`sha256-<hex>`) where a registry has no referrers API.
 */
export function referrersTag(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `${algorithm}-${hex}`;
}

export function isDigest(value: string): boolean {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

/** A running hash that yields a digest string. */
export class Digester {
  readonly algorithm: DigestAlgorithm;
  private readonly hash: Hash;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
  }

  digest(): Digest {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}
