import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mulberry32 } from '../../test/harness/fuzz.js';
import { FramingError, type ParserOptions, parseHead, type ResponseHead, ResponseParser } from './parser.js';

// The response parser is fed whatever pieces a socket delivers, so every response here is fed in one
// piece, split at every offset, byte by byte and in seeded random chunkings, and must give exactly the
// same head, body and end each time. Errors must be FramingErrors with a one-line message, `premature`
// only for a peer that closed mid-message.

type Rng = () => number;
const int = (rng: Rng, lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T;

const latin1 = (s: string) => Buffer.from(s, 'latin1');
const bytes = (...parts: Array<string | Buffer>) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? latin1(p) : p)));
/** A head: the lines, each ended by CRLF, then the blank line. */
const head = (...lines: string[]) => `${lines.map((l) => `${l}\r\n`).join('')}\r\n`;

/** Body bytes that look like framing: random bytes with CRLFs, blank lines and a status line mixed in. */
function payload(n: number, seed: number): Buffer {
  const rng = mulberry32(seed);
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = int(rng, 0, 255);
  const decoys = ['\r\n\r\n', '0\r\n\r\n', 'HTTP/1.1 200 OK\r\n', '\r\n', '\n'];
  for (let at = 0; at < n; at += int(rng, 5, 60)) latin1(pick(rng, decoys)).copy(out, at);
  return out;
}

interface ChunkStyle {
  upper?: boolean;
  zeros?: number;
  ext?: string;
}
/** Chunked encoding of `body` cut at `sizes` (the rest in one last chunk), then the last chunk and trailers. */
function chunked(body: Buffer, sizes: number[], style: ChunkStyle = {}, last = '0\r\n\r\n'): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  const add = (n: number) => {
    let hex = n.toString(16);
    if (style.upper) hex = hex.toUpperCase();
    parts.push(
      latin1(`${'0'.repeat(style.zeros ?? 0)}${hex}${style.ext ?? ''}\r\n`),
      body.subarray(at, at + n),
    );
    parts.push(latin1('\r\n'));
    at += n;
  };
  for (const n of sizes) if (at + n <= body.length && n > 0) add(n);
  if (at < body.length) add(body.length - at);
  parts.push(latin1(last));
  return Buffer.concat(parts);
}

type Headers = Record<string, string | string[]>;

interface Outcome {
  status?: number;
  reason?: string;
  headers?: Headers;
  body: Buffer;
  /** When onEnd came: while bytes were fed (self-delimited), at the close, or not at all. */
  end: 'feed' | 'close' | 'none';
  error?: { message: string; premature: boolean };
}

/** Own properties only, as a plain object (an own `__proto__` stays an own property). */
const own = (headers: object): Headers => Object.fromEntries(Object.entries(headers));

/**
 * Feeds the pieces (fresh copies, scribbled over after each feed: the parser may keep nothing of them),
 * then closes the input unless `close` is false. Checks the event order on the way.
 */
function run(pieces: readonly Buffer[], options: ParserOptions = {}, close = true): Outcome {
  const violations: string[] = [];
  let parsed: ResponseHead | undefined;
  const body: Buffer[] = [];
  let end: Outcome['end'] = 'none';
  let phase: 'feed' | 'close' = 'feed';
  const parser = new ResponseParser(
    {
      onHead(h) {
        if (parsed) violations.push('a second head');
        if (end !== 'none') violations.push('a head after the end');
        parsed = h;
      },
      onBody(slice) {
        if (!parsed) violations.push('body before the head');
        if (end !== 'none') violations.push('body after the end');
        if (slice.length === 0) violations.push('an empty body slice');
        body.push(Buffer.from(slice));
      },
      onEnd() {
        if (!parsed) violations.push('the end before the head');
        if (end !== 'none') violations.push('a second end');
        end = phase;
      },
    },
    options,
  );
  const out: Outcome = { body: Buffer.alloc(0), end: 'none' };
  try {
    for (const piece of pieces) {
      const copy = Buffer.from(piece);
      parser.feed(copy);
      copy.fill(0x5a);
    }
    phase = 'close';
    if (close) {
      parser.end();
      parser.end(); // once done, a second end is a no-op
    }
  } catch (err) {
    if (!(err instanceof FramingError)) throw err;
    assert.equal(err.name, 'FramingError');
    assert.equal(Object.getPrototypeOf(err), FramingError.prototype);
    assert.doesNotMatch(err.message, /[\r\n]/, 'one-line message');
    assert.ok(err.message.length > 0 && err.message.length < 200, err.message);
    out.error = { message: err.message, premature: err.premature };
  }
  if (violations.length > 0) assert.fail(violations.join('; '));
  const received = Buffer.concat(body);
  assert.equal(parser.bodyBytes, received.length, 'bodyBytes');
  assert.equal(parser.done, end !== 'none', 'done');
  if (!out.error) assert.equal(parser.awaitingHead, parsed === undefined, 'awaitingHead');
  if (parsed) {
    out.status = parsed.status;
    out.reason = parsed.reason;
    out.headers = own(parsed.headers);
  }
  out.body = received;
  out.end = end;
  return out;
}

/** Seeded random pieces: mostly small, some large, a few empty. */
function randomPieces(data: Buffer, rng: Rng): Buffer[] {
  const pieces: Buffer[] = [];
  for (let at = 0; at < data.length; ) {
    const r = rng();
    const n = r < 0.05 ? 0 : r < 0.5 ? int(rng, 1, 4) : r < 0.85 ? int(rng, 5, 80) : int(rng, 81, 3000);
    pieces.push(data.subarray(at, at + n));
    at += n;
  }
  return pieces;
}

const SEEDS = [1, 2, 3, 42, 1234, 99991, 0xdecafbad, 7];

/**
 * One piece, two pieces at every offset (every `stride`th for the long error inputs), three pieces at
 * every pair of offsets (`three`), byte by byte (up to 16 KiB), and seeded random chunkings.
 */
