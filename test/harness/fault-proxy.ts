import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import { mulberry32 } from './fuzz.js';

/**
 * A byte-transparent, fault-injecting TCP proxy in front of the real registry, on 127.0.0.1 and a free
 * port. Bytes are forwarded unchanged in both directions; the proxy parses just enough HTTP/1.1 to know
 * which request is current on each connection (requests on one keep-alive connection are sequential,
 * a FIFO also copes with pipelining) and where request and response bodies start and end
 * (Content-Length, chunked, no body for HEAD/1xx/204/304, else until the connection closes).
 *
 * Each request is classified (`kind`) and `plan` may give it one fault:
 *
 * - `cut`: forward `at` body bytes of that side (0 = right after the head, -1 = before the head), then
 *   destroy both sockets (`reset`: TCP RST via `resetAndDestroy()`, sent 25 ms after the last byte so
 *   the peer has read it; a RST landing on unread data reads as a plain EOF on Linux) or end both
 *   cleanly (`close`: FIN). Nothing more is forwarded either way.
 * - `lose-answer`: the whole request goes upstream and the registry answers, but the client's
 *   connection is reset before any byte of that answer reaches it.
 * - `stall`: stop forwarding that side at `at` for `ms` (without `ms`: until a socket closes).
 * - `drip`: from `at` to the end of that message, forward `bytes` bytes, then wait `everyMs`, and so on
 *   (the first slice goes at once).
 *
 * Offsets count every byte after the blank line of the head, chunk framing included for chunked
 * bodies. An offset may be a function of the body size (Content-Length, `undefined` when chunked or
 * delimited by close, 0 without a body), resolved when that message's head passes. When a message
 * ends before `at`, `cut` and `stall` apply at its end (a cut there lets the whole message through
 * and then drops the connection).
 *
 * TLS (`tls: true`): the client speaks TLS to the registry through the proxy, so nothing can be
 * parsed. Then `plan` is called once per connection with `kind: 'connection'` (method and path empty)
 * and only connection-level faults work: `cut`, `stall` and `drip` at raw byte offsets on the stream,
 * counted from the first byte of that side of the connection (`side: 'response'`: from the first
 * byte the registry sends, TLS handshake included; -1 behaves as 0), and `lose-answer` drops the client
 * when the first response byte arrives. Faults beyond the end of a raw stream are not applied. One
 * event per connection is recorded, its `bodyBytes` being the raw bytes delivered to the client.
 */

export type RequestKind =
  | 'manifest-get'
  | 'manifest-head'
  | 'blob-get'
  | 'blob-head'
  | 'upload-post'
  | 'upload-patch'
  | 'upload-put'
  | 'manifest-put'
  | 'tags'
  | 'token'
  | 'other';

export type PlanKind = RequestKind | 'connection';

export type Side = 'response' | 'request';

/** A body byte offset, or a function of the body size (known from the message head) giving one. */
export type Offset = number | ((bodySize: number | undefined) => number);

export type Fault<At = Offset> =
  | { type: 'cut'; side: Side; at: At; how: 'reset' | 'close' }
  | { type: 'lose-answer' }
  | { type: 'stall'; side: Side; at: At; ms?: number }
  | { type: 'drip'; side: Side; at: At; bytes: number; everyMs: number };

export type FaultType = Fault['type'];

export interface PlannedRequest {
  kind: PlanKind;
  method: string;
  /** The path without the query. */
  path: string;
  /** The request target as sent (path and query). */
  target: string;
  /** 1-based count of requests of this kind (per proxy). */
  n: number;
  /** 1-based count of all requests (per proxy). */
  index: number;
  /** Request headers, names lower-case, repeated headers joined by ", ". */
  headers: Record<string, string>;
  /** The request body size from Content-Length (undefined when chunked or absent). */
  contentLength?: number;
}

export type Plan = (request: PlannedRequest) => Fault | undefined;

