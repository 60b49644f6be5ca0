import type { IncomingHttpHeaders } from 'node:http';
import * as net from 'node:net';
import { Readable } from 'node:stream';
import * as tls from 'node:tls';
import { abortError, WasmOciError } from './errors.js';
import type { HttpRequest, HttpResponse } from './http.js';

/**
 * A lean HTTP/1.1 GET for large response bodies (blob downloads). node:http allocates a fresh buffer for
 * every socket read and runs each through its parser and stream layers; for a 256 MiB blob from a
 * local registry that costs about twice curl's time (bench/push-pull.mjs). Here the socket reads into
 * one reused buffer (`onread`) and only the body bytes are copied out, once, which reaches curl's
 * speed. One request per connection (`Connection: close`); everything else goes through node:http.
 */

const READ_BUFFER_BYTES = 1024 * 1024;
const MAX_HEAD_BYTES = 64 * 1024;
const SLAB_BYTES = 4 * 1024 * 1024;
const FLUSH_BYTES = 256 * 1024;

export interface RawGetOptions {
  /** TLS options for https URLs. */
  tls?: Pick<tls.ConnectionOptions, 'rejectUnauthorized' | 'secureContext'>;
  onError: (err: NodeJS.ErrnoException, url: URL) => WasmOciError;
}

interface Head {
  status: number;
  headers: IncomingHttpHeaders;
}

