import type { IncomingHttpHeaders } from 'node:http';

/**
 * HTTP/1.1 response framing (RFC 9112) as a pure state machine: bytes go in through `feed` in whatever
 * pieces the socket delivers them, the end of the connection through `end`, and the parser reports the
 * head, the body (as views of the input: copy before keeping) and the end of the message. It needs no
 * socket, so every split of a response across reads can be tested (src/transport/parser.test.ts).
 *
 * Supported: status line and header fields (obs-fold joined with a space, as RFC 9112 asks of user
 * agents), `Content-Length`, `Transfer-Encoding: chunked` (extensions ignored, trailers read and
 * dropped), close-delimited bodies, bodiless statuses (1xx, 204, 304), interim 1xx responses skipped.
 * Refused: anything else a registry has no business sending (other transfer codings, conflicting
 * lengths, malformed lines, heads over the cap).
 */

export interface ResponseHead {
  status: number;
  reason: string;
  /** Lower-case names; repeated fields joined with ", " (set-cookie kept as a list). */
  headers: IncomingHttpHeaders;
}

export interface ParserEvents {
  /** The final (non-1xx) head; called once, before any body byte. */
  onHead(head: ResponseHead): void;
  /** A piece of the body: a view into the fed buffer, valid only during the call. */
  onBody(slice: Buffer): void;
  /** The message is complete. Bytes fed after it are ignored. */
  onEnd(): void;
}

export interface ParserOptions {
  /** Cap on one response head (status line and fields), default 64 KiB. */
  maxHeadBytes?: number;
  /** The request was HEAD: no response has a body. */
  headRequest?: boolean;
}

/** Why a response could not be read; `premature` marks a peer that closed mid-message (retryable). */
export class FramingError extends Error {
  override readonly name = 'FramingError';
  constructor(
    message: string,
    readonly premature = false,
  ) {
    super(message);
  }
}

const DEFAULT_MAX_HEAD = 64 * 1024;
const MAX_CHUNK_LINE = 4096;
const MAX_TRAILER_BYTES = 64 * 1024;
/** 13 hex digits reach 2^52: more than any blob, safely inside a double. */
const MAX_CHUNK_SIZE_DIGITS = 13;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const STATUS_LINE = /^HTTP\/1\.[01] ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
/** Field values: visible ASCII, obs-text, spaces and tabs. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const HEX = /^[0-9A-Fa-f]+$/;
/** Optional whitespace around a field value: spaces and tabs only. */
const OWS_EDGES = /^[\t ]+|[\t ]+$/g;

type State =
  | 'head'
  | 'body-length'
  | 'body-close'
  | 'chunk-size'
  | 'chunk-data'
  | 'chunk-data-end'
  | 'trailer'
  | 'done';

const CR = 0x0d;
const LF = 0x0a;

export class ResponseParser {
  private state: State = 'head';
  /** Head bytes gathered so far (heads are small: copied, never views). */
  private head: Buffer[] = [];
  private headLength = 0;
  /** Where to resume the search for the blank line, so a split head is scanned once. */
  private scanned = 0;
  private remaining = 0;
  private line = '';
  private lineBytes = 0;
  private trailerBytes = 0;
  private sawCr = false;
  private received = 0;
  private readonly maxHead: number;
  private readonly headRequest: boolean;
  /** The body ran to the connection's end. */
  private closeDelimited = false;
  /** Bytes arrived after the message (a server that pipelines junk): the connection is not reused. */
  private trailing = false;
  /** The answer lets the connection stay open (HTTP/1.1 without `Connection: close`, or 1.0 keep-alive). */
  private persistent = false;

  constructor(
    private readonly events: ParserEvents,
    options: ParserOptions = {},
  ) {
    this.maxHead = options.maxHeadBytes ?? DEFAULT_MAX_HEAD;
    this.headRequest = options.headRequest === true;
  }

  /** True once the message is complete. */
  get done(): boolean {
    return this.state === 'done';
  }

  /** True while the parser still waits for the response head. */
  get awaitingHead(): boolean {
    return this.state === 'head';
  }

  /** Body bytes delivered so far. */
  get bodyBytes(): number {
    return this.received;
  }

  /**
   * True when the connection may carry another request: the message ended by its own framing (a
   * length, the last chunk, or no body), not by the peer closing, nothing followed it, and the answer
   * did not ask to close (RFC 9112 section 9.3: `Connection: close`, or HTTP/1.0 without keep-alive).
   */
  get reusable(): boolean {
    return this.state === 'done' && this.persistent && !this.closeDelimited && !this.trailing;
  }

