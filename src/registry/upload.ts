import { read } from 'node:fs';
import { type Readable, Transform } from 'node:stream';
import { abortError, hasCode, WasmOciError } from '../errors.js';
import { Digester } from '../oci/digest.js';
import { discard } from '../transport/body.js';
import { isTransient } from '../transport/errors.js';
import { type FileRange, type HttpBody, type HttpResponse, header, isFileRange } from '../transport/types.js';
import { api } from './api.js';
import type { RegistryClient, UploadScheme } from './client.js';
import { registryCodes } from './errors.js';

/**
 * Blob uploads that survive dropped connections and registries' limits (distribution-spec "Pushing
 * blobs"). Three schemes, tried in this order and remembered per registry for the client's memory:
 *
 * - `stream`: POST, one PATCH with all the bytes, `PUT ?digest=`. One pass over a file whose digest is
 *   not known yet (it is hashed while it is sent); what Distribution takes, and the fastest.
 * - `chunked`: PATCHes of a bounded size with `Content-Range`, each checked against the `Range` the
 *   registry answers, for registries that cap PATCH bodies (416/413/400 on the first one). The chunk
 *   size honours `OCI-Chunk-Min-Length`.
 * - `monolithic`: one `PUT ?digest=` with all the bytes, for registries that refuse PATCH or whose
 *   `Range` stops advancing; a digest not known yet is computed first (a second read).
 *
 * After a failure the session is asked how much arrived (`GET <location>` -> `Range`) and the upload
 * continues from there; a session that is gone (Distribution cancels one whose state no longer matches)
 * is started again. A lost answer to the final PUT is settled by asking whether the blob exists.
 * Bounded by the client's retry policy.
 */

/** The bytes of one blob, as request bodies from any offset (files, memory) or from the start (streams). */
export interface UploadSource {
  /** Bytes in all, when known. */
  readonly size: number | undefined;
  /** `open(offset)` works for any offset; a stream only continues where it is or starts again at 0. */
  readonly seekable: boolean;
  /** `open(0)` works again after a body was sent (bytes, files, and streams that can be reopened). */
  readonly restartable: boolean;
  /** The bytes from `offset` on (`length` of them, or to the end). */
  open(offset: number, length?: number): Promise<HttpBody>;
}

/** Hashes a blob's bytes once and in order, however often parts of it are sent again. */
export class PositionedHash {
  private readonly digester = new Digester();
  /** Bytes hashed so far: the first `position` bytes of the blob. */
  position = 0;
  private result: string | undefined;

  update(chunk: Buffer, at: number): void {
    const end = at + chunk.length;
    if (end <= this.position) return;
    if (at > this.position) throw new WasmOciError('FILE', 'the upload skipped bytes it had not read');
    if (this.result !== undefined)
      throw new WasmOciError('SIZE_MISMATCH', 'the file grew while it was uploaded');
    this.digester.update(at === this.position ? chunk : chunk.subarray(this.position - at));
    this.position = end;
  }

  /** The digest of the bytes hashed so far; asked again (a commit tried once more), the same answer. */
  digest(): string {
    this.result ??= this.digester.digest();
    return this.result;
  }
}

/** A file range as an upload source; `observe` sees each chunk with its offset in the blob. */
export function fileSource(range: FileRange, observe?: (chunk: Buffer, at: number) => void): UploadSource {
  return {
    size: range.length,
    seekable: true,
    restartable: true,
    async open(offset, length) {
      let at = offset;
      return {
        fd: range.fd,
        start: range.start + offset,
        length: length ?? range.length - offset,
        observe: (chunk: Buffer) => {
          range.observe?.(chunk);
          observe?.(chunk, at);
          at += chunk.length;
        },
      };
    },
  };
}

/** Bytes in memory as an upload source. */
export function bytesSource(bytes: Uint8Array): UploadSource {
  return {
    size: bytes.byteLength,
    seekable: true,
    restartable: true,
    async open(offset, length) {
      return bytes.subarray(offset, length === undefined ? undefined : offset + length);
    },
  };
}

