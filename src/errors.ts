/**
 * The one error type of wasm-to-oci. Every failure the library reports is a `WasmOciError` with a stable
 * `code` (part of the public API: scripts may switch on it), a message that reads well on one line, an
 * optional `hint` telling the user what to do, and the underlying `cause` when there is one.
 */

import { setTimeout as delay } from 'node:timers/promises';

export type ErrorCode =
  /** The command line or an option object is malformed. */
  | 'USAGE'
  /** A reference string does not follow the distribution grammar. */
  | 'INVALID_REFERENCE'
  /** A digest string is malformed or uses an unsupported algorithm. */
  | 'INVALID_DIGEST'
  /** A local file could not be read or written. */
  | 'FILE'
  /** The input is not a WebAssembly binary. */
  | 'NOT_WASM'
  /** A WebAssembly binary is truncated or malformed. */
  | 'INVALID_WASM'
  /** A manifest, index or config is not valid JSON of the expected shape. */
  | 'INVALID_MANIFEST'
  /** No layer (or more than one) of the artifact holds a wasm module. */
  | 'NO_WASM_LAYER'
  /** Content did not hash to the digest its descriptor promised. */
  | 'DIGEST_MISMATCH'
  /** Content was longer or shorter than its descriptor said. */
  | 'SIZE_MISMATCH'
  /** Content exceeded a safety cap (for example a 4 MiB manifest limit). */
  | 'TOO_LARGE'
  /** The registry has no such manifest, tag, blob or repository. */
  | 'NOT_FOUND'
  /** The registry wants credentials (401). */
  | 'UNAUTHORIZED'
  /** The registry refused the operation with the credentials given (403). */
  | 'DENIED'
  /** Credentials could not be read (a failing credential helper, a malformed config entry). */
  | 'CREDENTIALS'
  /** The registry answered with an unexpected status or a protocol error. */
  | 'REGISTRY'
  /** The registry could not be reached (DNS, refused connection, reset). */
  | 'NETWORK'
  /** A connection, an answer or a transfer stalled past its time limit (`--timeout`). */
  | 'TIMEOUT'
  /** The registry's request quota is used up (HTTP 429 with no requests remaining). */
  | 'RATE_LIMITED'
  /** A TLS handshake or certificate check failed. */
  | 'TLS'
  /** The operation was cancelled through its AbortSignal. */
  | 'ABORTED'
  /** The registry or content uses something this version does not support. */
  | 'UNSUPPORTED'
  /**
   * Trust data (Notary v1 / TUF) does not vouch for the content: a bad or missing signature, expired or
   * rolled-back metadata, no such signed target, or a module whose length or hashes differ.
   */
  | 'TRUST'
  /** A signing key's passphrase is wrong or none could be obtained. */
  | 'PASSPHRASE'
  /** A signing key is missing from the trust directory or cannot be read (or a key file is malformed). */
  | 'SIGNING_KEY'
  /**
   * No signature verifies: none by the given key, a signature that does not match its payload, a
   * payload that names another digest, or a malformed signature artifact (cosign).
   */
  | 'SIGNATURE_INVALID';

export interface WasmOciErrorOptions {
  hint?: string;
  cause?: unknown;
  /** HTTP status, when the error came from a registry response. */
  status?: number;
  /** Extra machine-readable facts (registry error codes, layer lists...). */
  details?: Record<string, unknown>;
}

/**
 * Marks our errors across copies of this module (the CLI's bundles each hold one; two installed
 * versions of the library may meet): `instanceof WasmOciError` checks the mark, not the class object.
 */
const BRAND = Symbol.for('wasm-to-oci.WasmOciError');

export class WasmOciError extends Error {
  override readonly name = 'WasmOciError';
  readonly [BRAND] = true;

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true;
  }

  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly status: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: WasmOciErrorOptions = {}) {
    // Messages quote outside text (references, registry answers, file names): its line breaks are
    // shown as escapes, so a message stays one line for every caller, not only the CLI.
    super(
      message.replace(/[\r\n]/g, (c) => (c === '\n' ? '\\n' : '\\r')),
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.hint = options.hint;
    this.status = options.status;
    this.details = options.details;
  }
}

/** The code for an HTTP status a server refused a request with (one map for every caller). */
export function codeForStatus(status: number): ErrorCode {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'DENIED';
  if (status === 404) return 'NOT_FOUND';
  return 'REGISTRY';
}

/** True when `err` is a WasmOciError with the given code (or any code, when none is given). */
export function hasCode(err: unknown, code?: ErrorCode): err is WasmOciError {
  return err instanceof WasmOciError && (code === undefined || err.code === code);
}

/** Wraps an AbortSignal's reason into our error type, so callers see one code for cancellation. */
export function abortError(signal: AbortSignal | undefined): WasmOciError {
  return new WasmOciError('ABORTED', 'operation cancelled', { cause: signal?.reason });
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/** Waits `ms`; a `signal` that aborts first (or already has) ends the wait with an ABORTED error. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch {
    throw abortError(signal);
  }
}

const ERRNO_REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EEXIST: 'already exists',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EBUSY: 'the file is busy',
  ETXTBSY: 'the file is busy',
  EIO: 'input/output error',
  EFBIG: 'file too large for the file size limit',
  EXDEV: 'cannot rename across file systems',
  ENOMEM: 'out of memory',
};

/** True for an operating-system error of Node (`code` `E…` and a `syscall`). */
export function isErrnoError(err: unknown): err is NodeJS.ErrnoException {
  const e = err as NodeJS.ErrnoException | null;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.code === 'string' &&
    /^E[A-Z0-9]+$/.test(e.code) &&
    typeof e.syscall === 'string'
  );
}

/**
 * An operating-system error as a FILE error: `<what>: <reason in words>` and a hint that fits
 * (space, permissions), never the raw `ENOSPC: no space left on device, write` text.
 */
export function errnoError(err: NodeJS.ErrnoException, what: string, code = err.code ?? ''): WasmOciError {
  const reason = ERRNO_REASONS[code] ?? (err.message ?? String(err)).split('\n')[0];
  const hint =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? 'free some space (wasm-to-oci cache prune may help) and try again'
      : code === 'EFBIG'
        ? 'raise the file size limit (ulimit -f) or write somewhere else'
        : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
          ? 'write somewhere you may write, or fix the permissions'
          : undefined;
  return new WasmOciError('FILE', `${what}: ${reason}`, { cause: err, ...(hint ? { hint } : {}) });
}