  feed(data: Buffer): void {
    if (this.state === 'done') {
      if (data.length > 0) this.trailing = true;
      return;
    }
    let i = 0;
    while (i < data.length && (this.state as State) !== 'done') {
      switch (this.state) {
        case 'head':
          i = this.feedHead(data, i);
          break;
        case 'body-length': {
          const n = Math.min(this.remaining, data.length - i);
          this.emit(data.subarray(i, i + n));
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.finish();
          break;
        }
        case 'body-close':
          this.emit(i === 0 ? data : data.subarray(i));
          i = data.length;
          break;
        case 'chunk-data': {
          const n = Math.min(this.remaining, data.length - i);
          this.emit(data.subarray(i, i + n));
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = 'chunk-data-end';
          break;
        }
        default:
          i = this.feedLine(data, i);
      }
    }
    if (i < data.length) this.trailing = true;
  }

  /** The peer closed the connection. Completes a close-delimited body; anything else unfinished fails. */
  end(): void {
    switch (this.state) {
      case 'done':
        return;
      case 'body-close':
        this.closeDelimited = true;
        this.finish();
        return;
      case 'head':
        throw new FramingError(
          this.headLength === 0
            ? 'the connection closed before a response arrived'
            : 'the connection closed inside the response head',
          true,
        );
      case 'body-length':
        throw new FramingError(
          `the connection closed before the body ended (${this.received} of ${this.received + this.remaining} bytes)`,
          true,
        );
      default:
        throw new FramingError(
          `the connection closed before the chunked body ended (${this.received} bytes)`,
          true,
        );
    }
  }

  private emit(slice: Buffer): void {
    if (slice.length === 0) return;
    this.received += slice.length;
    this.events.onBody(slice);
  }

  private finish(): void {
    this.state = 'done';
    this.events.onEnd();
  }

  /** Gathers head bytes up to the blank line; returns where the body starts in `data`. */
  private feedHead(data: Buffer, start: number): number {
    const piece = start === 0 ? data : data.subarray(start);
    const previous = this.headLength;
    this.head.push(Buffer.from(piece));
    this.headLength += piece.length;
    const all = this.head.length === 1 ? (this.head[0] as Buffer) : Buffer.concat(this.head, this.headLength);
    this.head = [all];
    const at = all.indexOf('\r\n\r\n', Math.max(0, this.scanned - 3), 'latin1');
    if (at === -1) {
      this.scanned = this.headLength;
      if (this.headLength > this.maxHead)
        throw new FramingError(`the response head is larger than ${this.maxHead} bytes`);
      return data.length;
    }
    if (at + 4 > this.maxHead)
      throw new FramingError(`the response head is larger than ${this.maxHead} bytes`);
    const consumed = at + 4 - previous;
    this.head = [];
    this.headLength = 0;
    this.scanned = 0;
    const head = parseHead(all.subarray(0, at).toString('latin1'));
    if (head.status >= 100 && head.status < 200) {
      // An interim answer (100 Continue, 103 Early Hints): the real one follows.
      if (head.status === 101) throw new FramingError('the server switched protocols (101)');
      return start + consumed;
    }
    // parseHead accepted the status line, so it starts `HTTP/1.0` or `HTTP/1.1`.
    const options = (head.headers.connection ?? '')
      .toString()
      .toLowerCase()
      .split(',')
      .map((token) => token.trim());
    this.persistent = all[7] === 0x31 ? !options.includes('close') : options.includes('keep-alive');
    this.begin(head);
    return start + consumed;
  }

  private begin(head: ResponseHead): void {
    const encoding = head.headers['transfer-encoding'];
    const length = head.headers['content-length'];
    const bodiless = this.headRequest || head.status === 204 || head.status === 304;
    if (bodiless) this.state = 'done';
    else if (encoding !== undefined) {
      const codings = String(encoding)
        .split(',')
        .map((c) => c.trim().toLowerCase())
        .filter((c) => c !== '');
      if (codings.length !== 1 || codings[0] !== 'chunked') {
        throw new FramingError(`unsupported transfer coding "${String(encoding)}"`);
      }
      // Transfer-Encoding overrides Content-Length (RFC 9112 6.3).
      this.state = 'chunk-size';
    } else if (length !== undefined) {
      this.remaining = contentLength(String(length));
      this.state = this.remaining === 0 ? 'done' : 'body-length';
    } else this.state = 'body-close';
    this.events.onHead(head);
    if (this.state === 'done') this.events.onEnd();
  }

