import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  assertFast,
  expectResultOrError,
  expectResultOrErrorAsync,
  HOSTILE_STRINGS,
  mutateBytesN,
  mutateJson,
  Rng,
} from '../../test/harness/fuzz.js';
import {
  anyString,
  hostileValue,
  jsonInput,
  mostly,
  nearRecord,
  outcome,
  outcomeAsync,
  params,
  stringOf,
} from '../../test/harness/properties.js';
import { isValidTag } from '../reference.js';
import type { HttpResponse } from '../transport/types.js';
import { parseErrorBody, rateLimitError, registryCodes, responseError } from './errors.js';
import { nextLink, parseTagPage } from './repository.js';

/**
 * Seeded fuzzing of what a registry sends besides manifests and blobs: tag-list pages (tags or
 * REGISTRY), Link headers (a target or none, in linear time), error bodies (entries or none) and the
 * errors built from them (one WasmOciError whatever the body and headers).
 */

const SEEDS = [51, 52, 53];
const PAGES: unknown[] = [
  { name: 'a/b', tags: ['v1', 'latest', '1.0.0', '_x'] },
  { name: 'a/b', tags: null },
  { tags: [] },
];
const ERRORS: unknown[] = [
  {
    errors: [
      { code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: { Tag: 'v1' } },
      { code: 'DENIED', message: 'requested access to the resource is denied' },
    ],
  },
  {
    errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail: [{ Type: 'repository' }] }],
  },
];
const LINKS = [
  '</v2/a/tags/list?n=2&last=b>; rel="next"',
  '<https://r.example/v2/a/tags/list?last=x>; rel=next, <https://r.example/other>; rel="prev"',
  '</v2/x>; title="a, b"; rel="first next"',
  '</a>;rel=prev;rel=next',
];
const LINK_ALPHABET = '<>;,="relnxt /?&a\\';

/** The Link parser before it was made linear: the oracle for small inputs. */
function oldNextLink(value: string | undefined): string | undefined {
  if (!value) return undefined;
  for (const match of value.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]*)*)/g)) {
    const params = match[2] ?? '';
    if (/;\s*rel\s*=\s*(?:"[^"]*\bnext\b[^"]*"|next\b)/i.test(params)) return match[1];
  }
  return undefined;
}

function mutateText(rng: Rng, text: string): string {
  const at = rng.int(text.length + 1);
  switch (rng.int(4)) {
    case 0:
      return text.slice(0, at);
    case 1:
      return text.slice(0, at) + rng.string(1 + rng.int(5), LINK_ALPHABET) + text.slice(at);
    case 2:
      return text.slice(0, at) + rng.pick(HOSTILE_STRINGS) + text.slice(at);
    default:
      return text.slice(0, at) + text.slice(at + 1 + rng.int(4));
  }
}

function response(status: number, headers: Record<string, string>, body: Buffer | string): HttpResponse {
  return {
    status,
    headers,
    body: Readable.from([Buffer.from(body)]),
    url: new URL('https://r.example/v2/'),
  };
}

describe('parseTagPage fuzzing', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: mutated tag pages give valid tags or REGISTRY`, () => {
      const rng = new Rng(seed);
      for (let i = 0; i < 600; i++) {
        const text =
          i % 8 === 7
            ? mutateBytesN(rng, Buffer.from(JSON.stringify(rng.pick(PAGES))), 2)
            : Buffer.from(mutateJson(rng, rng.pick(PAGES)));
        const context = `seed ${seed} case ${i}`;
        expectResultOrError(
          () => parseTagPage(text, 'r.example/a'),
          ['REGISTRY'],
          context,
          text,
          (tags) => {
            assert.ok(Array.isArray(tags), context);
            for (const t of tags) assert.ok(typeof t === 'string' && isValidTag(t), `${context}: tag ${t}`);
          },
        );
      }
    });
  }

  it('a 4 MiB page of tags is read quickly', () => {
    const tags = Array.from({ length: 200_000 }, (_, i) => (i % 3 ? `v${i}` : `bad tag ${i}`));
    const page = Buffer.from(JSON.stringify({ name: 'a', tags }));
    const got = assertFast(3000, 'big page', () => parseTagPage(page, 'r'));
    assert.equal(got.length, tags.filter((t) => !t.includes(' ')).length);
  });
});

describe('nextLink fuzzing', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: mutated Link headers agree with the old parser and never throw`, () => {
      const rng = new Rng(seed + 10);
      for (let i = 0; i < 1500; i++) {
        let header = i % 5 === 0 ? rng.string(rng.int(60), LINK_ALPHABET) : rng.pick(LINKS);
        for (let n = rng.int(4); n > 0; n--) header = mutateText(rng, header);
        const got = nextLink(header);
        assert.ok(got === undefined || (typeof got === 'string' && !got.includes('<') && !got.includes('>')));
        // A target holding `<` is read differently on purpose (it starts at the last `<`).
        if (!/<[^>]*</.test(header)) assert.equal(got, oldNextLink(header), JSON.stringify(header));
      }
    });
  }

  it('crafted headers are parsed in linear time (regression)', () => {
    // `<<<<...` (no `>`) took ~10 s for 64 KiB and `rel="next next next...` (unclosed) grew
    // quadratically: both are headers a hostile registry can send.
    const n = 256 * 1024;
    const crafted = [
      '<'.repeat(n),
      `<a>;rel="${'next '.repeat(n / 5)}`,
      `<a>${';rel="next '.repeat(n / 11)}`,
      `<a>${'; '.repeat(n / 2)}`,
      `<a>;${' '.repeat(n)}<`,
      '<a>'.repeat(n / 3),
      `<${'a'.repeat(n)}`,
      `<a>;rel="${'"'.repeat(n)}`,
    ];
    for (const header of crafted) assertFast(1500, header.slice(0, 12), () => nextLink(header));
  });
});

