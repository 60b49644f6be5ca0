import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { abortError, WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { isTransient } from '../transport/errors.js';
import type { BodySink, HttpResponse } from '../transport/types.js';
import type { RegistryClient } from './client.js';

/**
 * Blob downloads that survive a dropped connection, a reset or a stall: the GET is sent again with
 * `Range: bytes=<received>-` and the bytes continue where they stopped, so the hash (in the consumer)
 * runs on. The registry is asked again each time, so a redirect to signed storage is fresh. A 200 to a
 * ranged request is the whole blob: read from byte zero, with what was already received skipped. A 206
 * must start exactly where asked. Bounded by the client's retry policy: tries without progress,
 * resumptions with progress, and a total time budget; then the last failure is reported with a count.
 */

export interface DownloadRequest {
  client: RegistryClient;
  /** The registry path of the blob (`/v2/<name>/blobs/<digest>`). */
  path: string;
  desc: Descriptor;
  scopes: readonly string[];
  signal?: AbortSignal | undefined;
  /** Names the blob in errors: `localhost:5000/hello@sha256:...`. */
  where: string;
}

/** `bytes <start>-<end>/<total|*>` -> start. */
function rangeStart(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  const match = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(text ?? '');
  return match ? Number(match[1]) : undefined;
}

/**
 * Checks the head of an answer to a request for the bytes from `at`: how many leading body bytes to
 * skip, or the error that makes the answer unusable.
 */
function checkRange(at: number, status: number, headers: IncomingHttpHeaders, where: string) {
  if (status === 200) return { skip: at };
  if (status === 206) {
    const start = rangeStart(headers['content-range']);
    if (start === at) return { skip: 0 };
    return {
      error: new WasmOciError(
        'REGISTRY',
        `${where}: asked for the bytes from ${at}, the registry sent ${start === undefined ? 'an unreadable range' : `the bytes from ${start}`}`,
        { hint: 'the registry (or a proxy) mishandles ranged downloads; try again without it' },
      ),
    };
  }
  return undefined;
}

/** The retry state of one download: failures without progress, resumptions, elapsed time. */
class Resumption {
  received = 0;
  private resumes = 0;
  readonly budget;

  constructor(private readonly req: DownloadRequest) {
    this.budget = req.client.budget();
  }

  /** After a failure: waits and returns when another try may start, else throws the failure. */
  async next(err: unknown, progressed: boolean): Promise<void> {
    const { signal, client } = this.req;
    if (signal?.aborted) throw abortError(signal);
    if (!isTransient(err)) throw err;
    const policy = client.retryPolicy;
    const more = progressed
      ? ++this.resumes <= policy.resumes && this.budget.elapsed() < policy.budgetMs
      : this.budget.failed();
    if (!more) {
      const e = err as WasmOciError;
      throw new WasmOciError(
        e.code,
        `${e.message} (downloading ${this.req.where}: ${this.received} of ${this.req.desc.size} bytes after ${this.resumes + 1} tries)`,
        { cause: err, ...(e.hint ? { hint: e.hint } : {}), ...(e.details ? { details: e.details } : {}) },
      );
    }
    // A transfer that was moving resumes at once; one that made no progress backs off.
    if (!progressed) await this.budget.wait(signal);
  }

  /** What each GET of this download carries: the range still missing and the shared retry budget. */
  request() {
    return { headers: this.headers(), budget: this.budget };
  }

  headers(): Record<string, string> {
    return this.received > 0 ? { range: `bytes=${this.received}-` } : {};
  }
}

async function unexpected(req: DownloadRequest, res: HttpResponse): Promise<WasmOciError> {
  return req.client.responseError(res, `get blob ${req.where}`);
}

/**
 * Downloads a blob into a synchronous sink, each byte delivered once and in order however often the
 * transfer is resumed. Errors thrown by the sink (a digest or size mismatch, a full disk) end it.
 */
export async function downloadInto(req: DownloadRequest, sink: BodySink): Promise<void> {
  const state = new Resumption(req);
  for (;;) {
    const at = state.received;
    let skip = 0;
    let refused: WasmOciError | undefined;
    const deliver = (chunk: Buffer) => {
      let piece = chunk;
      if (skip > 0) {
        if (piece.length <= skip) {
          skip -= piece.length;
          return;
        }
        piece = piece.subarray(skip);
        skip = 0;
      }
      const full = sink(piece);
      state.received += piece.length;
      return full;
    };
    // Bytes read into the sink's region arrive there in place (skipped ones make the rest a copy).
    (deliver as BodySink).region = sink.region;
    try {
      const res = await req.client.send({
        method: 'GET',
        url: req.path,
        ...state.request(),
        scopes: req.scopes,
        signal: req.signal,
        followRedirects: true,
        largeBody: true,
        sinkFor: (status, headers) => {
          const check = checkRange(at, status, headers, req.where);
          if (!check) return undefined;
          if ('error' in check) {
            refused = check.error;
            return undefined;
          }
          skip = check.skip;
          return deliver;
        },
      });
      if (refused) {
        res.body.destroy();
        throw refused;
      }
      if (res.status !== 200 && res.status !== 206) throw await unexpected(req, res);
      res.body.resume();
      await finished(res.body);
      if (skip > 0) throw shortWholeAnswer(req, at);
      return;
    } catch (err) {
      await state.next(err, state.received > at);
    }
  }
}

function shortWholeAnswer(req: DownloadRequest, at: number): WasmOciError {
  return new WasmOciError(
    'SIZE_MISMATCH',
    `${req.where}: the registry sent fewer bytes than it had before (${at})`,
    {
      hint: 'the content changed or was truncated in transit; try again',
    },
  );
}

/**
 * The same resumable download as a stream with backpressure (for copies that stream a blob on to
 * another target). Each byte is pushed once and in order.
 */
export function downloadStream(req: DownloadRequest): Readable {
  const state = new Resumption(req);
  let current: Readable | undefined;
  let starting = false;
  let skip = 0;
  const out: Readable = new Readable({
    highWaterMark: 4 * 1024 * 1024,
    read() {
      if (current) current.resume();
      else if (!starting) void start();
    },
    destroy(err, callback) {
      current?.destroy();
      callback(err);
    },
  });

  async function start(): Promise<void> {
    starting = true;
    for (;;) {
      const at = state.received;
      try {
        const res = await req.client.send({
          method: 'GET',
          url: req.path,
          ...state.request(),
          scopes: req.scopes,
          signal: req.signal,
          followRedirects: true,
          largeBody: true,
        });
        if (res.status !== 200 && res.status !== 206) throw await unexpected(req, res);
        const check = checkRange(at, res.status, res.headers, req.where);
        if (check && 'error' in check) {
          res.body.destroy();
          throw check.error;
        }
        skip = check?.skip ?? 0;
        await pump(res.body, at);
        if (skip > 0) throw shortWholeAnswer(req, at);
        out.push(null);
        return;
      } catch (err) {
        current = undefined;
        if (out.destroyed) return;
        try {
          await state.next(err, state.received > at);
        } catch (final) {
          out.destroy(final as Error);
          return;
        }
      }
    }
  }

  /** Moves one answer's body into `out`, pausing it while `out` is full. */
  function pump(body: Readable, _at: number): Promise<void> {
    current = body;
    return new Promise<void>((resolve, reject) => {
      body.on('data', (chunk: Buffer) => {
        let piece = chunk;
        if (skip > 0) {
          if (piece.length <= skip) {
            skip -= piece.length;
            return;
          }
          piece = piece.subarray(skip);
          skip = 0;
        }
        state.received += piece.length;
        if (!out.push(piece)) body.pause();
      });
      body.once('end', resolve);
      body.once('error', reject);
      body.once('close', () => {
        if (!body.readableEnded) reject(body.errored ?? new Error('the download stream closed early'));
      });
    });
  }

  return out;
}
