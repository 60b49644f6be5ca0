import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { FileRange } from '../content/range.js';

/**
 * What the transport room offers the rest of the library: one request/response interface over HTTP/1.1,
 * whatever engine carries it. Bodies are bytes, streams or ranges of open files; responses stream.
 */

export type HttpBody = Uint8Array | Readable | FileRange;

export { type FileRange, isFileRange } from '../content/range.js';

/**
 * Takes body bytes as they arrive. The chunk's memory may be reused once the call returns; a returned
 * promise asks for no more bytes until it settles (a rejection fails the request). A sink with a
 * `region` offers the memory the next bytes may be read into: bytes delivered where it said are taken
 * without a copy (a file writer's slab), any others are copied as usual.
 */
export type BodySink = ((chunk: Buffer) => void | Promise<void>) & { region?: (() => Buffer) | undefined };

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string> | undefined;
  body?: HttpBody | undefined;
  signal?: AbortSignal | undefined;
  /**
   * The response body is a blob: the engine may use its fast GET path, and the body is timed by idleness
   * and a minimum rate instead of a deadline (small bodies must arrive whole within the timeout).
   */
  largeBody?: boolean | undefined;
  /**
   * Called synchronously with the response head; a sink it returns receives the body instead of the
   * `body` stream, which then only signals the end (or the error). The caller can thus check the status
   * and headers (a 206's Content-Range) before any body byte is delivered.
   */
  sinkFor?: ((status: number, headers: IncomingHttpHeaders) => BodySink | undefined) | undefined;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The response body; callers must consume or destroy it. */
  body: Readable;
  /** The URL that answered. */
  url: URL;
}

export interface HttpEngine {
  request(req: HttpRequest): Promise<HttpResponse>;
  /**
   * Optional: whether the server at `url` answers a TLS handshake at all (certificates are not judged
   * here; requests verify them). Lets a loopback registry's scheme be found without a full request.
   */
  speaksTls?(url: URL, signal?: AbortSignal): Promise<boolean>;
  /** Optional: releases idle connections. */
  close?(): void;
}

/**
 * Time limits of one request, by phase. A limit that passes fails the request with code TIMEOUT, naming
 * the phase and the host; idempotent requests are then retried and blob downloads resumed.
 */
export interface Timeouts {
  /** TCP connection (default 30 s). */
  connectMs: number;
  /** TLS handshake after the connection (default 30 s). */
  handshakeMs: number;
  /** From the end of the request to the response head (default 60 s). */
  headersMs: number;
  /**
   * No byte moved for this long, in either direction (default 60 s). Small bodies (manifests, tokens,
   * tag pages, errors) must also arrive whole within it.
   */
  idleMs: number;
  /** A blob body slower than this over `rateWindowMs` is stalled (default 1 KiB/s over 60 s). */
  minBytesPerSecond: number;
  rateWindowMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = {
  connectMs: 30_000,
  handshakeMs: 30_000,
  headersMs: 60_000,
  idleMs: 60_000,
  minBytesPerSecond: 1024,
  rateWindowMs: 60_000,
};

/** The header of a response (the first value of a repeated one). */
export function header(res: Pick<HttpResponse, 'headers'>, name: string): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