function* splittings(data: Buffer, three = false, stride = 1): Generator<[string, Buffer[]]> {
  yield ['one piece', [data]];
  for (let k = 0; k <= data.length; k += stride)
    yield [`split at ${k}`, [data.subarray(0, k), data.subarray(k)]];
  if (three) {
    for (let j = 1; j < data.length; j++)
      for (let k = j + 1; k < data.length; k++)
        yield [`split at ${j}, ${k}`, [data.subarray(0, j), data.subarray(j, k), data.subarray(k)]];
  }
  if (data.length <= 16 * 1024) yield ['byte by byte', Array.from(data, (_, i) => data.subarray(i, i + 1))];
  for (const seed of SEEDS) yield [`seed ${seed}`, randomPieces(data, mulberry32(seed))];
}

/** Every splitting of `data` gives `expected`. */
function everySplit(data: Buffer, expected: Outcome, options: ParserOptions = {}): void {
  for (const [label, pieces] of splittings(data, data.length <= 100)) {
    const got = run(pieces, options);
    if (!sameOutcome(got, expected)) assert.deepEqual(got, expected, label);
  }
}
/** A quick equality check (field order counts); a mismatch is then reported by assert.deepEqual. */
const sameOutcome = (a: Outcome, b: Outcome) => a.body.equals(b.body) && summary(a) === summary(b);
const summary = (o: Outcome) =>
  JSON.stringify([o.status, o.reason, o.end, o.error, o.headers && Object.entries(o.headers)]);

interface Sample {
  name: string;
  wire: Buffer;
  options?: ParserOptions;
  status: number;
  reason?: string;
  headers: Headers;
  body?: Buffer;
  /** 'close' for a close-delimited body; default 'feed'. */
  end?: 'feed' | 'close';
  /** Bytes after the message (ignored). */
  extra?: number;
}

const expectation = (s: Sample): Outcome => ({
  status: s.status,
  reason: s.reason ?? (s.status === 200 ? 'OK' : ''),
  headers: s.headers,
  body: s.body ?? Buffer.alloc(0),
  end: s.end ?? 'feed',
});

const b1 = latin1('x');
const b200 = payload(200, 200);
const b5000 = payload(5000, 5000);
const b1000 = payload(1000, 1000);
const b3000 = payload(3000, 3000);

