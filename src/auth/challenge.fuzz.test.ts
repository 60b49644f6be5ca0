import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  assertFast,
  expectResultOrError,
  expectResultOrErrorAsync,
  HOSTILE_KEYS,
  HOSTILE_STRINGS,
  mutateJson,
  Rng,
  wrongValues,
} from '../../test/harness/fuzz.js';
import {
  anyString,
  hostileKey,
  hostileNumber,
  jsonInput,
  nearRecord,
  outcome,
  params,
  stringOf,
} from '../../test/harness/properties.js';
import type { HttpEngine, HttpRequest, HttpResponse } from '../transport/types.js';
import { Authorizer, type Credential, parseTokenResponse } from './authorizer.js';
import { parseChallenges } from './challenge.js';
import { normalizeScopes } from './scope.js';

/**
 * Seeded fuzzing of what registries and token servers send: WWW-Authenticate headers (never an
 * exception: malformed parts are skipped), token responses (a token or a REGISTRY error), and the
 * whole 401 dance through a fake engine answering with mutated challenges and token bodies.
 */

const SEEDS = [11, 12, 13];
const TOKEN_CHARS = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const HEADER_ALPHABET = 'Bearer Basic realm="https://a/t",service=x scope="repository:a:pull,push" \\"=,\t';
const GOOD_HEADERS = [
  'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"',
  'Basic realm="Registry Realm"',
  'Bearer realm="https://a/t",scope="repository:a:pull repository:b:pull,push", Basic realm="x"',
  'Negotiate abc/def+ghi==, Bearer realm="http://127.0.0.1:1/token"',
];

function mutateHeader(rng: Rng, header: string): string {
  const at = rng.int(header.length + 1);
  switch (rng.int(6)) {
    case 0:
      return header.slice(0, at);
    case 1:
      return header.slice(0, at) + rng.string(1 + rng.int(6), HEADER_ALPHABET) + header.slice(at);
    case 2:
      return header.slice(0, at) + rng.pick(HOSTILE_STRINGS) + header.slice(at);
    case 3:
      return `${header}, ${rng.pick(HOSTILE_KEYS)}=${rng.pick(['"x"', 'x', '"', '=', ''])}`;
    case 4:
      return header.slice(0, at) + header.slice(at + 1 + rng.int(5));
    default:
      return rng.string(rng.int(80));
  }
}

function checkChallenges(header: string, context: string): ReturnType<typeof parseChallenges> {
  const challenges = parseChallenges(header);
  assert.ok(Array.isArray(challenges), context);
  for (const c of challenges) {
    assert.match(c.scheme, TOKEN_CHARS, `${context}: scheme ${JSON.stringify(c.scheme)}`);
    assert.equal(Object.getPrototypeOf(c.params), Object.prototype, `${context}: params prototype changed`);
    for (const [k, v] of Object.entries(c.params)) {
      assert.equal(k, k.toLowerCase(), context);
      assert.equal(typeof v, 'string', `${context}: param ${k} is ${typeof v}`);
    }
    if (c.token68 !== undefined) assert.match(c.token68, /^[A-Za-z0-9\-._~+/]+=*$/, context);
    if (typeof c.params.scope === 'string') {
      const scopes = normalizeScopes([c.params.scope]);
      assert.deepEqual(normalizeScopes(scopes), scopes, `${context}: normalizeScopes is not idempotent`);
    }
  }
  return challenges;
}

describe('parseChallenges fuzzing', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: mutated and random headers give well-formed challenges, never an exception`, () => {
      const rng = new Rng(seed);
      for (let i = 0; i < 700; i++) {
        let header = rng.pick(GOOD_HEADERS);
        for (let n = 1 + rng.int(3); n > 0; n--) header = mutateHeader(rng, header);
        const context = `seed ${seed} case ${i}: ${JSON.stringify(header.slice(0, 120))}`;
        checkChallenges(header, context);
      }
    });
  }

  it('every truncation of a challenge parses', () => {
    for (const header of GOOD_HEADERS)
      for (let i = 0; i <= header.length; i++) checkChallenges(header.slice(0, i), `${header} at ${i}`);
  });

  it('headers as long as a response head (64 KiB) are parsed in linear time', () => {
    const n = 64 * 1024;
    const crafted = [
      'a '.repeat(n / 2),
      'a,'.repeat(n / 2),
      `Bearer ${'a=b,'.repeat(n / 4)}`,
      `Bearer realm="${'\\"'.repeat(n / 2)}`,
      `Bearer ${'a'.repeat(n)}!`,
      `x ${'a=='.repeat(n / 3)}`,
      `Bearer ${'realm='.repeat(n / 6)}`,
      '"'.repeat(n),
    ];
    for (const header of crafted)
      assertFast(1500, header.slice(0, 16), () => checkChallenges(header, 'long'));
  });
});