describe('registry error bodies fuzzing', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: mutated error bodies give entries of strings, and one WasmOciError`, async () => {
      const rng = new Rng(seed + 20);
      for (let i = 0; i < 400; i++) {
        const text =
          i % 6 === 5 ? rng.bytes(rng.int(80)).toString('latin1') : mutateJson(rng, rng.pick(ERRORS));
        const context = `seed ${seed} case ${i}`;
        expectResultOrError(
          () => parseErrorBody(text),
          [],
          context,
          text,
          (entries) => {
            assert.ok(entries.length <= 20, context);
            for (const e of entries) {
              assert.equal(typeof e.code, 'string', context);
              assert.ok(e.code.length <= 100, context);
              assert.ok(
                e.message === undefined || (typeof e.message === 'string' && e.message.length <= 500),
              );
            }
          },
        );
        const status = rng.pick([400, 401, 403, 404, 405, 429, 500, 503, 418]);
        const headers: Record<string, string> = rng.bool()
          ? {}
          : {
              'retry-after': rng.pick([
                '1',
                '120',
                'Wed, 21 Oct 2015 07:28:00 GMT',
                '-1',
                '1e400',
                rng.string(8),
              ]),
              'ratelimit-limit': rng.pick(['100;w=21600', '0', '', rng.string(12)]),
              'ratelimit-remaining': rng.pick(['0;w=21600', '0', rng.string(6)]),
              'ratelimit-reset': rng.pick(['99999999999999999999', '10', rng.string(6)]),
            };
        const err = await expectResultOrErrorAsync(
          () => responseError(response(status, headers, text), 'get manifest of r/a:v1'),
          [],
          context,
          text,
          (e) => {
            assert.ok(
              ['REGISTRY', 'UNAUTHORIZED', 'DENIED', 'NOT_FOUND'].includes(e.code),
              `${context}: ${e.code}`,
            );
            assert.ok(e.message.length < 2000, `${context}: message of ${e.message.length} characters`);
            assert.ok(
              registryCodes(e).every((c) => typeof c === 'string'),
              context,
            );
          },
        );
        assert.ok(err);
        await expectResultOrErrorAsync(
          () => rateLimitError(response(429, headers, text), 'r.example', 1_700_000_000_000),
          [],
          context,
          headers,
          (e) => assert.equal(e.code, 'RATE_LIMITED', context),
        );
      }
    });
  }
});

describe('tag list, Link header and error body properties (fast-check)', () => {
  const tagValue = mostly(
    fc.oneof(
      fc.constantFrom('v1', 'latest', '1.0.0', '_x', 't'.repeat(128)),
      fc.stringMatching(/^[\w][\w.-]{0,20}$/),
    ),
    fc.oneof(anyString(20), hostileValue),
    4,
  );
  const page = nearRecord({
    name: mostly(fc.constantFrom('a/b', 'r.example/a')),
    tags: mostly(fc.oneof(fc.array(tagValue, { maxLength: 8 }), fc.constant(null)), hostileValue, 6),
  });

  it('any tag page gives valid tags or REGISTRY', () => {
    let pages = 0;
    fc.assert(
      fc.property(jsonInput(page), (bytes) => {
        outcome(
          () => parseTagPage(bytes, 'r.example/a'),
          ['REGISTRY'],
          bytes,
          (tags) => {
            pages++;
            assert.ok(Array.isArray(tags));
            for (const t of tags) assert.ok(typeof t === 'string' && isValidTag(t), `tag ${t}`);
          },
        );
      }),
      params(0x7a9501, 1500),
    );
    assert.ok(pages > 300, `only ${pages} pages read`);
  });

  const target = fc.oneof(
    fc.constantFrom('/v2/a/tags/list?n=2&last=b', 'https://r.example/v2/a/tags/list?last=x', ''),
    anyString(20).map((s) => s.replace(/[<>]/g, '')),
  );
  const linkParam = fc.oneof(
    fc.constantFrom(
      'rel="next"',
      'rel=next',
      'rel="prev"',
      'rel="first next"',
      'REL = "Next"',
      'title="a, b"',
    ),
    stringOf([...LINK_ALPHABET], 12),
  );
  const link = fc
    .tuple(target, fc.array(linkParam, { maxLength: 3 }), fc.constantFrom(';', '; ', ' ;'))
    .map(([t, ps, sep]) => `<${t}>${ps.map((p) => `${sep}${p}`).join('')}`);
  const header = fc.oneof(
    { weight: 4, arbitrary: fc.array(link, { minLength: 1, maxLength: 3 }).map((ls) => ls.join(', ')) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
    { weight: 1, arbitrary: stringOf([...LINK_ALPHABET], 60) },
  );

  it('any Link header gives a target agreeing with the old parser, or none, never an exception', () => {
    fc.assert(
      fc.property(header, (h) => {
        const got = outcome(() => nextLink(h), [], h);
        assert.ok(got === undefined || (typeof got === 'string' && !got.includes('<') && !got.includes('>')));
        if (!/<[^>]*</.test(h)) assert.equal(got, oldNextLink(h), JSON.stringify(h));
      }),
      params(0x7a9502, 2000),
    );
  });

  it('a repeated piece of a Link header is parsed in linear time at any length', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('', '<a>', '<a>;rel="', '<'),
        fc.constantFrom('<', 'next ', ';rel="next ', '; ', ' ', '<a>', 'a', '"', ',', ';'),
        fc.integer({ min: 1000, max: 50_000 }),
        (head, piece, n) => {
          const h = `${head}${piece.repeat(n)}`;
          outcome(() => nextLink(h), [], h, undefined, 500);
        },
      ),
      params(0x7a9503, 60),
    );
  });

  const errorEntry = nearRecord({
    code: mostly(
      fc.constantFrom('MANIFEST_UNKNOWN', 'DENIED', 'UNAUTHORIZED', 'TOOMANYREQUESTS', 'x'.repeat(200)),
    ),
    message: mostly(fc.constantFrom('manifest unknown', 'm'.repeat(1000))),
    detail: fc.jsonValue({ maxDepth: 3 }),
  });
  const errorBody = nearRecord({ errors: mostly(fc.array(errorEntry, { maxLength: 25 }), hostileValue, 4) });
  const headers = fc.dictionary(
    fc.constantFrom(
      'retry-after',
      'ratelimit-limit',
      'ratelimit-remaining',
      'ratelimit-reset',
      'content-type',
    ),
    fc.oneof(
      fc.constantFrom(
        '1',
        '120',
        'Wed, 21 Oct 2015 07:28:00 GMT',
        '-1',
        '1e400',
        '0;w=21600',
        '99999999999999999999',
      ),
      anyString(12),
    ),
  );

  it('an error body of many long entries gives a short message (regression)', async () => {
    // 20 entries of a 100-character code and a 500-character message were all quoted: 12 KB of message.
    const errors = Array.from({ length: 20 }, () => ({ code: 'C'.repeat(100), message: 'm'.repeat(500) }));
    const e = await responseError(response(400, {}, JSON.stringify({ errors })), 'get manifest of r/a:v1');
    assert.ok(e.message.length < 2000, `message of ${e.message.length} characters`);
    assert.match(e.message, /^get manifest of r\/a:v1: HTTP 400 \(C{100}: m{500}; C+.*\.\.\.\)$/);
    assert.equal(registryCodes(e).length, 20);
  });

  it('any error body and headers give entries of bounded strings and one WasmOciError', async () => {
    await fc.assert(
      fc.asyncProperty(
        jsonInput(errorBody),
        fc.constantFrom(400, 401, 403, 404, 405, 429, 500, 503, 418),
        headers,
        async (bytes, status, hs) => {
          const text = bytes.toString('latin1');
          outcome(
            () => parseErrorBody(text),
            [],
            text,
            (entries) => {
              assert.ok(entries.length <= 20);
              for (const e of entries) {
                assert.ok(typeof e.code === 'string' && e.code.length <= 100);
                assert.ok(
                  e.message === undefined || (typeof e.message === 'string' && e.message.length <= 500),
                );
              }
            },
          );
          await outcomeAsync(
            () => responseError(response(status, hs, bytes), 'get manifest of r/a:v1'),
            [],
            text,
            (e) => {
              assert.ok(['REGISTRY', 'UNAUTHORIZED', 'DENIED', 'NOT_FOUND'].includes(e.code), e.code);
              assert.ok(
                !/[\r\n]/.test(e.message),
                `message of more than one line: ${JSON.stringify(e.message)}`,
              );
              assert.ok(e.message.length < 2000, `message of ${e.message.length} characters`);
              assert.ok(registryCodes(e).every((c) => typeof c === 'string'));
            },
          );
          await outcomeAsync(
            () => rateLimitError(response(429, hs, bytes), 'r.example', 1_700_000_000_000),
            [],
            hs,
            (e) => {
              assert.equal(e.code, 'RATE_LIMITED');
              assert.ok(
                !/[\r\n]/.test(e.message),
                `message of more than one line: ${JSON.stringify(e.message)}`,
              );
            },
          );
        },
      ),
      params(0x7a9504, 500),
    );
  });
});