export interface FaultEvent {
  kind: PlanKind;
  method: string;
  path: string;
  /** Status of the answer as the registry sent it (undefined when none came back). */
  status?: number;
  /** The fault planned for this request, if any. */
  fault?: Fault;
  /** Its offset, once resolved (when the head of the message it applies to passed). */
  faultAt?: number;
  /** Whether the fault was actually applied. */
  faultApplied: boolean;
  /** Response body bytes delivered to the client (in TLS mode: raw bytes). */
  bodyBytes: number;
  /** Request body bytes delivered to the registry (in TLS mode: raw bytes). */
  requestBodyBytes: number;
}

export interface FaultCounts {
  total: number;
  byType: Partial<Record<FaultType, number>>;
  byKind: Partial<Record<PlanKind, number>>;
}

export interface FaultyProxyOptions {
  plan?: Plan;
  /** The client speaks TLS through the proxy: only connection-level faults, see the module comment. */
  tls?: boolean;
}

export interface FaultyProxy {
  /** `127.0.0.1:<port>` */
  host: string;
  events: FaultEvent[];
  /** Faults actually applied. */
  faults(): FaultCounts;
  /** Client connections accepted so far. */
  connections(): number;
  /** Errors thrown by `plan` (the connection is dropped then). */
  errors: unknown[];
  stop(): Promise<void>;
}

const HEAD_LIMIT = 64 * 1024;
const DEFAULT_MAX_OFFSET = 64 * 1024;
/** How long a `reset` waits after the last forwarded byte before sending the RST. */
const RESET_DELAY_MS = 25;

/** Classifies a request by method and path (`/v2/<name>/manifests/<ref>` and so on). */
export function classify(method: string, path: string): RequestKind {
  if (!path.startsWith('/v2/')) return /(^|\/)token$/.test(path) ? 'token' : 'other';
  if (/^\/v2\/.+\/blobs\/uploads(\/.*)?$/.test(path)) {
    if (method === 'POST') return 'upload-post';
    if (method === 'PATCH') return 'upload-patch';
    if (method === 'PUT') return 'upload-put';
    return 'other';
  }
  if (/^\/v2\/.+\/manifests\/[^/]+$/.test(path)) {
    if (method === 'GET') return 'manifest-get';
    if (method === 'HEAD') return 'manifest-head';
    if (method === 'PUT') return 'manifest-put';
    return 'other';
  }
  if (/^\/v2\/.+\/blobs\/[^/]+$/.test(path)) {
    if (method === 'GET') return 'blob-get';
    if (method === 'HEAD') return 'blob-head';
    return 'other';
  }
  if (/^\/v2\/.+\/tags\/list$/.test(path)) return 'tags';
  return 'other';
}

export { mulberry32 };

export interface RandomCutsOptions {
  seed: number;
  kinds: PlanKind[];
  /** Fraction of the matching requests to cut, 0..1. */
  probability: number;
  /** Upper bound for offsets (and the bound when the body size is unknown; default 64 KiB). */
  maxOffset?: number;
  /** Which side to cut; default: the request for uploads and manifest PUTs, else the response. */
  side?: Side;
  /** Stop cutting after this many cuts. */
  max?: number;
}

const SENDS_BODY = new Set<PlanKind>(['upload-patch', 'upload-put', 'manifest-put']);

/**
 * A plan cutting a pseudo-random fraction of the requests of `kinds` at pseudo-random offsets in
 * [0, size) when the body size is known (bounded by `maxOffset`), alternating reset and close. The same
 * seed and the same sequence of requests give the same cuts.
 */