const TOKEN_BODIES: unknown[] = [
  { token: 'abc.def.ghi', expires_in: 300, issued_at: '2024-01-01T00:00:00Z' },
  { access_token: 'xyz', expires_in: 60 },
  { token: '', access_token: 'fallback' },
];

describe('parseTokenResponse fuzzing', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: mutated token bodies give a usable token or REGISTRY`, () => {
      const rng = new Rng(seed);
      const now = 1_700_000_000_000;
      for (let i = 0; i < 500; i++) {
        const text = mutateJson(rng, rng.pick(TOKEN_BODIES));
        const context = `seed ${seed} case ${i}`;
        expectResultOrError(
          () => parseTokenResponse(text, 'auth.example', now),
          ['REGISTRY'],
          context,
          text,
          (t) => {
            assert.match(t.token, /^[\x21-\x7e]+$/, `${context}: token unfit for a header`);
            assert.ok(Number.isFinite(t.expiresAt), `${context}: expiry ${t.expiresAt}`);
            assert.ok(t.expiresAt <= now + 24 * 3600 * 1000, `${context}: lifetime beyond a day`);
          },
        );
      }
    });
  }
});

function response(
  status: number,
  headers: Record<string, string>,
  body: string | Buffer,
  url: URL,
): HttpResponse {
  return { status, headers, body: Readable.from([Buffer.from(body)]), url };
}

describe('Authorizer fuzzing (fake token server)', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: a 401 with a mutated challenge and a mutated token answer ends in a result or a WasmOciError`, async () => {
      const rng = new Rng(seed);
      for (let i = 0; i < 150; i++) {
        const tokenStatus = rng.pick([200, 200, 200, 401, 403, 404, 405, 500]);
        const tokenBody = rng.bool(0.2)
          ? rng.bytes(rng.int(64))
          : Buffer.from(
              rng.bool(0.3)
                ? JSON.stringify(rng.pick(TOKEN_BODIES))
                : mutateJson(rng, rng.pick(TOKEN_BODIES)),
            );
        const requests: HttpRequest[] = [];
        const engine: HttpEngine = {
          request: async (req) => {
            requests.push(req);
            return response(tokenStatus, { 'content-type': 'application/json' }, tokenBody, req.url);
          },
        };
        const credential: Credential | undefined = rng.pick([
          undefined,
          { username: 'u', password: 'p' },
          { identityToken: 'refresh' },
          { username: rng.pick(HOSTILE_STRINGS), password: JSON.stringify(rng.pick(wrongValues(rng))) },
        ]);
        const auth = new Authorizer({
          engine,
          credentials: async () => credential,
          registryUrl: () => new URL('https://registry.example'),
          now: () => 1_700_000_000_000,
        });
        let header = rng.pick(GOOD_HEADERS);
        for (let n = rng.int(3); n > 0; n--) header = mutateHeader(rng, header);
        const context = `seed ${seed} case ${i}: ${JSON.stringify(header.slice(0, 100))}`;
        const unauthorized = response(
          401,
          { 'www-authenticate': header },
          '',
          new URL('https://registry.example/v2/'),
        );
        const codes = ['REGISTRY', 'UNAUTHORIZED', 'DENIED', 'NOT_FOUND', 'TOO_LARGE'];
        const scopes = ['repository:a/b:pull'];
        const retry = await expectResultOrErrorAsync(
          () => auth.onUnauthorized('registry.example', unauthorized, scopes, rng.bool(), undefined),
          codes,
          context,
          header,
        );
        if (retry === true) {
          await expectResultOrErrorAsync(
            () => auth.authorization('registry.example', scopes),
            codes,
            context,
            header,
            (value) => {
              if (value !== undefined) assert.match(value, /^(Basic|Bearer) [\x21-\x7e]+$/, context);
            },
          );
        }
        for (const req of requests) {
          assert.ok(req.url.protocol === 'https:' || req.url.protocol === 'http:', context);
          // Secrets never travel in clear text to a realm that is not on this machine.
          const secret =
            credential?.identityToken !== undefined ||
            (credential?.username !== undefined &&
              credential.username !== '' &&
              credential.password !== undefined);
          if (req.url.protocol === 'http:' && secret)
            assert.match(req.url.hostname, /^(127\.|localhost$|\[::1\]$)/, context);
        }
      }
    });
  }
});

