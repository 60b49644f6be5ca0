import * as net from 'node:net';
import { Readable } from 'node:stream';
import type * as tls from 'node:tls';
import { abortError, WasmOciError } from '../errors.js';
import { framingError, networkError } from './errors.js';
import { FramingError, ResponseParser } from './parser.js';
import { type BodyOut, sendBytes, sendFileRange } from './send.js';
import { connectTls, type TlsSettings } from './tls.js';
import {
  type BodySink,
  type FileRange,
  type HttpRequest,
  type HttpResponse,
  isFileRange,
  type Timeouts,
} from './types.js';
import { onAbort, RequestWatch } from './watch.js';

/**
 * A lean HTTP/1.1 client for every request that goes straight to its server (no proxy) with a body of
 * known length or none. node:http allocates a fresh buffer for every socket read and runs each through
 * its parser and stream layers; for a 256 MiB blob from a local registry that costs about twice curl's
 * time (bench/push-pull.mjs), and loading it costs ~8 ms of a small push's start-up. Here the socket
 * reads into one reused buffer (`onread`) and the framing is the socket-free ResponseParser, so body
 * bytes are copied at most once (into a large slab for a stream reader) or not at all (a sink sees views
 * of the read buffer). Request bodies (bytes, file ranges) go out through send.ts, as node:http's do.
 * Connections are kept alive in a pool (without one: `Connection: close`).
 *
 * Ordering is the parser's: bytes are parsed as they arrive and the socket's end is handed to the
 * parser after them, so a response whose last bytes and end arrive together (small bodies over TLS)
 * is complete, never cut.
 */

const READ_BUFFER_BYTES = 1024 * 1024;
const SLAB_BYTES = 4 * 1024 * 1024;
/** Slabs for small bodies (manifests, tokens, error bodies): no 4 MiB allocation per answer. */
const SMALL_SLAB_BYTES = 64 * 1024;
const FLUSH_BYTES = 256 * 1024;
/** Idle connections kept per origin. */
const MAX_IDLE_PER_ORIGIN = 4;

export interface RawRequestOptions {
  /** TLS settings for https URLs. */
  tls?: TlsSettings | undefined;
  timeouts: Timeouts;
  /** Keep-alive connections to reuse and return (without one: one request per connection). */
  pool?: ConnectionPool | undefined;
}

/**
 * A connection of the raw client. The socket's read callback and its events go to whoever owns it
 * now: a request, or the pool while it is idle (where any byte or the peer's close retires it).
 */
interface Connection {
  readonly key: string;
  readonly socket: net.Socket;
  owner: ConnectionOwner | undefined;
}

interface ConnectionOwner {
  /** Where the next read goes (a sink's region), when not the connection's own buffer. */
  buffer?(): Buffer | undefined;
  data(n: number, buffer: Buffer): boolean;
  ended(): void;
  error(err: Error): void;
}

/**
 * Idle keep-alive connections by origin (scheme, host, port and TLS settings: one pool per engine).
 * Idle sockets are unreferenced, so they never keep the process alive; the peer closing one, or
 * sending anything unasked, retires it.
 */
export class ConnectionPool {
  private readonly idle = new Map<string, Connection[]>();

  take(key: string): Connection | undefined {
    const list = this.idle.get(key);
    while (list?.length) {
      const conn = list.pop() as Connection;
      if (!conn.socket.destroyed && conn.socket.writable && conn.socket.readable) {
        conn.socket.ref();
        return conn;
      }
    }
    return undefined;
  }

  give(conn: Connection): void {
    const list = this.idle.get(conn.key) ?? [];
    if (list.length >= MAX_IDLE_PER_ORIGIN) {
      conn.socket.destroy();
      return;
    }
    const retire = () => {
      conn.socket.destroy();
      const at = list.indexOf(conn);
      if (at >= 0) list.splice(at, 1);
    };
    conn.owner = {
      data: () => {
        retire();
        return false;
      },
      ended: retire,
      error: retire,
    };
    conn.socket.unref();
    // Keep reading, so that the peer's close (or junk) is seen while the connection waits.
    conn.socket.resume();
    list.push(conn);
    this.idle.set(conn.key, list);
  }

  /** Closes every idle connection. */
  close(): void {
    for (const list of this.idle.values()) for (const conn of list) conn.socket.destroy();
    this.idle.clear();
  }
}