export function randomCuts(options: RandomCutsOptions): Plan {
  const rand = mulberry32(options.seed);
  let cuts = 0;
  return (request) => {
    if (!options.kinds.includes(request.kind)) return undefined;
    if (options.max !== undefined && cuts >= options.max) return undefined;
    if (rand() >= options.probability) return undefined;
    const fraction = rand();
    const side = options.side ?? (SENDS_BODY.has(request.kind) ? 'request' : 'response');
    const how = cuts++ % 2 === 0 ? 'reset' : 'close';
    const at = (size: number | undefined) => {
      const bound = Math.min(
        size ?? options.maxOffset ?? DEFAULT_MAX_OFFSET,
        options.maxOffset ?? Number.MAX_SAFE_INTEGER,
      );
      return Math.floor(fraction * Math.max(bound, 0));
    };
    return { type: 'cut', side, how, at };
  };
}

type Framing = { type: 'none' } | { type: 'length'; n: number } | { type: 'chunked' } | { type: 'close' };

/** One message (a request or a response) on one side, with the fault that applies to it. */
interface Msg {
  event: FaultEvent;
  side: Side;
  fault?: Exclude<Fault, { type: 'lose-answer' }>;
  at: number;
  loseAnswer: boolean;
  triggered: boolean;
  dripping: boolean;
  sliceLeft: number;
  slices: number;
}

interface Piece {
  kind: 'head' | 'body' | 'end' | 'eof';
  data: Buffer;
  msg: Msg | undefined;
  offset: number;
}

const EMPTY = Buffer.alloc(0);

/** Counts the bytes of a chunked body, framing included, up to the end of its trailers. */
class ChunkedCounter {
  private state: 'size' | 'data' | 'data-crlf' | 'trailer' = 'size';
  private line = '';
  private left = 0;
  bad = false;

  /** How many bytes of `buf` belong to the body, and whether the body ended there. */
  consume(buf: Buffer): [number, boolean] {
    let i = 0;
    while (i < buf.length) {
      if (this.state === 'data') {
        const take = Math.min(this.left, buf.length - i);
        i += take;
        this.left -= take;
        if (this.left === 0) {
          this.state = 'data-crlf';
          this.line = '';
        }
        continue;
      }
      const b = buf[i++] as number;
      if (b !== 0x0a) {
        if (this.line.length < 4096) this.line += String.fromCharCode(b);
        continue;
      }
      const line = this.line.replace(/\r$/, '');
      this.line = '';
      if (this.state === 'size') {
        const size = Number.parseInt((line.split(';')[0] ?? '').trim(), 16);
        if (Number.isNaN(size)) {
          this.bad = true;
          return [buf.length, true];
        }
        if (size === 0) this.state = 'trailer';
        else {
          this.left = size;
          this.state = 'data';
        }
      } else if (this.state === 'data-crlf') {
        this.state = 'size';
      } else if (line === '') {
        return [i, true];
      }
    }
    return [i, false];
  }
}

interface HeadInfo {
  msg: Msg | undefined;
  framing: Framing;
}

/** Splits one direction of a connection into message heads, body pieces and message ends. */
class Framer {
  private state: 'head' | 'length' | 'chunked' | 'close' | 'raw' = 'head';
  private pendingHead: Buffer = EMPTY;
  private remaining = 0;
  private chunked = new ChunkedCounter();
  private msg: Msg | undefined;
  private offset = 0;

  constructor(
    private readonly onHead: (head: Buffer) => HeadInfo,
    raw?: Msg,
  ) {
    if (raw) {
      this.state = 'raw';
      this.msg = raw;
    }
  }