describe('WWW-Authenticate and token response properties (fast-check)', () => {
  const token = fc.constantFrom('Bearer', 'Basic', 'Negotiate', 'bearer', 'x-Custom', 'realm', '');
  const quoted = anyString(20).map((s) => `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`);
  const value = fc.oneof(
    fc.constantFrom('"https://auth.example/token"', '"registry.example"', '"repository:a/b:pull,push"', 'x'),
    quoted,
    anyString(10),
    fc.constantFrom('"', '"\\', '=', '', '"a\\"b"'),
  );
  const param = fc
    .tuple(
      fc.oneof(fc.constantFrom('realm', 'service', 'scope', 'error', 'REALM'), hostileKey),
      fc.constantFrom('=', ' = ', '=='),
      value,
    )
    .map(([k, eq, v]) => `${k}${eq}${v}`);
  const challenge = fc
    .tuple(
      token,
      fc.constantFrom(' ', '  ', '\t', ''),
      fc.oneof(
        fc.array(param, { maxLength: 5 }).map((ps) => ps.join(',')),
        fc.constantFrom('abc/def+ghi==', '='),
      ),
    )
    .map(([scheme, space, rest]) => `${scheme}${space}${rest}`);
  const header = fc.oneof(
    { weight: 4, arbitrary: fc.array(challenge, { minLength: 1, maxLength: 3 }).map((cs) => cs.join(', ')) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 120 }) },
    { weight: 1, arbitrary: stringOf([...HEADER_ALPHABET], 60) },
  );

  it('any header gives well-formed challenges, never an exception', () => {
    fc.assert(
      fc.property(header, (h) => {
        outcome(() => checkChallenges(h, JSON.stringify(h)), [], h);
      }),
      params(0xa17401, 1500),
    );
  });

  it('a repeated piece is parsed in linear time at any length', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('', 'Bearer ', 'Bearer realm="', 'x '),
        fc.constantFrom('a ', 'a,', 'a=b,', '\\"', 'a', 'a==', 'realm=', '"', ', ', '=', ' '),
        fc.integer({ min: 1000, max: 30_000 }),
        (head, piece, n) => {
          const h = `${head}${piece.repeat(n)}!`;
          outcome(() => parseChallenges(h), [], h, undefined, 500);
        },
      ),
      params(0xa17402, 60),
    );
  });

  const NOW = 1_700_000_000_000;
  const tokenBody = nearRecord({
    token: fc.oneof(fc.constantFrom('abc.def.ghi', 'x'), anyString(20)),
    access_token: fc.oneof(fc.constantFrom('xyz', ''), anyString(20)),
    refresh_token: anyString(20),
    expires_in: fc.oneof(fc.constantFrom(60, 300, 0, -1, 86_400 * 365), hostileNumber),
    issued_at: fc.oneof(
      fc.constantFrom('2024-01-01T00:00:00Z', '2023-11-14T22:13:20Z', '9999-12-31T23:59:59Z', 'yesterday'),
      fc.date({ noInvalidDate: true }).map((dt) => dt.toISOString()),
      anyString(),
    ),
  });

  it('any token answer gives a token fit for a header with a bounded lifetime, or REGISTRY', () => {
    let tokens = 0;
    fc.assert(
      fc.property(jsonInput(tokenBody), (bytes) => {
        const text = bytes.toString('utf8');
        outcome(
          () => parseTokenResponse(text, 'auth.example', NOW),
          ['REGISTRY'],
          text,
          (t) => {
            tokens++;
            assert.match(t.token, /^[\x21-\x7e]+$/, 'token unfit for a header');
            assert.ok(Number.isFinite(t.expiresAt), `expiry ${t.expiresAt}`);
            assert.ok(t.expiresAt <= NOW + 24 * 3600 * 1000, 'lifetime beyond a day');
          },
        );
      }),
      params(0xa17403, 1500),
    );
    assert.ok(tokens > 100, `only ${tokens} token answers accepted`);
  });
});