function requestHead(req: HttpRequest, keepAlive: boolean): string {
  const { url, method } = req;
  if (!/^[A-Z]+$/.test(method))
    throw new WasmOciError('USAGE', `${JSON.stringify(method)} is not an HTTP method`);
  const lines = [`${method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  for (const [name, value] of Object.entries(req.headers ?? {})) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(value)) {
      throw new WasmOciError('USAGE', `header ${JSON.stringify(name)} is not a valid HTTP header`);
    }
    if (/^(host|connection)$/i.test(name)) continue;
    lines.push(`${name}: ${value}`);
  }
  lines.push(...(keepAlive ? [] : ['Connection: close']), '', '');
  return lines.join('\r\n');
}

/**
 * Sends a request and resolves with the response head; the body streams from one reused read buffer.
 * The request body must be bytes or a file range (a stream of unknown length goes through node:http),
 * its length given as `content-length` by the caller. With a pool, an idle connection to the origin is
 * reused and the connection goes back when the answer is complete and the whole request went out. An
 * idle connection that turns out closed before any answer byte is replaced by a new one, once, for a
 * request whose body can be sent again unchanged (none, or bytes); one with a file range (whose reads
 * feed a hash) always gets a new connection.
 */
export function rawRequest(req: HttpRequest, options: RawRequestOptions): Promise<HttpResponse> {
  const { url, signal, body: requestBody } = req;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  if (requestBody !== undefined && !(requestBody instanceof Uint8Array) && !isFileRange(requestBody)) {
    return Promise.reject(new WasmOciError('USAGE', 'the raw client sends bytes or file ranges only'));
  }
  const { pool } = options;
  let head: string;
  try {
    head = requestHead(req, pool !== undefined);
  } catch (err) {
    return Promise.reject(err);
  }
  const secure = url.protocol === 'https:';
  const port = Number(url.port || (secure ? 443 : 80));
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const key = `${url.protocol}//${host}:${port}`;

  const connect = (): Connection => {
    const conn: { key: string; socket: net.Socket; owner: ConnectionOwner | undefined } = {
      key,
      socket: undefined as unknown as net.Socket,
      owner: undefined,
    };
    const own = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    const onread = {
      // Asked before every read: a body goes straight into its sink's memory where the sink offers it.
      buffer: (): Buffer => conn.owner?.buffer?.() ?? own,
      callback: (n: number, buffer: Buffer): boolean => conn.owner?.data(n, buffer) ?? false,
    };
    conn.socket = secure
      ? connectTls({ host, port, onread } as tls.ConnectionOptions, options.tls ?? {})
      : net.connect({ host, port, onread });
    // A request's head and body go in separate writes: Nagle's algorithm would hold the body back
    // until the head is acknowledged (a delayed ACK: 40 ms a request).
    conn.socket.setNoDelay(true);
    conn.socket.on('error', (err) => conn.owner?.error(err));
    conn.socket.on('end', () => conn.owner?.ended());
    conn.socket.on('close', () => conn.owner?.ended());
    return conn;
  };

  return new Promise<HttpResponse>((resolve, reject) => {
    const reused = isFileRange(requestBody) ? undefined : pool?.take(key);
    exchange(reused ?? connect(), reused !== undefined, resolve, reject);
  });

  function exchange(
    conn: Connection,
    reused: boolean,
    resolve: (res: HttpResponse) => void,
    reject: (err: unknown) => void,
  ): void {
    const { socket } = conn;
    let body: Readable | undefined;
    let sink: BodySink | undefined;
    let finished = false;
    let paused = false;

    const watch = new RequestWatch(url, options.timeouts, (err) => fail(err));
    const removeAbort = onAbort(signal, () => fail(abortError(signal)));
    const cleanup = () => {
      watch.stop();
      removeAbort();
    };

    const fail = (err: unknown) => {
      if (finished) return;
      finished = true;
      cleanup();
      conn.owner = undefined;
      socket.destroy();
      // A kept-alive connection the server had closed meanwhile: nothing was answered, so the request
      // goes again on a new connection.
      if (reused && parser.awaitingHead && received === 0 && !(err instanceof WasmOciError)) {
        exchange(connect(), false, resolve, reject);
        return;
      }
      const error =
        err instanceof WasmOciError
          ? err
          : signal?.aborted
            ? abortError(signal)
            : err instanceof FramingError
              ? framingError(err, url)
              : networkError(err as NodeJS.ErrnoException, url);
      if (body) body.destroy(error);
      else reject(error);
    };

    // Body bytes for a stream reader are copied out of the read buffer into a large slab and handed on
    // as views of it, so a 256 MiB body costs a few dozen allocations instead of thousands.
    let slab = Buffer.allocUnsafe(0);
    let slabStart = 0;
    let slabEnd = 0;
    let sinkFull = false;
    const flush = (): boolean => {
      if (!body || slabEnd === slabStart) return true;
      const view = slab.subarray(slabStart, slabEnd);
      slabStart = slabEnd;
      return body.push(view);
    };
    const deliver = (slice: Buffer) => {
      if (sink) {
        const full = sink(slice);
        if (full) {
          // The sink is busy (a file write behind): no more socket reads until it has room again.
          sinkFull = true;
          full.then(
            () => {
              sinkFull = false;
              if (!finished && !paused) socket.resume();
            },
            (err: unknown) => fail(err),
          );
        }
        return;
      }
      if (slabEnd + slice.length > slab.length) {
        if (!flush()) paused = true;
        slab = Buffer.allocUnsafe(Math.max(req.largeBody ? SLAB_BYTES : SMALL_SLAB_BYTES, slice.length));
        slabStart = 0;
        slabEnd = 0;
      }
      slice.copy(slab, slabEnd);
      slabEnd += slice.length;
      // Hand data on once enough has gathered, or at once when the reader is waiting for it.
      if (slabEnd - slabStart >= FLUSH_BYTES || (body as Readable).readableLength === 0) {
        if (!flush()) paused = true;
      }
    };

    const complete = () => {
      if (finished) return;
      finished = true;
      cleanup();
      flush();
      body?.push(null);
      if (!pool || !parser.reusable || !bodySent) {
        conn.owner = undefined;
        socket.destroy();
        return;
      }
      // The answer may have ended inside a read that holds more bytes: judge the connection again once
      // that read is over, and spoil it if anything at all arrives meanwhile. A microtask runs right
      // after the read's callback and before the code awaiting this answer goes on, so the next
      // request of that code finds the connection idle instead of opening another one.
      let spoiled = false;
      const spoil = () => {
        spoiled = true;
        return false;
      };
      conn.owner = { data: spoil, ended: spoil, error: spoil };
      queueMicrotask(() => {
        if (!spoiled && parser.reusable && !socket.destroyed) pool.give(conn);
        else {
          conn.owner = undefined;
          socket.destroy();
        }
      });
    };

    let received = 0;
    const parser = new ResponseParser(
      {
        onHead: (parsed) => {
          watch.clearPhase();
          if (parsed.status >= 200 && parsed.status < 300)
            sink = req.sinkFor?.(parsed.status, parsed.headers);
          body = new Readable({
            highWaterMark: READ_BUFFER_BYTES * 4,
            read: () => {
              if (paused && !finished) {
                paused = false;
                if (!sinkFull) socket.resume();
              }
            },
            destroy: (err, callback) => {
              if (!finished) {
                finished = true;
                cleanup();
                socket.destroy();
              }
              callback(err);
            },
          });
          // Errors before the caller attached its handlers stay stored in the stream (`errored`) and reach
          // the caller when it reads; this listener only keeps them from crashing the process meanwhile.
          body.on('error', () => {});
          resolve({ status: parsed.status, headers: parsed.headers, body, url });
          watch.startIdle();
          if (req.largeBody) watch.startRate();
          // Small bodies (manifests, tokens, tag pages, errors) must arrive whole within the time limit.
          else watch.startPhase('body', options.timeouts.idleMs);
        },
        onBody: deliver,
        onEnd: complete,
      },
      { headRequest: req.method === 'HEAD' },
    );

    conn.owner = {
      buffer: () => (sink?.region && !parser.awaitingHead && !finished ? sink.region() : undefined),
      data: (n: number, buffer: Buffer): boolean => {
        if (finished) return false;
        received += n;
        try {
          watch.activity(n);
          parser.feed(buffer.subarray(0, n));
        } catch (err) {
          fail(err);
          return false;
        }
        return !paused && !sinkFull;
      },
      error: fail,
      ended: () => {
        if (finished) return;
        try {
          parser.end();
        } catch (err) {
          fail(err);
        }
      },
    };

    // The request goes out: its head, then the body; the answer is awaited once the last byte is out.
    // An answer that comes before (a refusal) stops the body, and the connection is not reused.
    let bodySent = requestBody === undefined;
    const out: BodyOut = {
      write: (chunk, done) => {
        socket.write(chunk, () => done());
      },
      end: () => {
        bodySent = true;
        watch.stopIdle();
        if (parser.awaitingHead) watch.startPhase('headers', options.timeouts.headersMs);
      },
      get stopped() {
        return finished || socket.destroyed || !parser.awaitingHead;
      },
    };
    const moved = (n: number) => watch.activity(n);
    const send = () => {
      if (requestBody === undefined) {
        watch.startPhase('headers', options.timeouts.headersMs);
        socket.write(head);
        return;
      }
      watch.clearPhase();
      watch.startIdle();
      socket.write(head);
      if (requestBody instanceof Uint8Array) sendBytes(requestBody, out, moved);
      else sendFileRange(requestBody as FileRange, out, moved, fail);
    };
    if (reused) {
      // Reading resumes on a kept-alive connection (an idle one may have been paused by its last reader).
      socket.resume();
      send();
    } else {
      watch.startPhase('connect', options.timeouts.connectMs);
      socket.once('connect', () => {
        if (secure) watch.startPhase('handshake', options.timeouts.handshakeMs);
        else send();
      });
      if (secure) socket.once('secureConnect', send);
    }
  }
}