  feed(chunk: Buffer): Piece[] {
    const out: Piece[] = [];
    let buf = chunk;
    while (buf.length > 0) {
      switch (this.state) {
        case 'head': {
          const joined = this.pendingHead.length ? Buffer.concat([this.pendingHead, buf]) : buf;
          const end = joined.indexOf('\r\n\r\n');
          if (end < 0) {
            if (joined.length > HEAD_LIMIT) {
              this.state = 'raw';
              this.msg = undefined;
              this.pendingHead = EMPTY;
              buf = joined;
            } else {
              this.pendingHead = joined;
              buf = EMPTY;
            }
            break;
          }
          const head = joined.subarray(0, end + 4);
          buf = joined.subarray(end + 4);
          this.pendingHead = EMPTY;
          const { msg, framing } = this.onHead(head);
          out.push({ kind: 'head', data: head, msg, offset: -1 });
          this.msg = msg;
          this.offset = 0;
          if (framing.type === 'none' || (framing.type === 'length' && framing.n === 0)) {
            out.push({ kind: 'end', data: EMPTY, msg, offset: 0 });
          } else if (framing.type === 'length') {
            this.state = 'length';
            this.remaining = framing.n;
          } else if (framing.type === 'chunked') {
            this.state = 'chunked';
            this.chunked = new ChunkedCounter();
          } else {
            this.state = 'close';
          }
          break;
        }
        case 'length': {
          const take = Math.min(this.remaining, buf.length);
          out.push({ kind: 'body', data: buf.subarray(0, take), msg: this.msg, offset: this.offset });
          this.offset += take;
          this.remaining -= take;
          buf = buf.subarray(take);
          if (this.remaining === 0) {
            out.push({ kind: 'end', data: EMPTY, msg: this.msg, offset: this.offset });
            this.state = 'head';
          }
          break;
        }
        case 'chunked': {
          const [take, done] = this.chunked.consume(buf);
          out.push({ kind: 'body', data: buf.subarray(0, take), msg: this.msg, offset: this.offset });
          this.offset += take;
          buf = buf.subarray(take);
          if (this.chunked.bad) {
            this.state = 'raw';
            this.msg = undefined;
          } else if (done) {
            out.push({ kind: 'end', data: EMPTY, msg: this.msg, offset: this.offset });
            this.state = 'head';
          }
          break;
        }
        case 'close':
        case 'raw': {
          out.push({ kind: 'body', data: buf, msg: this.msg, offset: this.offset });
          this.offset += buf.length;
          buf = EMPTY;
          break;
        }
      }
    }
    return out;
  }

  /** The source ended: a body delimited by the close ends here. */
  eof(): Piece[] {
    const out: Piece[] = [];
    if (this.state === 'close') out.push({ kind: 'end', data: EMPTY, msg: this.msg, offset: this.offset });
    out.push({ kind: 'eof', data: EMPTY, msg: undefined, offset: this.offset });
    return out;
  }
}

function parseHead(head: Buffer): { line: string; headers: Record<string, string> } {
  const lines = head.toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const colon = l.indexOf(':');
    if (colon <= 0) continue;
    const name = l.slice(0, colon).trim().toLowerCase();
    const value = l.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { line: lines[0] ?? '', headers };
}

function bodyFraming(headers: Record<string, string>): Framing {
  if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) return { type: 'chunked' };
  const length = headers['content-length'];
  if (length !== undefined && /^\d+$/.test(length)) return { type: 'length', n: Number(length) };
  return { type: 'none' };
}

function sizeOf(framing: Framing): number | undefined {
  if (framing.type === 'none') return 0;
  if (framing.type === 'length') return framing.n;
  return undefined;
}

function resolveAt(at: Offset, size: number | undefined): number {
  return typeof at === 'function' ? at(size) : at;
}

interface Shared {
  plan: Plan | undefined;
  events: FaultEvent[];
  counts: FaultCounts;
  perKind: Map<string, number>;
  index: number;
  errors: unknown[];
}

function newMsg(event: FaultEvent, side: Side): Msg {
  return {
    event,
    side,
    at: 0,
    loseAnswer: false,
    triggered: false,
    dripping: false,
    sliceLeft: 0,
    slices: 0,
  };
}

/** Attaches the fault of `event` to `msg` when it is for that side, resolving its offset. */
function arm(msg: Msg, size: number | undefined): void {
  const fault = msg.event.fault;
  if (!fault) return;
  if (fault.type === 'lose-answer') {
    if (msg.side === 'response') msg.loseAnswer = true;
    return;
  }
  if (fault.side !== msg.side) return;
  msg.fault = fault;
  msg.at = resolveAt(fault.at, size);
  msg.event.faultAt = msg.at;
}