const samples: Sample[] = [
  {
    name: 'Content-Length 0',
    wire: bytes(head('HTTP/1.1 200 OK', 'Content-Length: 0')),
    status: 200,
    headers: { 'content-length': '0' },
  },
  {
    name: 'Content-Length 1',
    wire: bytes(head('HTTP/1.1 200 OK', 'Content-Length: 1'), b1),
    status: 200,
    headers: { 'content-length': '1' },
    body: b1,
  },
  {
    name: 'Content-Length 200',
    wire: bytes(
      head('HTTP/1.1 200 OK', 'content-type: application/octet-stream', 'Content-Length: 200'),
      b200,
    ),
    status: 200,
    headers: { 'content-type': 'application/octet-stream', 'content-length': '200' },
    body: b200,
  },
  {
    name: 'Content-Length 5000, with bytes after the message',
    wire: bytes(
      head('HTTP/1.1 206 Partial Content', 'Content-Range: bytes 0-4999/9000', 'CONTENT-LENGTH:5000'),
      b5000,
      'HTTP/1.1 500 Oops\r\n\r\nmore',
    ),
    status: 206,
    reason: 'Partial Content',
    headers: { 'content-range': 'bytes 0-4999/9000', 'content-length': '5000' },
    body: b5000,
    extra: 25,
  },
  {
    name: 'Content-Length repeated with the same value, and as a list',
    wire: bytes(head('HTTP/1.1 200 OK', 'Content-Length: 3', 'content-length: 3', 'X: 1'), 'abc'),
    status: 200,
    headers: { 'content-length': '3', x: '1' },
    body: latin1('abc'),
  },
  {
    name: 'Content-Length "3, 3"',
    wire: bytes(head('HTTP/1.1 200 OK', 'Content-Length: 3,3 , 3'), 'abc'),
    status: 200,
    headers: { 'content-length': '3,3 , 3' },
    body: latin1('abc'),
  },
  {
    name: 'chunked, several chunks',
    wire: bytes(head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked'), chunked(b1000, [1, 5, 26, 255, 256])),
    status: 200,
    headers: { 'transfer-encoding': 'chunked' },
    body: b1000,
  },
  {
    name: 'chunked, upper-case hex, leading zeros',
    wire: bytes(
      head('HTTP/1.1 200 OK', 'Transfer-Encoding: Chunked'),
      chunked(b1000, [26, 171, 0xfe], { upper: true, zeros: 3 }, '0000\r\n\r\n'),
    ),
    status: 200,
    headers: { 'transfer-encoding': 'Chunked' },
    body: b1000,
  },
  {
    name: 'chunked, extensions',
    wire: bytes(
      head('HTTP/1.1 200 OK', 'transfer-encoding:  chunked '),
      '5;name=value\r\nhello\r\n',
      '6 ;a\r\n world\r\n',
      '1\t; q="x;y\\"z" ; r\r\n!\r\n',
      'a;\r\n0123456789\r\n',
      '0;last=1\r\n\r\n',
    ),
    status: 200,
    headers: { 'transfer-encoding': 'chunked' },
    body: latin1('hello world!0123456789'),
  },
  {
    name: 'chunked, trailers',
    wire: bytes(
      head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'Trailer: X-Checksum'),
      chunked(b200, [100], {}, '0\r\nX-Checksum: abc\r\nExpires:\r\nX-Empty:  \t\r\n\r\n'),
    ),
    status: 200,
    headers: { 'transfer-encoding': 'chunked', trailer: 'X-Checksum' },
    body: b200,
  },
  {
    name: 'chunked, one large chunk, bytes after the message',
    wire: bytes(head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked'), chunked(b3000, []), 'garbage'),
    status: 200,
    headers: { 'transfer-encoding': 'chunked' },
    body: b3000,
    extra: 7,
  },
  {
    name: 'chunked, empty body',
    wire: bytes(head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked'), '0\r\n\r\n'),
    status: 200,
    headers: { 'transfer-encoding': 'chunked' },
  },
  {
    name: 'Transfer-Encoding overrides Content-Length',
    wire: bytes(
      head('HTTP/1.1 200 OK', 'Content-Length: 3', 'Transfer-Encoding: chunked'),
      '5\r\nhello\r\n0\r\n\r\n',
    ),
    status: 200,
    headers: { 'content-length': '3', 'transfer-encoding': 'chunked' },
    body: latin1('hello'),
  },
  {
    name: '204, nothing after it read',
    wire: bytes(head('HTTP/1.1 204 No Content', 'Date: x'), 'junk that is no body'),
    status: 204,
    reason: 'No Content',
    headers: { date: 'x' },
    extra: 20,
  },
  {
    name: '304 with a Content-Length',
    wire: bytes(head('HTTP/1.1 304 Not Modified', 'Content-Length: 1234', 'ETag: "abc"')),
    status: 304,
    reason: 'Not Modified',
    headers: { 'content-length': '1234', etag: '"abc"' },
  },
  {
    name: '204 with Transfer-Encoding (no body read)',
    wire: bytes(head('HTTP/1.1 204 No Content', 'Transfer-Encoding: gzip')),
    status: 204,
    reason: 'No Content',
    headers: { 'transfer-encoding': 'gzip' },
  },
  {
    name: '100 Continue, then the answer',
    wire: bytes(head('HTTP/1.1 100 Continue'), head('HTTP/1.1 201 Created', 'Content-Length: 5'), 'hello'),
    status: 201,
    reason: 'Created',
    headers: { 'content-length': '5' },
    body: latin1('hello'),
  },
  {
    name: '103 Early Hints and 100 Continue (with fields), then a chunked answer',
    wire: bytes(
      head('HTTP/1.1 103 Early Hints', 'Link: </a>; rel=preload', 'Content-Length: 7'),
      head('HTTP/1.1 100 Continue'),
      head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'Link: </b>'),
      '3\r\nabc\r\n0\r\n\r\n',
    ),
    status: 200,
    headers: { 'transfer-encoding': 'chunked', link: '</b>' },
    body: latin1('abc'),
  },
  {
    name: 'HEAD request: a Content-Length answer has no body',
    wire: bytes(head('HTTP/1.1 200 OK', 'Content-Length: 5000'), 'trailing'),
    options: { headRequest: true },
    status: 200,
    headers: { 'content-length': '5000' },
    extra: 8,
  },
  {
    name: 'HEAD request: a chunked answer has no body',
    wire: bytes(head('HTTP/1.1 404 Not Found', 'Transfer-Encoding: chunked')),
    options: { headRequest: true },
    status: 404,
    reason: 'Not Found',
    headers: { 'transfer-encoding': 'chunked' },
  },
  {
    name: 'close-delimited body',
    wire: bytes(head('HTTP/1.1 200 OK', 'Content-Type: application/json'), b3000),
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: b3000,
    end: 'close',
  },
  {
    name: 'close-delimited HTTP/1.0 body',
    wire: bytes(head('HTTP/1.0 404 Not Found'), '{"errors":[]}'),
    status: 404,
    reason: 'Not Found',
    headers: {},
    body: latin1('{"errors":[]}'),
    end: 'close',
  },
  {
    name: 'close-delimited, empty body',
    wire: bytes(head('HTTP/1.1 500')),
    status: 500,
    headers: {},
    end: 'close',
  },
  {
    name: 'status line variants and folded, padded, repeated fields',
    wire: bytes(
      head(
        'HTTP/1.1 200 ',
        'X-Folded: a',
        '   b',
        '\tc ',
        'x-list:1',
        'X-LIST: \t2\t',
        'Set-Cookie: a=1; Path=/',
        'set-cookie: b=2',
        'X-Inner:  a  b  ',
        'X-Latin: caf\xe9',
        'X-Empty:',
        'content-length: 2',
      ),
      'ok',
    ),
    status: 200,
    reason: '',
    headers: {
      'x-folded': 'a b c',
      'x-list': '1, 2',
      'set-cookie': ['a=1; Path=/', 'b=2'],
      'x-inner': 'a  b',
      'x-latin': 'caf\xe9',
      'x-empty': '',
      'content-length': '2',
    },
    body: latin1('ok'),
  },
];

describe('ResponseParser: every split of a response gives the same result', () => {
  for (const s of samples) {
    it(s.name, () => {
      const expected = expectation(s);
      everySplit(s.wire, expected, s.options);
      // The message's own bytes alone give the same, and nothing depends on the close for a
      // self-delimited one.
      const message = s.wire.subarray(0, s.wire.length - (s.extra ?? 0));
      if (expected.end === 'feed') assert.deepEqual(run([message], s.options, false), expected);
      else assert.deepEqual(run([message], s.options, false), { ...expected, end: 'none' });
    });
  }
});

describe('ResponseParser: the input ends early', () => {
  it('every prefix of a self-delimited response fails as premature; close-delimited ones end', () => {
    for (const s of samples) {
      const message = s.wire.subarray(0, s.wire.length - (s.extra ?? 0));
      const headLength = s.wire.indexOf('\r\n\r\n', 0, 'latin1') + 4;
      const step = message.length > 600 ? 37 : 1;
      for (let p = 0; p < message.length; p += p < 100 || p > message.length - 100 ? 1 : step) {
        const prefix = message.subarray(0, p);
        for (const pieces of [[prefix], randomPieces(prefix, mulberry32(p))]) {
          const got = run(pieces, s.options);
          const label = `${s.name}, ${p} of ${message.length} bytes`;
          const expected = expectation(s);
          if (expected.end === 'close' && p >= headLength) {
            assert.deepEqual(
              got,
              { ...expected, body: message.subarray(headLength, p), end: 'close' },
              label,
            );
            continue;
          }
          assert.equal(got.error?.premature, true, label);
          assert.equal(got.end, 'none', label);
          // What was delivered is the start of the body.
          const body = expected.body;
          assert.deepEqual(got.body, body.subarray(0, got.body.length), label);
          if (got.status !== undefined) assert.deepEqual(got.headers, expected.headers, label);
        }
      }
    }
  });

  const cases: Array<[string, Buffer, RegExp]> = [
    ['nothing at all', Buffer.alloc(0), /before a response arrived/],
    ['only an interim answer', latin1(head('HTTP/1.1 100 Continue')), /before a response arrived/],
    ['inside the status line', latin1('HTTP/1.1 20'), /inside the response head/],
    ['inside the fields', latin1('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n'), /inside the response head/],
    [
      'before the blank line ends',
      latin1('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r'),
      /inside the response head/,
    ],
    ['before the body', latin1(head('HTTP/1.1 200 OK', 'Content-Length: 10')), /\(0 of 10 bytes\)/],
    ['inside the body', latin1(`${head('HTTP/1.1 200 OK', 'Content-Length: 10')}abc`), /\(3 of 10 bytes\)/],
    ['before the first chunk', latin1(head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked')), /\(0 bytes\)/],
    [
      'inside a chunk-size line',
      latin1(`${head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked')}3\r\nabc\r\n1`),
      /chunked body ended \(3 bytes\)/,
    ],
    [
      'inside a chunk extension',
      latin1(`${head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked')}3;a=b`),
      /chunked body ended \(0 bytes\)/,
    ],
    [
      'inside a chunk',
      latin1(`${head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked')}5\r\nab`),
      /chunked body ended \(2 bytes\)/,
    ],
    [
      'before the CRLF after a chunk',
      latin1(`${head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked')}5\r\nhello`),
      /chunked body ended \(5 bytes\)/,
    ],
    [
      'between CR and LF after a chunk',
      latin1(`${head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked')}5\r\nhello\r`),
      /chunked body ended \(5 bytes\)/,
    ],
    [
      'before the last chunk',
      latin1(`${head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked')}5\r\nhello\r\n`),
      /chunked body ended \(5 bytes\)/,
    ],
    [
      'after the last chunk, before the blank line',
      latin1(`${head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked')}5\r\nhello\r\n0\r\n`),
      /chunked body ended \(5 bytes\)/,
    ],
    [
      'between CR and LF of the final blank line',
      latin1(`${head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked')}0\r\n\r`),
      /chunked body ended \(0 bytes\)/,
    ],
    [
      'inside the trailers',
      latin1(`${head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked')}0\r\nX-Sum: 1\r\nX-O`),
      /chunked body ended/,
    ],
  ];
  for (const [name, data, message] of cases) {
    it(name, () => {
      let first: Outcome | undefined;
      for (const [label, pieces] of splittings(data)) {
        const got = run(pieces);
        assert.equal(got.error?.premature, true, label);
        assert.match(got.error?.message ?? '', message, label);
        assert.match(got.error?.message ?? '', /^the connection closed /, label);
        first ??= got;
        if (!sameOutcome(got, first)) assert.deepEqual(got, first, label);
      }
    });
  }

  it('a huge but valid Content-Length is accepted and then cut short', () => {
    const got = run([latin1(`${head('HTTP/1.1 200 OK', 'Content-Length: 9007199254740991')}abc`)]);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, latin1('abc'));
    assert.equal(got.error?.premature, true);
    assert.match(got.error?.message ?? '', /\(3 of 9007199254740991 bytes\)/);
  });

  it('a chunk of 2^52 - 1 bytes is accepted and then cut short', () => {
    const got = run([
      latin1(`${head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked')}000fffffffffffff\r\nab`),
    ]);
    assert.deepEqual(got.body, latin1('ab'));
    assert.equal(got.error?.premature, true);
  });
});

const TE = head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked');

/** Malformed responses: each must fail with a FramingError that is not premature, at every split. */
const malformed: Array<[string, Buffer, RegExp, ParserOptions?]> = [
  ['no HTTP at all', latin1('SSH-2.0-OpenSSH_9.0\r\n\r\n'), /malformed HTTP status line/],
  ['HTTP/2 status line', latin1(head('HTTP/2 200 OK')), /malformed HTTP status line/],
  ['HTTP/1.2 status line', latin1(head('HTTP/1.2 200 OK')), /malformed HTTP status line/],
  ['lower-case protocol', latin1(head('http/1.1 200 OK')), /malformed HTTP status line/],
  ['two-digit status', latin1(head('HTTP/1.1 20 OK')), /malformed HTTP status line/],
  ['four-digit status', latin1(head('HTTP/1.1 2000 OK')), /malformed HTTP status line/],
  ['no space before the reason', latin1(head('HTTP/1.1 200OK')), /malformed HTTP status line/],
  ['two spaces before the status', latin1(head('HTTP/1.1  200 OK')), /malformed HTTP status line/],
  ['control byte in the reason', latin1(head('HTTP/1.1 200 O\x01K')), /malformed HTTP status line/],
  ['bare LF after the status line', latin1('HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n'), /status line/],
  ['a blank line before the status line', latin1(`\r\n${head('HTTP/1.1 200 OK')}`), /status line/],
  ['empty head', latin1('\r\n\r\n'), /malformed HTTP status line/],
  ['101 Switching Protocols', latin1(head('HTTP/1.1 101 Switching Protocols', 'Upgrade: h2c')), /101/],
  ['malformed interim answer', latin1(head('HTTP/1.1 100 Continue', 'Bad Field')), /malformed header/],
  ['field without a colon', latin1(head('HTTP/1.1 200 OK', 'NoColon')), /malformed header field/],
  ['field with an empty name', latin1(head('HTTP/1.1 200 OK', ': value')), /malformed header field/],
  ['space before the colon', latin1(head('HTTP/1.1 200 OK', 'Name : value')), /malformed header field/],
  ['tab before the colon', latin1(head('HTTP/1.1 200 OK', 'Name\t: value')), /malformed header field/],
  ['space inside the name', latin1(head('HTTP/1.1 200 OK', 'Na me: value')), /malformed header field/],
  ['separator in the name', latin1(head('HTTP/1.1 200 OK', 'a(b): value')), /malformed header field/],
  ['slash in the name', latin1(head('HTTP/1.1 200 OK', 'a/b: value')), /malformed header field/],
  ['non-ASCII name', latin1(head('HTTP/1.1 200 OK', 'N\xe4me: value')), /malformed header field/],
  ['NUL in a value', latin1(head('HTTP/1.1 200 OK', 'X: a\0b')), /stray line break or NUL/],
  ['bare CR in a value', latin1(head('HTTP/1.1 200 OK', 'X: a\rb')), /stray line break or NUL/],
  ['bare LF between fields', latin1(head('HTTP/1.1 200 OK', 'X: a\nY: b')), /stray line break or NUL/],
  ['control byte in a value', latin1(head('HTTP/1.1 200 OK', 'X: a\x01b')), /malformed value of header X/],
  ['DEL in a value', latin1(head('HTTP/1.1 200 OK', 'X: a\x7fb')), /malformed value of header X/],
  ['vertical tab in a value', latin1(head('HTTP/1.1 200 OK', 'X: a\x0bb')), /malformed value of header X/],
  ['control byte in a folded line', latin1(head('HTTP/1.1 200 OK', 'X: a', ' b\x01c')), /malformed value/],
  ['DEL in a folded line', latin1(head('HTTP/1.1 200 OK', 'X: a', '\t\x7f')), /malformed value/],
  ['fold without a field', latin1(head('HTTP/1.1 200 OK', ' folded')), /continuation without a field/],
  ['folded Content-Length', latin1(head('HTTP/1.1 200 OK', 'Content-Length: 1', ' 0')), /Content-Length/],
  [
    'conflicting Content-Length fields',
    latin1(head('HTTP/1.1 200 OK', 'Content-Length: 5', 'Content-Length: 6')),
    /conflicting/,
  ],
  [
    'Content-Length 5 and "5, 5"',
    latin1(head('HTTP/1.1 200 OK', 'Content-Length: 5', 'Content-Length: 5, 5')),
    /conflicting/,
  ],
  [
    'conflicting Content-Length list',
    latin1(head('HTTP/1.1 200 OK', 'Content-Length: 5, 6')),
    /malformed Content-Length/,
  ],
  [
    'Content-Length list with a hole',
    latin1(head('HTTP/1.1 200 OK', 'Content-Length: 5,')),
    /malformed Content-Length/,
  ],
  ['empty Content-Length', latin1(head('HTTP/1.1 200 OK', 'Content-Length:  ')), /malformed Content-Length/],
  [
    'non-numeric Content-Length',
    latin1(head('HTTP/1.1 200 OK', 'Content-Length: abc')),
    /malformed Content-Length/,
  ],
  [
    'negative Content-Length',
    latin1(head('HTTP/1.1 200 OK', 'Content-Length: -1')),
    /malformed Content-Length/,
  ],
  [
    'signed Content-Length',
    latin1(head('HTTP/1.1 200 OK', 'Content-Length: +5')),
    /malformed Content-Length/,
  ],
  [
    'fractional Content-Length',
    latin1(head('HTTP/1.1 200 OK', 'Content-Length: 5.0')),
    /malformed Content-Length/,
  ],
  ['hex Content-Length', latin1(head('HTTP/1.1 200 OK', 'Content-Length: 0x10')), /malformed Content-Length/],
  [
    'exponent Content-Length',
    latin1(head('HTTP/1.1 200 OK', 'Content-Length: 1e3')),
    /malformed Content-Length/,
  ],
  [
    'Content-Length with a space inside',
    latin1(head('HTTP/1.1 200 OK', 'Content-Length: 1 0')),
    /malformed Content-Length/,
  ],
  [
    'Content-Length of 17 digits',
    latin1(head('HTTP/1.1 200 OK', 'Content-Length: 10000000000000000')),
    /malformed Content-Length/,
  ],
  [
    'Content-Length of 40 digits',
    latin1(head('HTTP/1.1 200 OK', `Content-Length: ${'9'.repeat(40)}`)),
    /malformed Content-Length/,
  ],
  [
    'Content-Length above 2^53',
    latin1(head('HTTP/1.1 200 OK', 'Content-Length: 9007199254740993')),
    /too large/,
  ],
  [
    'gzip coding',
    latin1(head('HTTP/1.1 200 OK', 'Transfer-Encoding: gzip')),
    /unsupported transfer coding "gzip"/,
  ],
  [
    'gzip then chunked',
    latin1(head('HTTP/1.1 200 OK', 'Transfer-Encoding: gzip, chunked')),
    /unsupported transfer coding/,
  ],
  [
    'chunked twice',
    latin1(head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked')),
    /unsupported/,
  ],
  [
    'identity coding',
    latin1(head('HTTP/1.1 200 OK', 'Transfer-Encoding: identity', 'Content-Length: 1')),
    /unsupported/,
  ],
  [
    'empty Transfer-Encoding',
    latin1(head('HTTP/1.1 200 OK', 'Transfer-Encoding:')),
    /unsupported transfer coding/,
  ],
  ['non-hex chunk size', latin1(`${TE}zz\r\n`), /malformed chunk size "zz"/],
  ['empty chunk size', latin1(`${TE}\r\n`), /malformed chunk size/],
  ['chunk size with a leading space', latin1(`${TE} 5\r\nhello\r\n`), /malformed chunk size/],
  ['negative chunk size', latin1(`${TE}-5\r\n`), /malformed chunk size/],
  ['0x chunk size', latin1(`${TE}0x5\r\n`), /malformed chunk size/],
  ['chunk size with junk after it', latin1(`${TE}5 x\r\nhello\r\n`), /malformed chunk size/],
  ['chunk size of 14 hex digits', latin1(`${TE}10000000000000\r\n`), /malformed chunk size/],
  ['chunk size of 40 hex digits', latin1(`${TE}${'f'.repeat(40)}\r\n`), /malformed chunk size/],
  ['chunk size line over 4 KiB', latin1(`${TE}5;${'a'.repeat(5000)}\r\n`), /chunk-size line too long/],
  ['control byte in a chunk extension', latin1(`${TE}5;a\x01\r\nhello\r\n`), /malformed chunk extension/],
  ['bare LF after a chunk size', latin1(`${TE}5\nhello\r\n0\r\n\r\n`), /LF without CR/],
  ['bare CR after a chunk size', latin1(`${TE}5\rhello\r\n0\r\n\r\n`), /CR without LF/],
  ['chunk longer than its size', latin1(`${TE}5\r\nhelloX\r\n0\r\n\r\n`), /data after a chunk/],
  ['no CRLF after a chunk', latin1(`${TE}5\r\nhello0\r\n\r\n`), /data after a chunk/],
  ['bare LF after a chunk', latin1(`${TE}5\r\nhello\n0\r\n\r\n`), /LF without CR/],
  ['malformed trailer', latin1(`${TE}0\r\nbad trailer\r\n\r\n`), /bad trailer field/],
  ['folded trailer', latin1(`${TE}0\r\nX: a\r\n b\r\n\r\n`), /bad trailer field/],
  [
    'trailers over 64 KiB',
    latin1(`${TE}0\r\n${`X-T: ${'t'.repeat(1000)}\r\n`.repeat(70)}\r\n`),
    /trailer section too large/,
  ],
  [
    'head over the cap',
    latin1(head('HTTP/1.1 200 OK', `X: ${'a'.repeat(200)}`)),
    /larger than 100 bytes/,
    { maxHeadBytes: 100 },
  ],
  [
    'head one byte over the cap',
    latin1(`${head('HTTP/1.1 200 OK', 'X: 123456')}body`),
    /larger than 29 bytes/,
    { maxHeadBytes: 29 },
  ],
  [
    'endless head',
    latin1(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(300)}`),
    /larger than 100 bytes/,
    { maxHeadBytes: 100 },
  ],
];

describe('ResponseParser: malformed responses', () => {
  for (const [name, data, message, options] of malformed) {
    it(name, () => {
      let first: Outcome | undefined;
      for (const [label, pieces] of splittings(
        data,
        false,
        data.length > 4096 ? Math.ceil(data.length / (data.length > 16384 ? 40 : 200)) : 1,
      )) {
        const got = run(pieces, options);
        assert.ok(got.error, `${label}: no error`);
        assert.equal(got.error.premature, false, label);
        assert.match(got.error.message, message, label);
        assert.equal(got.end, 'none', label);
        first ??= got;
        if (!sameOutcome(got, first)) assert.deepEqual(got, first, label);
      }
    });
  }

  it('a head exactly at the cap is accepted', () => {
    const h = latin1(head('HTTP/1.1 200 OK', 'X: 12345'));
    assert.equal(h.length, 29);
    for (const [label, pieces] of splittings(bytes(h, 'body'))) {
      assert.deepEqual(
        run(pieces, { maxHeadBytes: 29 }),
        { status: 200, reason: 'OK', headers: { x: '12345' }, body: latin1('body'), end: 'close' },
        label,
      );
    }
  });

  it('the default cap is 64 KiB, and is per head (interim answers do not add up)', () => {
    const fill = (n: number) => `X: ${'a'.repeat(n - 'HTTP/1.1 200 OK\r\nX: \r\n\r\n'.length)}`;
    const at = latin1(head('HTTP/1.1 200 OK', fill(64 * 1024)));
    assert.equal(at.length, 64 * 1024);
    const interim = latin1(head('HTTP/1.1 100 OK', fill(64 * 1024)));
    for (const pieces of [[at], randomPieces(at, mulberry32(5)), [interim, at]]) {
      const got = run(pieces);
      assert.equal(got.error, undefined);
      assert.equal(got.status, 200);
    }
    const over = latin1(head('HTTP/1.1 200 OK', fill(64 * 1024 + 1)));
    for (const pieces of [[over], randomPieces(over, mulberry32(6))]) {
      assert.match(run(pieces).error?.message ?? '', /larger than 65536 bytes/);
    }
    // A head that never ends fails once it passes the cap, without waiting for the rest.
    const endless = latin1(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(65 * 1024)}`);
    const got = run([endless.subarray(0, 65 * 1024), endless.subarray(65 * 1024)], {}, false);
    assert.match(got.error?.message ?? '', /larger than 65536 bytes/);
  });
});