/**
 * A stream as an upload source: read once, in order. Chunks are buffered so a failed chunk can be sent
 * again; starting over needs `reopen` (a fresh stream of the same bytes), without it a failure is final.
 */
export function streamSource(
  first: Readable,
  size: number | undefined,
  reopen?: () => Promise<Readable>,
  observe?: (chunk: Buffer, at: number) => void,
): UploadSource {
  let stream: Readable | undefined = first;
  let used = false;
  let position = 0;
  let iterator: AsyncIterator<Buffer> | undefined;
  let leftover: Buffer | undefined;
  let last: { at: number; bytes: Buffer } | undefined;
  const fresh = async (): Promise<Readable> => {
    if (!used && stream) {
      used = true;
      return stream;
    }
    if (!reopen) {
      throw new WasmOciError('NETWORK', 'the upload failed and its source cannot be read again', {
        details: { transient: false },
      });
    }
    stream?.destroy();
    stream = await reopen();
    return stream;
  };
  /** A pass-through that shows each chunk to `observe` (a 'data' listener would start the flow early). */
  const tap = (source: Readable, start: number): Readable => {
    if (!observe) return source;
    let at = start;
    const through = new Transform({
      highWaterMark: 1024 * 1024,
      transform(chunk: Buffer, _encoding, callback) {
        try {
          observe(chunk, at);
        } catch (err) {
          callback(err as Error);
          return;
        }
        at += chunk.length;
        callback(null, chunk);
      },
    });
    source.on('error', (err) => through.destroy(err));
    return source.pipe(through);
  };
  return {
    size,
    seekable: false,
    restartable: reopen !== undefined,
    async open(offset, length) {
      if (length === undefined) {
        if (offset !== 0) throw new WasmOciError('NETWORK', 'a stream upload can only start again from 0');
        iterator = undefined;
        leftover = undefined;
        position = 0;
        return tap(await fresh(), 0);
      }
      if (last && last.at === offset) return last.bytes;
      if (offset === 0 && position !== 0) {
        iterator = undefined;
        leftover = undefined;
        position = 0;
        await fresh();
      }
      if (offset !== position) throw new WasmOciError('NETWORK', 'a stream upload cannot skip or go back');
      if (!iterator) {
        if (!used) await fresh();
        iterator = (stream as Readable)[Symbol.asyncIterator]();
      }
      const parts: Buffer[] = [];
      let have = 0;
      while (have < length) {
        let piece = leftover;
        leftover = undefined;
        if (!piece) {
          const next = await iterator.next();
          if (next.done) break;
          piece = next.value;
        }
        if (have + piece.length > length) {
          leftover = piece.subarray(length - have);
          piece = piece.subarray(0, length - have);
        }
        observe?.(piece, position + have);
        parts.push(piece);
        have += piece.length;
      }
      const bytes = Buffer.concat(parts, have);
      position += have;
      last = { at: offset, bytes };
      return bytes;
    },
  };
}

export interface UploadRequest {
  client: RegistryClient;
  name: string;
  scopes: readonly string[];
  signal?: AbortSignal | undefined;
  /** Names the repository in errors. */
  where: string;
  /** Largest PATCH body of the chunked scheme (default 4 MiB; `OCI-Chunk-Min-Length` may raise it). */
  maxChunkBytes?: number | undefined;
}

export interface UploadTarget {
  /** The digest when known in advance; else `hash` yields it once every byte went through. */
  digest?: string | undefined;
  hash?: PositionedHash | undefined;
  size?: number | undefined;
}

export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Answers to a first PATCH that refuse the way the bytes are sent, not the bytes: a body too large
 * (416 with a cap, 413), a PATCH the registry does not take (400, 405, 501).
 */
const REFUSED = new Set([400, 405, 413, 416, 501]);

/** The registry refused the way we sent the bytes (not the bytes): try the next scheme. */
class SchemeRefused extends Error {}