  /** Chunk-size lines, the CRLF after chunk data, and trailer lines, byte by byte (they are short). */
  private feedLine(data: Buffer, start: number): number {
    let i = start;
    while (i < data.length) {
      const byte = data[i++] as number;
      if (this.sawCr) {
        if (byte !== LF) throw new FramingError('malformed chunked body: CR without LF');
        this.sawCr = false;
        this.endLine();
        return i;
      }
      if (byte === CR) {
        this.sawCr = true;
        continue;
      }
      if (byte === LF) throw new FramingError('malformed chunked body: LF without CR');
      this.lineBytes++;
      if (this.state === 'chunk-data-end')
        throw new FramingError('malformed chunked body: data after a chunk');
      if (this.state === 'chunk-size' && this.lineBytes > MAX_CHUNK_LINE)
        throw new FramingError('malformed chunked body: chunk-size line too long');
      if (this.state === 'trailer' && this.trailerBytes + this.lineBytes > MAX_TRAILER_BYTES)
        throw new FramingError('malformed chunked body: trailer section too large');
      this.line += String.fromCharCode(byte);
    }
    return i;
  }

  private endLine(): void {
    const line = this.line;
    this.line = '';
    this.trailerBytes += this.lineBytes;
    this.lineBytes = 0;
    if (this.state === 'chunk-data-end') {
      this.state = 'chunk-size';
      return;
    }
    if (this.state === 'trailer') {
      if (line === '') this.finish();
      else if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*$/.test(line))
        throw new FramingError('malformed chunked body: bad trailer field');
      return;
    }
    // chunk-size [ BWS ";" chunk-ext ]
    const semicolon = line.indexOf(';');
    const sizeText = (semicolon === -1 ? line : line.slice(0, semicolon)).replace(/[\t ]+$/, '');
    if (!HEX.test(sizeText) || sizeText.replace(/^0+(?=.)/, '').length > MAX_CHUNK_SIZE_DIGITS) {
      throw new FramingError(`malformed chunk size "${line.slice(0, 40)}"`);
    }
    if (semicolon !== -1 && !/^[\t\x20-\x7e\x80-\xff]*$/.test(line.slice(semicolon)))
      throw new FramingError('malformed chunk extension');
    const size = Number.parseInt(sizeText, 16);
    this.trailerBytes = 0;
    if (size === 0) this.state = 'trailer';
    else {
      this.remaining = size;
      this.state = 'chunk-data';
    }
  }
}

function contentLength(value: string): number {
  // "42" or, from some proxies, "42, 42": every value must be the same number.
  const values = value.split(',').map((v) => v.trim());
  const first = values[0] ?? '';
  if (!/^[0-9]{1,16}$/.test(first) || values.some((v) => v !== first)) {
    throw new FramingError(`malformed Content-Length "${value.slice(0, 40)}"`);
  }
  const n = Number(first);
  if (!Number.isSafeInteger(n)) throw new FramingError(`Content-Length ${value} is too large`);
  return n;
}

/** Parses a head (without its final blank line): status line, then header fields. */
export function parseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const statusLine = lines[0] ?? '';
  const match = STATUS_LINE.exec(statusLine);
  if (!match)
    throw new FramingError(`malformed HTTP status line: ${JSON.stringify(statusLine.slice(0, 80))}`);
  // No prototype: names such as `__proto__` and `constructor` from the server are ordinary fields.
  const headers: IncomingHttpHeaders = Object.create(null);
  const fields: Array<[string, string]> = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.includes('\n') || line.includes('\r') || line.includes('\0'))
      throw new FramingError('malformed header field: stray line break or NUL');
    if (line.startsWith(' ') || line.startsWith('\t')) {
      // obs-fold: a continuation of the previous field's value.
      const last = fields[fields.length - 1];
      if (!last) throw new FramingError('malformed header: continuation without a field');
      const more = line.replace(OWS_EDGES, '');
      if (!FIELD_VALUE.test(more)) throw new FramingError(`malformed value of header ${last[0]}`);
      last[1] = `${last[1]} ${more}`.replace(OWS_EDGES, '');
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN.test(name))
      throw new FramingError(`malformed header field: ${JSON.stringify(line.slice(0, 60))}`);
    const value = line.slice(colon + 1).replace(OWS_EDGES, '');
    if (!FIELD_VALUE.test(value)) throw new FramingError(`malformed value of header ${name}`);
    fields.push([name.toLowerCase(), value]);
  }
  for (const [name, value] of fields) {
    const previous = headers[name];
    if (name === 'set-cookie') headers[name] = [...((previous as string[] | undefined) ?? []), value];
    else if (previous === undefined) headers[name] = value;
    else if (name === 'content-length' && previous !== value)
      throw new FramingError('conflicting Content-Length fields');
    else if (name !== 'content-length') headers[name] = `${previous as string}, ${value}`;
  }
  return { status: Number(match[1]), reason: match[2] ?? '', headers };
}