class Connection {
  dead = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Resets waiting for the peer to read the last bytes (see kill). */
  private readonly lingering = new Set<NodeJS.Timeout>();
  private readonly waiters = new Set<() => void>();
  private readonly pending: FaultEvent[] = [];
  private readonly pendingMethods: string[] = [];

  constructor(
    readonly client: net.Socket,
    readonly upstream: net.Socket,
    private readonly shared: Shared,
    tls: boolean,
  ) {
    let up: Framer;
    let down: Framer;
    if (tls) {
      const event = this.plan('connection', '', '', {});
      const reqMsg = newMsg(event, 'request');
      const resMsg = newMsg(event, 'response');
      arm(reqMsg, undefined);
      arm(resMsg, undefined);
      if (reqMsg.fault && reqMsg.at < 0) reqMsg.at = 0;
      if (resMsg.fault && resMsg.at < 0) resMsg.at = 0;
      up = new Framer(() => ({ msg: undefined, framing: { type: 'none' } }), reqMsg);
      down = new Framer(() => ({ msg: undefined, framing: { type: 'none' } }), resMsg);
    } else {
      up = new Framer((head) => this.onRequestHead(head));
      down = new Framer((head) => this.onResponseHead(head));
    }
    this.pump(client, upstream, up);
    this.pump(upstream, client, down);
    client.on('error', () => {});
    upstream.on('error', () => {});
    // Once the client is gone there is nobody left to deliver to (a stall waits for this).
    client.on('close', () => this.kill('destroy'));
    // The registry closing cleanly lets the answer drain to the client first (its eof piece then
    // ends the client's side); a reset takes the connection down at once.
    upstream.on('close', (hadError) => {
      if (hadError || !upstream.readableEnded) this.kill('destroy');
    });
  }

  private plan(kind: PlanKind, method: string, target: string, headers: Record<string, string>): FaultEvent {
    const sh = this.shared;
    const path = target.split('?')[0] ?? target;
    const n = (sh.perKind.get(kind) ?? 0) + 1;
    sh.perKind.set(kind, n);
    sh.index += 1;
    const lengthHeader = headers['content-length'];
    const contentLength =
      lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
    let fault: Fault | undefined;
    try {
      fault = sh.plan?.({ kind, method, path, target, n, index: sh.index, headers, contentLength });
    } catch (err) {
      sh.errors.push(err);
      queueMicrotask(() => this.kill('destroy'));
    }
    const event: FaultEvent = {
      kind,
      method,
      path,
      faultApplied: false,
      bodyBytes: 0,
      requestBodyBytes: 0,
      ...(fault ? { fault } : {}),
    };
    sh.events.push(event);
    return event;
  }

  private onRequestHead(head: Buffer): HeadInfo {
    const { line, headers } = parseHead(head);
    const [method = '', target = ''] = line.split(' ');
    const path = target.split('?')[0] ?? target;
    const event = this.plan(classify(method, path), method, target, headers);
    this.pending.push(event);
    this.pendingMethods.push(method);
    const framing = bodyFraming(headers);
    const msg = newMsg(event, 'request');
    arm(msg, sizeOf(framing));
    return { msg, framing };
  }

  private onResponseHead(head: Buffer): HeadInfo {
    const { line, headers } = parseHead(head);
    const status = Number(line.split(' ')[1]);
    if (status >= 100 && status < 200 && status !== 101) return { msg: undefined, framing: { type: 'none' } };
    const event = this.pending.shift();
    const method = this.pendingMethods.shift() ?? '';
    let framing: Framing;
    if (status === 101) framing = { type: 'close' };
    else if (method === 'HEAD' || status === 204 || status === 304) framing = { type: 'none' };
    else {
      framing = bodyFraming(headers);
      if (framing.type === 'none') framing = { type: 'close' };
    }
    if (!event) return { msg: undefined, framing };
    event.status = status;
    const msg = newMsg(event, 'response');
    arm(msg, sizeOf(framing));
    return { msg, framing };
  }