interface Session {
  location: URL;
  minChunk: number;
}

function location(res: HttpResponse, registry: string): URL {
  const value = header(res, 'location');
  if (!value) throw new WasmOciError('REGISTRY', `${registry} sent no upload Location`);
  let url: URL;
  try {
    url = new URL(value, res.url);
  } catch {
    throw new WasmOciError('REGISTRY', `${registry} sent a malformed upload Location`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new WasmOciError('REGISTRY', `${registry} sent an upload Location that is not http(s)`);
  }
  return url;
}

/** The end of a `Range: 0-<end>` answer, as the count of bytes the session holds. */
function heldBytes(res: HttpResponse): number | undefined {
  const match = /^\s*(?:bytes[ =])?0-(\d+)\s*$/i.exec(header(res, 'range') ?? '');
  if (!match) return undefined;
  // Distribution answers 0-0 for an empty session as for a one-byte one: count it as empty (a
  // wrong guess fails the commit's digest check, and the upload starts again).
  const end = Number(match[1]);
  return end === 0 ? 0 : end + 1;
}

/** Blobs whose digest is known and that are at most this big go up in one request where they can. */
const SINGLE_POST_MAX = 8 * 1024 * 1024;

/** A try that sent this much before failing made progress. */
const PROGRESS_BYTES = 1024 * 1024;

/** The same source, reporting how many bytes each body it opens sends (as they are read). */
function counted(source: UploadSource, moved: (n: number) => void): UploadSource {
  return {
    size: source.size,
    seekable: source.seekable,
    restartable: source.restartable,
    async open(offset, length) {
      const body = await source.open(offset, length);
      if (body instanceof Uint8Array) {
        moved(body.byteLength);
        return body;
      }
      if (isFileRange(body)) {
        const { observe } = body;
        return {
          ...body,
          observe: (chunk: Buffer) => {
            observe?.(chunk);
            moved(chunk.length);
          },
        };
      }
      const through = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          moved(chunk.length);
          callback(null, chunk);
        },
      });
      body.on('error', (err) => through.destroy(err));
      return body.pipe(through);
    },
  };
}

/** The length of a body, when it has one. */
function bodyLength(body: HttpBody): number | undefined {
  if (body instanceof Uint8Array) return body.byteLength;
  if (isFileRange(body)) return body.length;
  return undefined;
}