describe('parseHead', () => {
  it('keeps header names that are Object.prototype members as ordinary fields', () => {
    const text = [
      'HTTP/1.1 200 OK',
      '__proto__: first',
      'constructor: c1',
      'toString: t',
      'hasOwnProperty: h',
      'valueOf: v',
      '__defineGetter__: g',
      'isPrototypeOf: i',
      '__proto__: second',
      'Constructor: c2',
      'set-cookie: s',
    ].join('\r\n');
    for (const [label, pieces] of splittings(latin1(`${text}\r\n\r\n`), false)) {
      const got = run(pieces, {}, false);
      assert.deepEqual(
        got.headers,
        {
          ['__proto__']: 'first, second',
          constructor: 'c1, c2',
          tostring: 't',
          hasownproperty: 'h',
          valueof: 'v',
          __definegetter__: 'g',
          isprototypeof: 'i',
          'set-cookie': ['s'],
        },
        label,
      );
    }
    const { headers } = parseHead(text);
    assert.equal(Object.getOwnPropertyDescriptor(headers, '__proto__')?.value, 'first, second');
    assert.equal(headers.constructor, 'c1, c2');
    // Nothing leaked into or out of Object.prototype.
    assert.equal(Object.prototype.toString.call({}), '[object Object]');
    assert.equal(({} as Record<string, unknown>).first, undefined);
    assert.equal(typeof ({} as { constructor: unknown }).constructor, 'function');
  });

  it('a name that was not sent is absent, even if Object.prototype has it', () => {
    const { headers } = parseHead('HTTP/1.1 200 OK\r\nX: 1');
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
      assert.equal(headers[name], undefined, name);
    }
    // A lone __proto__ field is a value, not a prototype.
    const one = parseHead('HTTP/1.1 200 OK\r\n__proto__: x\r\nconstructor: y').headers;
    assert.deepEqual(own(one), { ['__proto__']: 'x', constructor: 'y' });
    assert.equal(Object.getOwnPropertyDescriptor(one, '__proto__')?.value, 'x');
  });

  it('joins repeated fields with ", ", keeps set-cookie as a list, ignores name case, trims values', () => {
    const got = parseHead(
      [
        'HTTP/1.1 404 Not  Found ',
        'WWW-Authenticate: Bearer realm="a"',
        'www-authenticate:Basic',
        'Www-Authenticate: \t ',
        'Set-Cookie: a=1, b=2',
        'SET-COOKIE:c=3 ',
        'Accept-Ranges: bytes',
        'X-Tabs:\t\tv\t\t',
        'X-Spaces:   v  w   ',
      ].join('\r\n'),
    );
    assert.equal(got.status, 404);
    assert.equal(got.reason, 'Not  Found ');
    assert.deepEqual(own(got.headers), {
      'www-authenticate': 'Bearer realm="a", Basic, ',
      'set-cookie': ['a=1, b=2', 'c=3'],
      'accept-ranges': 'bytes',
      'x-tabs': 'v',
      'x-spaces': 'v  w',
    });
    assert.deepEqual(parseHead('HTTP/1.0 200').headers['set-cookie'], undefined);
    assert.deepEqual(parseHead('HTTP/1.0 200 OK\r\nSet-Cookie: x').headers['set-cookie'], ['x']);
  });

  it('joins folded lines with one space, trimming only spaces and tabs', () => {
    const got = parseHead(['HTTP/1.1 200 OK', 'X: a ', ' \t b  ', '\t', ' c\xa0', 'Y:', ' z'].join('\r\n'));
    assert.deepEqual(own(got.headers), { x: 'a b c\xa0', y: 'z' });
  });

  it('reads the status and reason phrase', () => {
    assert.deepEqual(
      [
        'HTTP/1.1 200 OK',
        'HTTP/1.0 503 Service Unavailable',
        'HTTP/1.1 200',
        'HTTP/1.1 200 ',
        'HTTP/1.1 418 I\tam a teapot \xe9',
      ].map((l) => {
        const { status, reason } = parseHead(l);
        return [status, reason];
      }),
      [
        [200, 'OK'],
        [503, 'Service Unavailable'],
        [200, ''],
        [200, ''],
        [418, 'I\tam a teapot \xe9'],
      ],
    );
  });
});