  private pump(src: net.Socket, dst: net.Socket, framer: Framer): void {
    const queue: Piece[] = [];
    let running = false;
    const run = async () => {
      running = true;
      while (queue.length > 0 && !this.dead) {
        const piece = queue.shift() as Piece;
        await this.handle(piece, src, dst);
      }
      running = false;
      if (!this.dead && src.isPaused()) src.resume();
    };
    const push = (pieces: Piece[]) => {
      if (this.dead) return;
      queue.push(...pieces);
      if (!running) void run();
    };
    src.on('data', (chunk: Buffer) => push(framer.feed(chunk)));
    src.on('end', () => push(framer.eof()));
  }

  private async write(piece: Piece, data: Buffer, src: net.Socket, dst: net.Socket): Promise<void> {
    if (this.dead || data.length === 0) return;
    const msg = piece.msg;
    if (msg && piece.kind === 'body') {
      if (msg.side === 'response') msg.event.bodyBytes += data.length;
      else msg.event.requestBodyBytes += data.length;
    }
    if (!dst.write(data)) {
      src.pause();
      await new Promise<void>((resolve) => {
        const done = () => {
          dst.off('drain', done);
          dst.off('close', done);
          this.waiters.delete(done);
          resolve();
        };
        dst.on('drain', done);
        dst.on('close', done);
        this.waiters.add(done);
      });
    }
  }

  private async drip(piece: Piece, data: Buffer, src: net.Socket, dst: net.Socket): Promise<void> {
    const msg = piece.msg as Msg;
    const fault = msg.fault as Extract<Fault, { type: 'drip' }>;
    let rest = data;
    while (rest.length > 0 && !this.dead) {
      if (msg.sliceLeft === 0) {
        if (msg.slices > 0) {
          src.pause();
          await this.sleep(fault.everyMs);
        }
        msg.sliceLeft = Math.max(1, fault.bytes);
        msg.slices += 1;
      }
      const take = Math.min(msg.sliceLeft, rest.length);
      await this.write(piece, rest.subarray(0, take), src, dst);
      msg.sliceLeft -= take;
      rest = rest.subarray(take);
    }
  }

  private async send(piece: Piece, data: Buffer, src: net.Socket, dst: net.Socket): Promise<void> {
    if (piece.msg?.dripping) await this.drip(piece, data, src, dst);
    else await this.write(piece, data, src, dst);
  }

  private applied(msg: Msg): void {
    msg.triggered = true;
    const event = msg.event;
    if (event.faultApplied || !event.fault) return;
    event.faultApplied = true;
    const counts = this.shared.counts;
    counts.total += 1;
    counts.byType[event.fault.type] = (counts.byType[event.fault.type] ?? 0) + 1;
    counts.byKind[event.kind] = (counts.byKind[event.kind] ?? 0) + 1;
  }

  private async trigger(msg: Msg, src: net.Socket): Promise<void> {
    const fault = msg.fault;
    if (!fault || msg.triggered) return;
    this.applied(msg);
    if (fault.type === 'cut') this.kill(fault.how);
    else if (fault.type === 'stall') {
      src.pause();
      await (fault.ms === undefined ? this.forever() : this.sleep(fault.ms));
    } else msg.dripping = true;
  }

