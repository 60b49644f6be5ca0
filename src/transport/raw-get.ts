import * as net from 'node:net';
import { Readable } from 'node:stream';
import type * as tls from 'node:tls';
import { abortError, WasmOciError } from '../errors.js';
import { framingError, networkError } from './errors.js';
import { FramingError, ResponseParser } from './parser.js';
import { connectTls, type TlsSettings } from './tls.js';
import type { BodySink, HttpRequest, HttpResponse, Timeouts } from './types.js';
import { onAbort, RequestWatch } from './watch.js';

/**
 * A lean HTTP/1.1 GET for blob downloads. node:http allocates a fresh buffer for every socket read and
 * runs each through its parser and stream layers; for a 256 MiB blob from a local registry that costs
 * about twice curl's time (bench/push-pull.mjs). Here the socket reads into one reused buffer (`onread`)
 * and the framing is the socket-free ResponseParser, so body bytes are copied at most once (into a
 * large slab for a stream reader) or not at all (a sink sees views of the read buffer). One request per
 * connection (`Connection: close`); everything else goes through node:http.
 *
 * Ordering is the parser's: bytes are parsed as they arrive and the socket's end is handed to the
 * parser after them, so a response whose last bytes and end arrive together (small bodies over TLS)
 * is complete, never cut.
 */

const READ_BUFFER_BYTES = 1024 * 1024;
const SLAB_BYTES = 4 * 1024 * 1024;
const FLUSH_BYTES = 256 * 1024;

export interface RawGetOptions {
  /** TLS settings for https URLs. */
  tls?: TlsSettings | undefined;
  timeouts: Timeouts;
}

function requestHead(req: HttpRequest): string {
  const { url } = req;
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  for (const [name, value] of Object.entries(req.headers ?? {})) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(value)) {
      throw new WasmOciError('USAGE', `header ${JSON.stringify(name)} is not a valid HTTP header`);
    }
    if (/^(host|connection)$/i.test(name)) continue;
    lines.push(`${name}: ${value}`);
  }
  lines.push('Connection: close', '', '');
  return lines.join('\r\n');
}

/** Sends a GET and resolves with the response head; the body streams from one reused read buffer. */
export function rawGet(req: HttpRequest, options: RawGetOptions): Promise<HttpResponse> {
  const { url, signal } = req;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  let head: string;
  try {
    head = requestHead(req);
  } catch (err) {
    return Promise.reject(err);
  }
  const secure = url.protocol === 'https:';
  const port = Number(url.port || (secure ? 443 : 80));
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;

  return new Promise<HttpResponse>((resolve, reject) => {
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
      socket.destroy();
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
        slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, slice.length));
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
      socket.destroy();
    };

    const parser = new ResponseParser({
      onHead: (parsed) => {
        watch.clearPhase();
        if (parsed.status >= 200 && parsed.status < 300) sink = req.sinkFor?.(parsed.status, parsed.headers);
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
      },
      onBody: deliver,
      onEnd: complete,
    });

    const onread = {
      buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
      callback: (n: number, buffer: Buffer): boolean => {
        if (finished) return false;
        try {
          watch.activity(n);
          parser.feed(buffer.subarray(0, n));
        } catch (err) {
          fail(err);
          return false;
        }
        return !paused && !sinkFull;
      },
    };

    const socket: net.Socket = secure
      ? connectTls({ host, port, onread } as tls.ConnectionOptions, options.tls ?? {})
      : net.connect({ host, port, onread });
    watch.startPhase('connect', options.timeouts.connectMs);
    socket.once('connect', () => {
      if (secure) watch.startPhase('handshake', options.timeouts.handshakeMs);
      else send();
    });
    if (secure) socket.once('secureConnect', send);
    function send() {
      watch.startPhase('headers', options.timeouts.headersMs);
      socket.write(head);
    }
    socket.on('error', fail);
    const ended = () => {
      if (finished) return;
      try {
        parser.end();
      } catch (err) {
        fail(err);
      }
    };
    socket.on('end', ended);
    socket.on('close', ended);
  });
}