// A model of a valid response, its wire form (with the liberties a server may take: name case,
// optional whitespace, folding, hex case, leading zeros, extensions, trailers, interim answers) and
// the outcome the parser must report.
function randomResponse(rng: Rng): { wire: Buffer; options: ParserOptions; expected: Outcome } {
  const lines: string[] = [];
  const headers: Headers = {};
  const names = ['x-a', 'x-b', 'set-cookie', 'docker-content-digest', 'content-type', 'etag', 'x-c', 'link'];
  const ows = () => pick(rng, ['', ' ', '  ', '\t', ' \t']);
  const recase = (name: string) => Array.from(name, (c) => (rng() < 0.5 ? c.toUpperCase() : c)).join('');
  const valueChars = 'abcXYZ019 =;,/"\t\xe9\xff!~';
  const value = () => {
    let v = '';
    for (let n = int(rng, 0, 12); n > 0; n--) v += pick(rng, Array.from(valueChars));
    return v.replace(/^[\t ]+|[\t ]+$/g, '');
  };
  const field = (name: string, v: string, fold = false) => {
    if (fold && v.includes(' ')) {
      // Fold at a space: the parser joins the pieces with one space.
      const at = v.indexOf(' ');
      const left = v.slice(0, at).replace(/[\t ]+$/, '');
      const right = v.slice(at + 1).replace(/^[\t ]+/, '');
      lines.push(
        `${recase(name)}:${ows()}${left}${ows()}`,
        `${pick(rng, [' ', '\t', '  '])}${right}${ows()}`,
      );
      return left === '' ? right : right === '' ? left : `${left} ${right}`;
    }
    lines.push(`${recase(name)}:${ows()}${v}${ows()}`);
    return v;
  };
  const add = (name: string, v: string) => {
    const previous = headers[name];
    if (name === 'set-cookie') headers[name] = [...((previous as string[] | undefined) ?? []), v];
    else headers[name] = previous === undefined ? v : `${previous as string}, ${v}`;
  };

  const interim: string[] = [];
  for (let n = rng() < 0.2 ? int(rng, 1, 2) : 0; n > 0; n--) {
    interim.push(
      head(`HTTP/1.1 ${pick(rng, [100, 102, 103])} ${pick(rng, ['Continue', 'Early Hints', ''])}`, 'X-I: 1'),
    );
  }
  const status = pick(rng, [200, 200, 200, 201, 202, 206, 204, 304, 307, 401, 404, 416, 500, 503]);
  const reason = pick(rng, ['', 'OK', 'Something Else', 'caf\xe9']);
  const statusLine = `HTTP/1.${int(rng, 0, 1)} ${status}${reason === '' && rng() < 0.5 ? '' : ` ${reason}`}`;
  const headRequest = rng() < 0.1;
  const bodiless = headRequest || status === 204 || status === 304;
  const framing = pick(rng, ['length', 'length', 'chunked', 'chunked', 'close'] as const);
  const body = bodiless
    ? Buffer.alloc(0)
    : payload(pick(rng, [0, 1, 2, int(rng, 3, 300), int(rng, 300, 5000)]), int(rng, 0, 1e9));

  for (let n = int(rng, 0, 8); n > 0; n--) {
    const name = pick(rng, names);
    add(name, field(name, value(), rng() < 0.2));
  }
  if (framing === 'length') add('content-length', field('content-length', String(body.length)));
  if (framing === 'chunked')
    add('transfer-encoding', field('transfer-encoding', pick(rng, ['chunked', 'Chunked', 'CHUNKED'])));

  let message: Buffer = Buffer.alloc(0);
  if (!bodiless && framing === 'chunked') {
    const parts: Buffer[] = [];
    for (let at = 0; at < body.length; ) {
      const n = Math.min(body.length - at, pick(rng, [1, 2, int(rng, 1, 64), int(rng, 64, 2000)]));
      let hex = n.toString(16);
      if (rng() < 0.3) hex = hex.toUpperCase();
      const ext = rng() < 0.2 ? `${ows()};${pick(rng, ['a', 'a=b', 'a="b;c"', 'x=1;y'])}` : '';
      parts.push(
        latin1(`${'0'.repeat(rng() < 0.2 ? int(rng, 1, 4) : 0)}${hex}${ext}\r\n`),
        body.subarray(at, at + n),
        latin1('\r\n'),
      );
      at += n;
    }
    let trailers = '';
    for (let n = rng() < 0.3 ? int(rng, 1, 3) : 0; n > 0; n--) trailers += `X-T${n}:${ows()}${value()}\r\n`;
    parts.push(latin1(`${'0'.repeat(int(rng, 1, 3))}${rng() < 0.2 ? ';end' : ''}\r\n${trailers}\r\n`));
    message = Buffer.concat(parts);
  } else if (!bodiless) message = body;

  const closes = !bodiless && framing === 'close';
  const extra = closes ? Buffer.alloc(0) : latin1(rng() < 0.3 ? 'HTTP/1.1 200 OK\r\n\r\nnext' : '');
  const wire = bytes(...interim, head(statusLine, ...lines), message, extra);
  return {
    wire,
    options: { headRequest },
    expected: { status, reason, headers, body, end: closes ? 'close' : 'feed' },
  };
}