/** Uploads a blob; returns its digest and size as the registry accepted them. */
export async function uploadBlob(
  req: UploadRequest,
  given: UploadSource,
  target: UploadTarget,
): Promise<{ digest: string; size: number }> {
  const { client } = req;
  // Bytes read for sending: a try that moved a good part of the blob before it failed counts as
  // progress (a resumption), not as one of the few tries a dead connection gets.
  let sent = 0;
  const source = counted(given, (n) => {
    sent += n;
  });
  let sentBefore = 0;
  let resumes = 0;
  const key = client.registry;
  const budget = client.budget();
  let scheme: UploadScheme = client.memory.uploads.get(key) ?? 'stream';
  let session: Session | undefined;
  let offset = 0;
  let committing: string | undefined;
  /** The upload went on from the byte count the registry reported after a lost connection. */
  let resumed = false;
  /**
   * The registry's count was not to be trusted: the content it assembled did not hash to the digest
   * (Distribution can report bytes of a dropped PATCH it did not keep in order). From then on, a lost
   * connection starts the blob over in a new session.
   */
  let distrust = false;
  const size = target.size ?? source.size;
  const digestNow = async (): Promise<string> => {
    if (target.digest) return target.digest;
    const hash = target.hash as PositionedHash;
    if (size !== undefined && hash.position < size) {
      // The digest is needed before the bytes go (monolithic): read the rest once to hash it.
      await drain(await source.open(hash.position), req.signal);
    }
    if (size !== undefined && hash.position !== size) {
      throw new WasmOciError('SIZE_MISMATCH', `expected ${size} bytes, read ${hash.position}`, {
        hint: 'the file changed while it was read',
      });
    }
    return hash.digest();
  };
  /** An unexpected answer; a server-side hiccup (408, 429, 5xx) is worth another try. */
  const failure = async (res: HttpResponse, what: string): Promise<WasmOciError> => {
    const err = await client.responseError(res, what);
    // The session is gone (Distribution cancels one whose state no longer matches what it holds, as
    // after a dropped PATCH): another try starts a new one.
    const codes = registryCodes(err);
    const gone = codes.includes('BLOB_UPLOAD_INVALID') || codes.includes('BLOB_UPLOAD_UNKNOWN');
    if (!gone && res.status !== 408 && res.status !== 429 && res.status < 500) return err;
    return new WasmOciError(err.code, err.message, {
      status: err.status,
      ...(err.hint ? { hint: err.hint } : {}),
      details: { ...(err.details ?? {}), transient: true },
    });
  };
  const send = (init: Omit<Parameters<RegistryClient['send']>[0], 'scopes'>) =>
    client.send({ scopes: req.scopes, signal: req.signal, retry: false, ...init });

  const start = async (): Promise<Session> => {
    const res = await client.expect(
      { method: 'POST', url: api.uploads(req.name), scopes: req.scopes, signal: req.signal },
      [202],
      `start upload to ${req.where}`,
    );
    await discard(res.body);
    const min = Number(header(res, 'oci-chunk-min-length'));
    return {
      location: location(res, client.registry),
      minChunk: Number.isSafeInteger(min) && min > 0 ? min : 0,
    };
  };

  /** One PATCH of `body`, which holds the bytes from `from`; returns the count the session holds. */
  const patch = async (s: Session, from: number, body: HttpBody, first: boolean): Promise<number> => {
    const count = bodyLength(body) ?? (size !== undefined ? size - from : undefined);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (count !== undefined) {
      headers['content-length'] = String(count);
      if (count > 0) headers['content-range'] = `${from}-${from + count - 1}`;
    }
    const res = await send({ method: 'PATCH', url: s.location, headers, body });
    if (res.status === 202) {
      await discard(res.body);
      s.location = location(res, client.registry);
      return heldBytes(res) ?? from + (count ?? 0);
    }
    if (first && REFUSED.has(res.status)) {
      await discard(res.body);
      throw new SchemeRefused(`PATCH refused with ${res.status}`);
    }
    throw await failure(res, `upload to ${req.where}`);
  };

  /** The chunked scheme: bounded PATCHes, each checked against the Range the registry answers. */
  const chunks = async (s: Session): Promise<void> => {
    const chunk = Math.max(s.minChunk, req.maxChunkBytes ?? DEFAULT_CHUNK_BYTES);
    let stalls = 0;
    while (size === undefined || offset < size) {
      const want = size === undefined ? chunk : Math.min(chunk, size - offset);
      const body = await source.open(offset, want);
      const length = bodyLength(body) ?? want;
      if (length === 0 && offset > 0) return;
      const before = offset;
      const held = await patch(s, offset, body, offset === 0);
      if (held <= before) {
        // The registry's Range did not move: it does not take chunks after all.
        if (++stalls >= 2) throw new SchemeRefused('the upload Range stopped advancing');
        continue;
      }
      stalls = 0;
      offset = Math.min(held, before + length);
      if (offset < before + length && !source.seekable) {
        throw new WasmOciError(
          'REGISTRY',
          `${req.where} kept part of a chunk; a stream cannot go on from there`,
          {
            details: { transient: true },
          },
        );
      }
      if (size === undefined && length < want) return;
    }
  };

  const commit = async (s: Session, digest: string): Promise<void> => {
    const url = new URL(s.location);
    url.searchParams.set('digest', digest);
    committing = digest;
    const res = await send({ method: 'PUT', url });
    if (res.status !== 201) {
      const err = await failure(res, `commit upload to ${req.where}`);
      // Our digest is the content's (hashed once, in order); a resumed session that holds something
      // else is the registry's mistake: once more from the start, in a new session.
      if (resumed && !distrust && registryCodes(err).includes('DIGEST_INVALID')) {
        distrust = true;
        throw new WasmOciError(err.code, err.message, {
          status: err.status,
          details: { ...(err.details ?? {}), transient: true },
        });
      }
      throw err;
    }
    await discard(res.body);
  };

  /**
   * One request for a blob whose digest is known and whose bytes can be read again (a stream without
   * `reopen` would be used up if the registry ignored them) (`POST ?digest=` with the bytes): true when the
   * registry stored it. A registry that answers 202 (it opened a session and ignored the bytes) keeps
   * that session for the PUT; one that refuses the form is remembered and gets POST + PUT from then on.
   */
  const singlePost = async (digest: string): Promise<boolean> => {
    const body = await source.open(0);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    const length = bodyLength(body) ?? size;
    if (length !== undefined) headers['content-length'] = String(length);
    committing = digest;
    const url = `${api.uploads(req.name)}?digest=${encodeURIComponent(digest)}`;
    const res = await send({ method: 'POST', url, headers, body });
    if (res.status === 201) {
      await discard(res.body);
      offset = length ?? 0;
      return true;
    }
    committing = undefined;
    if (res.status === 202) {
      await discard(res.body);
      client.memory.noSinglePost.add(key);
      session = { location: location(res, client.registry), minChunk: 0 };
      return false;
    }
    if (REFUSED.has(res.status) || res.status === 404) {
      await discard(res.body);
      client.memory.noSinglePost.add(key);
      return false;
    }
    throw await failure(res, `upload blob ${digest} to ${req.where}`);
  };

  const monolithic = async (): Promise<void> => {
    const digest = await digestNow();
    if (
      directPut &&
      !session &&
      source.restartable &&
      size !== undefined &&
      size <= SINGLE_POST_MAX &&
      !client.memory.noSinglePost.has(key) &&
      (await singlePost(digest))
    )
      return;
    const s = session ?? (await start());
    session = s;
    const url = new URL(s.location);
    url.searchParams.set('digest', digest);
    const body = await source.open(0);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    const length = bodyLength(body) ?? size;
    if (length !== undefined) headers['content-length'] = String(length);
    committing = digest;
    const res = await send({ method: 'PUT', url, headers, body });
    if (res.status !== 201) throw await failure(res, `upload blob ${digest} to ${req.where}`);
    await discard(res.body);
    offset = length ?? 0;
  };

  // Bytes whose digest is known go up in one PUT (two requests in all); a stream is opened afresh for
  // another try. Only content hashed while it is sent needs a PATCH.
  const directPut = target.digest !== undefined;
  for (;;) {
    try {
      if (scheme === 'monolithic' || directPut) {
        await monolithic();
        return { digest: committing as string, size: size ?? offset };
      }
      session ??= await start();
      if (scheme === 'stream') {
        const from = offset;
        const body = await source.open(offset);
        offset = await patch(session, offset, body, offset === 0);
        // The whole rest went in one PATCH: a Range saying otherwise (ECR's, when it stops advancing)
        // cannot be trusted to continue from; chunks, then one PUT, are tried instead.
        if (size !== undefined && offset !== size && from === 0)
          throw new SchemeRefused('the upload Range is short');
      } else await chunks(session);
      if (size !== undefined && offset !== size) {
        throw new WasmOciError('REGISTRY', `${req.where} holds ${offset} of ${size} bytes after the upload`, {
          details: { transient: true },
        });
      }
      await commit(session, await digestNow());
      return { digest: committing as string, size: size ?? offset };
    } catch (err) {
      if (err instanceof SchemeRefused) {
        if (session) await cancel(req, session);
        session = undefined;
        offset = 0;
        committing = undefined;
        scheme = scheme === 'stream' ? 'chunked' : 'monolithic';
        client.memory.uploads.set(key, scheme);
        continue;
      }
      if (req.signal?.aborted) throw abortError(req.signal);
      // Progress is a connection lost after moving a good part of the blob; an answer refusing it
      // (a 503 after the body) is a failed try however much was sent.
      const progressed = (err as WasmOciError).status === undefined && sent - sentBefore >= PROGRESS_BYTES;
      sentBefore = sent;
      const again = progressed
        ? ++resumes <= client.retryPolicy.resumes && budget.elapsed() < client.retryPolicy.budgetMs
        : budget.failed();
      if (!isTransient(err) || !again) {
        if (session) await cancel(req, session);
        throw err;
      }
      if (!progressed) await budget.wait(req.signal);
      if (committing && (await exists(req, committing, size))) {
        return { digest: committing, size: size ?? offset };
      }
      committing = undefined;
      const held =
        session && !directPut && scheme !== 'monolithic' && !distrust
          ? await status(req, session)
          : undefined;
      if (held === undefined || (held > 0 && !source.seekable)) {
        if (session) await cancel(req, session);
        session = undefined;
        offset = 0;
      } else {
        offset = held;
        if (held > 0) resumed = true;
      }
    }
  }
}