  private async handle(piece: Piece, src: net.Socket, dst: net.Socket): Promise<void> {
    if (piece.kind === 'eof') {
      if (!dst.destroyed) dst.end();
      return;
    }
    const msg = piece.msg;
    if (msg?.loseAnswer && !msg.triggered && (piece.kind === 'head' || piece.kind === 'body')) {
      this.applied(msg);
      this.kill('reset');
      return;
    }
    if (!msg?.fault || (msg.triggered && !msg.dripping)) {
      await this.write(piece, piece.data, src, dst);
      return;
    }
    if (msg.triggered) {
      // dripping
      if (piece.kind === 'end') msg.dripping = false;
      else await this.drip(piece, piece.data, src, dst);
      return;
    }
    if (piece.kind === 'head') {
      if (msg.at < 0) {
        await this.trigger(msg, src);
        await this.send(piece, piece.data, src, dst);
      } else await this.write(piece, piece.data, src, dst);
      return;
    }
    if (piece.kind === 'end') {
      // the message ended before the offset: cuts and stalls apply here
      if (msg.fault.type !== 'drip') await this.trigger(msg, src);
      return;
    }
    const end = piece.offset + piece.data.length;
    if (msg.at >= end) {
      await this.write(piece, piece.data, src, dst);
      return;
    }
    const split = Math.max(0, msg.at - piece.offset);
    await this.write(piece, piece.data.subarray(0, split), src, dst);
    await this.trigger(msg, src);
    await this.send(piece, piece.data.subarray(split), src, dst);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.dead) {
        resolve();
        return;
      }
      const done = () => {
        clearTimeout(timer);
        this.timers.delete(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.timers.add(timer);
      this.waiters.add(done);
    });
  }

  forever(): Promise<void> {
    return new Promise((resolve) => {
      if (this.dead) resolve();
      else this.waiters.add(resolve);
    });
  }

  /** Destroys both sockets now, whatever state they are in. */
  dispose(): void {
    this.kill('destroy');
    for (const timer of this.lingering) clearTimeout(timer);
    this.lingering.clear();
    this.client.destroy();
    this.upstream.destroy();
  }

  kill(how: 'reset' | 'close' | 'destroy'): void {
    if (this.dead) return;
    this.dead = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const s of [this.client, this.upstream]) {
      if (s.destroyed) continue;
      if (how === 'close') {
        s.end(() => s.destroy());
        // whatever else arrives is dropped
        s.removeAllListeners('data');
        s.resume();
      } else if (how === 'reset') {
        // Let the peer read what was forwarded first: a RST landing on unread data is seen by Linux
        // readers as a plain EOF, not ECONNRESET.
        s.removeAllListeners('data');
        s.pause();
        const reset = () => {
          this.lingering.delete(timer);
          if (s.destroyed) return;
          try {
            s.resetAndDestroy();
          } catch {
            s.destroy();
          }
        };
        const timer = setTimeout(reset, RESET_DELAY_MS);
        this.lingering.add(timer);
      } else s.destroy();
    }
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) w();
  }
}

export async function startFaultyProxy(
  upstream: string,
  options: FaultyProxyOptions = {},
): Promise<FaultyProxy> {
  const colon = upstream.lastIndexOf(':');
  const upHost = upstream.slice(0, colon);
  const upPort = Number(upstream.slice(colon + 1));
  const shared: Shared = {
    plan: options.plan,
    events: [],
    counts: { total: 0, byType: {}, byKind: {} },
    perKind: new Map(),
    index: 0,
    errors: [],
  };
  const live = new Set<Connection>();
  let accepted = 0;
  // The client's side is not half-open: its FIN means it gave up, and ends the connection.
  const server = net.createServer({ allowHalfOpen: false }, (client) => {
    accepted += 1;
    const up = net.connect({ host: upHost, port: upPort, allowHalfOpen: true });
    const conn = new Connection(client, up, shared, options.tls === true);
    live.add(conn);
    const forget = () => {
      if (client.destroyed && up.destroyed) live.delete(conn);
    };
    client.on('close', forget);
    up.on('close', forget);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    events: shared.events,
    errors: shared.errors,
    faults: () => ({
      total: shared.counts.total,
      byType: { ...shared.counts.byType },
      byKind: { ...shared.counts.byKind },
    }),
    connections: () => accepted,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const conn of live) conn.dispose();
        live.clear();
        server.close(() => resolve());
      }),
  };
}