describe('ResponseParser: random valid responses', () => {
  it('400 seeded responses give their model in one piece, byte by byte and in random chunkings', () => {
    const rng = mulberry32(20240601);
    for (let n = 0; n < 400; n++) {
      const { wire, options, expected } = randomResponse(rng);
      const label = `case ${n}: ${JSON.stringify(wire.subarray(0, 300).toString('latin1'))}`;
      assert.deepEqual(run([wire], options), expected, label);
      if (wire.length < 800) {
        assert.deepEqual(
          run(
            Array.from(wire, (_, i) => wire.subarray(i, i + 1)),
            options,
          ),
          expected,
          label,
        );
      }
      for (let k = 0; k < 6; k++) {
        const got = run(randomPieces(wire, mulberry32(n * 100 + k)), options);
        if (!sameOutcome(got, expected)) assert.deepEqual(got, expected, `${label}, chunking ${k}`);
      }
      // Cut anywhere before its end, a self-delimited response fails as premature.
      const cut = int(rng, 0, wire.length - 1);
      const got = run([wire.subarray(0, cut)], options);
      if (expected.end === 'close' && got.status !== undefined) assert.equal(got.error, undefined, label);
      else if (got.end === 'none') assert.equal(got.error?.premature, true, label);
    }
  });
});