function parseHead(text: string): Head {
  const lines = text.split('\r\n');
  const statusLine = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!statusLine)
    throw new Error(`malformed HTTP status line: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers: IncomingHttpHeaders = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = headers[name];
    if (name === 'set-cookie') headers[name] = [...((prev as string[] | undefined) ?? []), value];
    else headers[name] = prev === undefined ? value : `${prev}, ${value}`;
  }
  return { status: Number(statusLine[1]), headers };
}

/** Decodes `Transfer-Encoding: chunked` incrementally. */
class ChunkedDecoder {
  private state: 'size' | 'data' | 'data-crlf' | 'trailer' | 'done' = 'size';
  private line = '';
  private left = 0;

  get done(): boolean {
    return this.state === 'done';
  }

  /** Feeds raw bytes; calls `emit` with body slices (views into `data`: copy before keeping). */
  feed(data: Buffer, emit: (slice: Buffer) => void): void {
    let i = 0;
    while (i < data.length && this.state !== 'done') {
      if (this.state === 'data') {
        const n = Math.min(this.left, data.length - i);
        emit(data.subarray(i, i + n));
        i += n;
        this.left -= n;
        if (this.left === 0) this.state = 'data-crlf';
        continue;
      }
      const byte = data[i++] as number;
      if (byte !== 0x0a) {
        if (byte !== 0x0d) this.line += String.fromCharCode(byte);
        if (this.line.length > 1024) throw new Error('malformed chunked encoding');
        continue;
      }
      const line = this.line;
      this.line = '';
      if (this.state === 'data-crlf') {
        if (line !== '') throw new Error('malformed chunked encoding');
        this.state = 'size';
      } else if (this.state === 'size') {
        const size = Number.parseInt(line.split(';', 1)[0] ?? '', 16);
        if (!Number.isFinite(size) || size < 0) throw new Error('malformed chunk size');
        this.left = size;
        this.state = size === 0 ? 'trailer' : 'data';
      } else if (this.state === 'trailer' && line === '') {
        this.state = 'done';
      }
    }
  }
}

/** Sends a GET and resolves with the response head; the body streams from one reused read buffer. */
export function rawGet(req: HttpRequest, options: RawGetOptions): Promise<HttpResponse> {
  const { url, signal } = req;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  const secure = url.protocol === 'https:';
  const port = Number(url.port || (secure ? 443 : 80));
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;

  return new Promise<HttpResponse>((resolve, reject) => {
    let head: Head | undefined;
    let headBytes: Buffer[] = [];
    let headLength = 0;
    let body: Readable | undefined;
    let remaining = Number.POSITIVE_INFINITY;
    let chunked: ChunkedDecoder | undefined;
    let finished = false;

    const fail = (err: unknown) => {
      if (finished) return;
      finished = true;
      socket.destroy();
      const error =
        err instanceof WasmOciError
          ? err
          : signal?.aborted
            ? abortError(signal)
            : (err as NodeJS.ErrnoException).code
              ? options.onError(err as NodeJS.ErrnoException, url)
              : new WasmOciError('NETWORK', `reading from ${url.host} failed: ${(err as Error).message}`, {
                  cause: err,
                });
      if (body) body.destroy(error);
      else reject(error);
    };
    const end = () => {
      if (finished) return;
      finished = true;
      flush();
      body?.push(null);
      socket.destroy();
    };

    // Body bytes are copied out of the read buffer into a large slab and handed on as views of it, so
    // a 256 MiB body costs a few dozen allocations instead of thousands.
    let slab = Buffer.allocUnsafe(SLAB_BYTES);
    let slabStart = 0;
    let slabEnd = 0;
    const flush = (): boolean => {
      if (!body || slabEnd === slabStart) return true;
      const view = slab.subarray(slabStart, slabEnd);
      slabStart = slabEnd;
      return body.push(view);
    };
    let sink: ((chunk: Buffer) => void) | undefined;
    /** Body bytes that arrived before the caller could listen, in order. */
    let held: Buffer[] | undefined;
    const deliver = (slice: Buffer): boolean => {
      if (!body || slice.length === 0) return true;
      if (sink) {
        sink(slice);
        return true;
      }
      if (slabEnd + slice.length > slab.length) {
        const more = flush();
        slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, slice.length));
        slabStart = 0;
        slabEnd = 0;
        slice.copy(slab, 0);
        slabEnd = slice.length;
        return more;
      }
      slice.copy(slab, slabEnd);
      slabEnd += slice.length;
      // Hand data on once enough has gathered, or at once when the reader is waiting for it.
      if (slabEnd - slabStart >= FLUSH_BYTES || body.readableLength === 0) return flush();
      return true;
    };

    const onBody = (data: Buffer): boolean => {
      let more = true;
      if (chunked) {
        chunked.feed(data, (slice) => {
          more = deliver(slice) && more;
        });
        if (chunked.done) end();
        return more;
      }
      const take = data.length > remaining ? data.subarray(0, remaining) : data;
      remaining -= take.length;
      more = deliver(take);
      if (remaining === 0) end();
      return more;
    };

    const onHead = (text: string, rest: Buffer): boolean => {
      const parsed = parseHead(text);
      head = parsed;
      if (req.sink && parsed.status >= 200 && parsed.status < 300) sink = req.sink;
      const noBody =
        parsed.status === 204 || parsed.status === 304 || (parsed.status >= 100 && parsed.status < 200);
      const encoding = String(parsed.headers['transfer-encoding'] ?? '').toLowerCase();
      if (encoding.includes('chunked')) chunked = new ChunkedDecoder();
      else if (parsed.headers['content-length'] !== undefined)
        remaining = Number(parsed.headers['content-length']);
      if (noBody) remaining = 0;
      body = new Readable({
        highWaterMark: READ_BUFFER_BYTES * 4,
        // Returning false from `onread` stops reading; net.Socket#resume restarts it.
        read: () => {
          socket.resume();
        },
        destroy: (err, callback) => {
          if (!finished) {
            finished = true;
            socket.destroy();
          }
          callback(err);
        },
      });
      // Errors before the caller attached its handlers stay stored in the stream (`errored`) and reach
      // the caller when it reads; this listener only keeps them from crashing the process meanwhile.
      body.on('error', () => {});
      resolve({ status: parsed.status, headers: parsed.headers, body, url });
      // The caller gets the response in a later tick: hold the socket until then, so body bytes (and
      // errors) are delivered only once it is listening.
      // A TLS socket may still hand over records it already decrypted: they queue up behind `rest`.
      held = [Buffer.from(rest)];
      setImmediate(() => {
        const queued = held ?? [];
        held = undefined;
        if (finished) return;
        try {
          if (remaining === 0) end();
          else {
            let more = true;
            for (const chunk of queued) if (chunk.length > 0 && !finished) more = onBody(chunk) && more;
            if (more) socket.resume();
          }
        } catch (err) {
          fail(err);
        }
      });
      return false;
    };

    const onread = {
      buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
      callback: (n: number, buffer: Buffer): boolean => {
        if (finished) return false;
        try {
          const data = buffer.subarray(0, n);
          if (held) {
            held.push(Buffer.from(data));
            return false;
          }
          if (head) return onBody(data);
          headBytes.push(Buffer.from(data));
          headLength += n;
          const all = Buffer.concat(headBytes, headLength);
          const split = all.indexOf('\r\n\r\n');
          if (split === -1) {
            if (headLength > MAX_HEAD_BYTES) throw new Error('response headers are too large');
            return true;
          }
          headBytes = [];
          return onHead(all.subarray(0, split).toString('latin1'), all.subarray(split + 4));
        } catch (err) {
          fail(err);
          return false;
        }
      },
    };

    const socket: net.Socket = secure
      ? tls.connect({
          host,
          port,
          servername: net.isIP(host) ? undefined : host,
          onread,
          ...options.tls,
        } as tls.ConnectionOptions)
      : net.connect({ host, port, onread });
    const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
    for (const [name, value] of Object.entries(req.headers ?? {})) {
      if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) {
        fail(new WasmOciError('USAGE', `header ${name} contains a line break`));
        return;
      }
      lines.push(`${name}: ${value}`);
    }
    lines.push('Connection: close', '', '');
    socket.once(secure ? 'secureConnect' : 'connect', () => socket.write(lines.join('\r\n')));
    socket.on('error', fail);
    socket.on('end', () => {
      if (!head) fail(new Error('the connection closed before a response arrived'));
      else if (remaining === Number.POSITIVE_INFINITY && !chunked) end();
      else fail(new Error('the connection closed before the body ended'));
    });
    socket.on('close', () => {
      if (!finished && head) fail(new Error('the connection closed before the body ended'));
    });
    signal?.addEventListener('abort', () => fail(abortError(signal)), { once: true });
  });
}