/** `GET <location>`: how many bytes the session holds, or undefined when it is gone. */
async function status(req: UploadRequest, session: Session): Promise<number | undefined> {
  try {
    const res = await req.client.send({
      method: 'GET',
      url: session.location,
      scopes: req.scopes,
      signal: req.signal,
    });
    await discard(res.body);
    if (res.status !== 204 && res.status !== 200) return undefined;
    const next = header(res, 'location');
    if (next) session.location = location(res, req.client.registry);
    return heldBytes(res) ?? 0;
  } catch (err) {
    if (hasCode(err, 'ABORTED')) throw err;
    return undefined;
  }
}

/** Whether the registry has the blob (settles a commit whose answer was lost). */
async function exists(req: UploadRequest, digest: string, size: number | undefined): Promise<boolean> {
  try {
    const res = await req.client.send({
      method: 'HEAD',
      url: api.blob(req.name, digest),
      scopes: req.scopes,
      signal: req.signal,
    });
    await discard(res.body);
    if (res.status !== 200) return false;
    const length = Number(header(res, 'content-length'));
    return size === undefined || !Number.isSafeInteger(length) || length === size;
  } catch (err) {
    if (hasCode(err, 'ABORTED')) throw err;
    return false;
  }
}

/** Best effort: registries purge abandoned uploads on their own. */
export async function cancel(req: UploadRequest, session: Session | { location: URL }): Promise<void> {
  try {
    const url = new URL(session.location);
    url.searchParams.delete('digest');
    const res = await req.client.send({ method: 'DELETE', url, scopes: req.scopes });
    await discard(res.body);
  } catch {
    // Nothing to do: the upload is abandoned either way.
  }
}

/** Reads a body to its end (to hash what it holds). */
async function drain(body: HttpBody, signal: AbortSignal | undefined): Promise<void> {
  if (body instanceof Uint8Array) return;
  if (isFileRange(body)) return readRange(body, signal);
  for await (const _ of body as Readable) {
    if (signal?.aborted) throw abortError(signal);
  }
}

/** Reads a file range through its observer (hashing), without sending it anywhere. */
async function readRange(range: FileRange, signal: AbortSignal | undefined): Promise<void> {
  const buffer = Buffer.allocUnsafe(1024 * 1024);
  let position = range.start;
  let left = range.length;
  while (left > 0) {
    if (signal?.aborted) throw abortError(signal);
    const n = await new Promise<number>((resolve, reject) =>
      read(range.fd, buffer, 0, Math.min(buffer.length, left), position, (err, bytes) =>
        err ? reject(err) : resolve(bytes),
      ),
    );
    if (n === 0) throw new WasmOciError('FILE', 'the file to upload is shorter than expected');
    range.observe?.(buffer.subarray(0, n));
    position += n;
    left -= n;
  }
}