describe('ResponseParser: whether the connection may carry another request', () => {
  const events = { onHead: () => {}, onBody: () => {}, onEnd: () => {} };
  const after = (pieces: string[], options: ParserOptions = {}, end = false) => {
    const parser = new ResponseParser(events, options);
    for (const piece of pieces) parser.feed(Buffer.from(piece, 'latin1'));
    if (end) parser.end();
    return parser;
  };
  const LENGTH = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';
  const CHUNKED = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n';

  it('is reusable after a body framed by its length or by chunks, a bodiless status and a HEAD answer', () => {
    assert.equal(after([LENGTH]).reusable, true);
    assert.equal(after([CHUNKED]).reusable, true);
    assert.equal(after(['HTTP/1.1 204 No Content\r\n\r\n']).reusable, true);
    assert.equal(
      after(['HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n'], { headRequest: true }).reusable,
      true,
    );
    // Every split gives the same answer.
    for (let at = 1; at < CHUNKED.length; at++) {
      assert.equal(after([CHUNKED.slice(0, at), CHUNKED.slice(at)]).reusable, true, `split at ${at}`);
    }
  });

  it('is not reusable before the end, after a close-delimited body, or with bytes after the message', () => {
    assert.equal(after([LENGTH.slice(0, -1)]).reusable, false);
    assert.equal(after(['HTTP/1.1 200 OK\r\n\r\nuntil the end'], {}, true).reusable, false);
    assert.equal(after([`${LENGTH}H`]).reusable, false);
    assert.equal(after([LENGTH, 'HTTP/1.1 200 OK\r\n']).reusable, false);
    assert.equal(after([`${CHUNKED}\r\n`]).reusable, false);
  });

  it('follows the answer’s wish: Connection: close, and HTTP/1.0 unless it says keep-alive', () => {
    const with_ = (status: string, connection?: string) =>
      after([
        `${status}\r\nContent-Length: 5\r\n${connection === undefined ? '' : `Connection: ${connection}\r\n`}\r\nhello`,
      ]).reusable;
    assert.equal(with_('HTTP/1.1 200 OK', 'close'), false);
    assert.equal(with_('HTTP/1.1 200 OK', 'Keep-Alive, Close'), false);
    assert.equal(with_('HTTP/1.1 200 OK', 'keep-alive'), true);
    assert.equal(with_('HTTP/1.0 200 OK'), false);
    assert.equal(with_('HTTP/1.0 200 OK', 'Keep-Alive'), true);
  });
});
