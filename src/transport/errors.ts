import { WasmOciError } from '../errors.js';
import { FramingError } from './parser.js';

/**
 * Socket, TLS, framing and timeout failures as our error type: one line naming the host and what
 * happened, a hint that fits, and `details.transient` on failures worth another try (a reset, a
 * connection closed mid-message, a phase that timed out), which the retry and resume logic read.
 */

/** Certificate problems Node reports by code, in words a user can act on. */
const CERTIFICATE_PROBLEMS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'its certificate chain ends in an untrusted self-signed CA',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its certificate is not signed by a trusted CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the CA of its certificate is not trusted here',
  UNABLE_TO_GET_ISSUER_CERT: 'the CA of its certificate is not trusted here',
  CERT_HAS_EXPIRED: 'its certificate has expired',
  CERT_NOT_YET_VALID: 'its certificate is not valid yet',
  ERR_TLS_CERT_ALTNAME_INVALID: 'its certificate is for another host name',
  CERT_REVOKED: 'its certificate was revoked',
  CERT_SIGNATURE_FAILURE: 'its certificate signature is invalid',
};

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EAI_AGAIN',
  'ENETRESET',
]);

/** The reason OpenSSL gives, without its source file and line ("wrong version number"). */
function opensslReason(message: string): string | undefined {
  return /SSL routines:[^:]*:([^:\n]+)/.exec(message)?.[1]?.trim();
}

function transient(err: WasmOciError): WasmOciError {
  return new WasmOciError(err.code, err.message, {
    cause: err.cause,
    ...(err.hint ? { hint: err.hint } : {}),
    details: { ...(err.details ?? {}), transient: true },
  });
}

/** True for a failure that a retry (or, mid-body, a resume) may get past. */
export function isTransient(err: unknown): boolean {
  return err instanceof WasmOciError && err.details?.transient === true;
}

/** Turns a socket-level error into our error type with a message a user can act on. */
export function networkError(err: NodeJS.ErrnoException, url: URL): WasmOciError {
  if (err instanceof WasmOciError) return err;
  if (err instanceof FramingError) return framingError(err, url);
  const code = err.code ?? '';
  const where = url.host;
  const message = String(err.message ?? err);
  const certificate = CERTIFICATE_PROBLEMS[code];
  if (certificate) {
    return new WasmOciError('TLS', `TLS with ${where} failed: ${certificate}`, {
      cause: err,
      details: { plainHttpPeer: false, tlsCode: code },
      hint:
        code === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? 'connect by the name in its certificate, or skip verification with the `insecure` option'
          : "trust the registry's CA with the `ca` option (or SSL_CERT_FILE), or skip verification with the `insecure` option",
    });
  }
  const reason = opensslReason(message);
  if (reason || code.startsWith('ERR_SSL') || code === 'EPROTO' || /\b(ssl|tls)\b/i.test(message)) {
    const text = reason ?? message.split('\n')[0] ?? message;
    const plainHttpPeer = /wrong version number|packet length too long|http request/i.test(text);
    const clientCert =
      /certificate required|bad certificate|handshake failure|unknown ca/i.test(text) &&
      !/self.signed|verify/i.test(text);
    return new WasmOciError('TLS', `TLS with ${where} failed: ${text}`, {
      cause: err,
      details: { plainHttpPeer },
      hint: plainHttpPeer
        ? 'the registry seems to speak plain HTTP: use the `plainHttp` option'
        : clientCert
          ? 'the registry wants a client certificate: use the `cert` option and the `key` option'
          : "trust the registry's CA with the `ca` option (or SSL_CERT_FILE), or skip verification with the `insecure` option",
    });
  }
  if (code === 'ECONNREFUSED') {
    return new WasmOciError('NETWORK', `cannot connect to ${where}: connection refused`, {
      cause: err,
      hint: 'is the registry running, and is the port right?',
    });
  }
  if (code === 'ENOTFOUND') {
    return new WasmOciError('NETWORK', `cannot resolve host ${url.hostname}`, {
      cause: err,
      hint: 'check the registry name and your DNS or proxy settings',
    });
  }
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    return new WasmOciError('NETWORK', `cannot reach ${where}: no route to the host`, { cause: err });
  }
  if (code.startsWith('HPE_')) {
    return new WasmOciError('NETWORK', `${where} did not answer with valid HTTP`, {
      cause: err,
      hint: 'the registry may speak TLS: drop the `plainHttp` option',
    });
  }
  const error = new WasmOciError(
    'NETWORK',
    TRANSIENT_CODES.has(code) || message === 'aborted' || code === 'ERR_STREAM_PREMATURE_CLOSE'
      ? `the connection to ${where} was lost${code && code !== 'ERR_STREAM_PREMATURE_CLOSE' ? ` (${code})` : ''}`
      : `request to ${where} failed: ${message.split('\n')[0]}`,
    { cause: err },
  );
  return TRANSIENT_CODES.has(code) || message === 'aborted' || code === 'ERR_STREAM_PREMATURE_CLOSE'
    ? transient(error)
    : error;
}

/** A response we could not read: a premature close is transient, malformed framing is not. */
export function framingError(err: FramingError, url: URL): WasmOciError {
  const error = new WasmOciError('NETWORK', `reading from ${url.host} failed: ${err.message}`, {
    cause: err,
  });
  return err.premature ? transient(error) : error;
}

export type TimeoutPhase = 'connect' | 'handshake' | 'headers' | 'idle' | 'body' | 'rate';

const PHASES: Record<TimeoutPhase, string> = {
  connect: 'connecting to',
  handshake: 'the TLS handshake with',
  headers: 'waiting for an answer from',
  idle: 'waiting for data from',
  body: 'reading the answer of',
  rate: 'a transfer from',
};

/** A phase that ran out of time: transient, so requests are retried and downloads resumed. */
export function timeoutError(phase: TimeoutPhase, url: URL, ms: number, detail?: string): WasmOciError {
  const seconds = ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
  const what =
    phase === 'rate'
      ? `${PHASES.rate} ${url.host} stalled (${detail ?? 'too slow'})`
      : `${PHASES[phase]} ${url.host} timed out after ${seconds}`;
  return new WasmOciError('TIMEOUT', what, {
    hint:
      phase === 'connect' || phase === 'handshake'
        ? 'check that the registry is reachable (proxy, firewall, port)'
        : 'the registry or the network is slow: raise the limit with the `timeouts` option',
    details: { phase, transient: true },
  });
}
