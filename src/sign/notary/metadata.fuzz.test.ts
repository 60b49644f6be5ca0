import assert from 'node:assert/strict';
import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  assertFast,
  DEPTHS,
  deepJson,
  expectResultOrError,
  expectResultOrErrorAsync,
  HOSTILE_KEYS,
  HOSTILE_STRINGS,
  mutateBytesN,
  mutateJson,
  Rng,
} from '../../../test/harness/fuzz.js';
import {
  anyString,
  hostileKey,
  hostileNumber,
  hostileValue,
  jsonInput,
  jsonText,
  mostly,
  nearRecord,
  optional,
  outcome,
  outcomeAsync,
  params,
} from '../../../test/harness/properties.js';
import { WasmOciError } from '../../errors.js';
import type { HttpEngine } from '../../transport/types.js';
import { canonicalJson } from './canonical.js';
import { findTarget, type TrustContext, updateCollection } from './collection.js';
import {
  certificateKey,
  generateEcdsaKey,
  keyCertificate,
  keyId,
  rootCertificate,
  rootCertificateProblem,
  signEcdsa,
  type TufKey,
  tufPublicKey,
} from './keys.js';
import { TrustDirectory } from './keystore.js';
import {
  type BaseRole,
  baseRoleTrust,
  cachedVersion,
  checkFileMeta,
  expiresIn,
  fileMeta,
  parseEnvelope,
  type RootSigned,
  serializeEnvelope,
  verifyThreshold,
} from './metadata.js';
import { TrustServer } from './server.js';

/**
 * Seeded fuzzing of Notary v1 / TUF trust data from a trust server: canonical JSON (integers only,
 * bounded nesting, TRUST otherwise), every metadata file mutated (and re-signed, so the checks behind
 * the signatures are reached too), the whole update workflow over a fake server, and the key and error
 * answers of a trust server. The answer is trust data or TRUST (REGISTRY for the server's answers);
 * lookups find own properties only.
 */

const SEEDS = [71, 72, 73];
const GUN = 'registry.example/hello';
const NOW = new Date('2025-01-01T00:00:00Z');

interface Signer {
  id: string;
  pub: TufKey;
  key: KeyObject;
}
function signer(root = false): Signer {
  const key = generateEcdsaKey();
  const pub = root
    ? certificateKey(rootCertificate(GUN, key, { now: NOW }))
    : tufPublicKey(createPublicKey(key));
  return { id: keyId(pub), pub, key };
}
const keys: Record<BaseRole, Signer> = {
  root: signer(true),
  targets: signer(),
  snapshot: signer(),
  timestamp: signer(),
};
const EXPIRES = expiresIn(NOW, { years: 1 });
const MODULE = Buffer.from('\0asm\x01\0\0\0');

const SIGNED: Record<BaseRole, () => Record<string, unknown>> = {
  root: () => ({
    _type: 'Root',
    consistent_snapshot: false,
    expires: EXPIRES,
    keys: Object.fromEntries(Object.values(keys).map((s) => [s.id, s.pub])),
    roles: Object.fromEntries(
      Object.entries(keys).map(([role, s]) => [role, { keyids: [s.id], threshold: 1 }]),
    ),
    version: 1,
  }),
  targets: () => ({
    _type: 'Targets',
    delegations: { keys: {}, roles: [] },
    expires: EXPIRES,
    targets: { v1: { ...fileMeta(MODULE), custom: { note: ['x', 1] } } },
    version: 1,
  }),
  snapshot: () => ({ _type: 'Snapshot', expires: EXPIRES, meta: {}, version: 1 }),
  timestamp: () => ({ _type: 'Timestamp', expires: EXPIRES, meta: {}, version: 1 }),
};

/**
 * An envelope signed by the role's key. Content canonical JSON refuses (a float, deep nesting) goes out
 * as its text `text`, with a signature that cannot match.
 */
function envelope(role: BaseRole, signed: unknown, text?: string): Buffer {
  const keyid = keys[role].id;
  try {
    const sig = signEcdsa(canonicalJson(signed), keys[role].key);
    return serializeEnvelope(signed as object, [{ keyid, method: 'ecdsa', sig }]);
  } catch {
    return Buffer.from(
      `{"signed":${text},"signatures":[{"keyid":"${keyid}","method":"ecdsa","sig":"c2ln"}]}`,
    );
  }
}

/**
 * A collection's four files, consistent with each other (snapshot lists root and targets, timestamp
 * lists snapshot), with `signed` of one role replaced: the files listing it are rebuilt and re-signed.
 */
function collection(replace?: { role: BaseRole; text: string }): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const build = (role: BaseRole, extra: (s: Record<string, unknown>) => void = () => {}) => {
    if (replace?.role === role) {
      let signed: unknown;
      try {
        signed = JSON.parse(replace.text);
      } catch {
        return Buffer.from(`{"signed":${replace.text},"signatures":[]}`);
      }
      return envelope(role, signed, replace.text);
    }
    const signed = SIGNED[role]();
    extra(signed);
    return envelope(role, signed);
  };
  const root = build('root');
  const targets = build('targets');
  const snapshot = build('snapshot', (s) => {
    s.meta = { root: fileMeta(root), targets: fileMeta(targets) };
  });
  const timestamp = build('timestamp', (s) => {
    s.meta = { snapshot: fileMeta(snapshot) };
  });
  files.set('root', root).set('targets', targets).set('snapshot', snapshot).set('timestamp', timestamp);
  return files;
}

function fakeServer(files: Map<string, Buffer>): TrustServer {
  return {
    url: new URL('https://trust.test/'),
    // `snapshot.<sha256 hex>` is the consistent name of the snapshot the timestamp lists.
    metadata: async (_gun: string, name: string) => files.get(name.replace(/\.[0-9a-f]{64}$/, '')),
  } as unknown as TrustServer;
}

function wellFormed(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

describe('canonical JSON fuzzing', () => {
  /** A random JSON value of integers, strings (no control characters), booleans, null, lists, maps. */
  function value(rng: Rng, depth: number): unknown {
    switch (depth > 4 ? rng.int(4) : rng.int(6)) {
      case 0:
        return rng.pick([0, -1, 2 ** 53 - 1, -(2 ** 53 - 1), rng.int(1e9)]);
      case 1:
        return wellFormed(rng.string(rng.int(12)).replace(/[\u0000-\u001f]/g, ''));
      case 2:
        return rng.pick([true, false, null]);
      case 3:
        return rng.pick(HOSTILE_KEYS);
      case 4:
        return Array.from({ length: rng.int(4) }, () => value(rng, depth + 1));
      default: {
        const out: Record<string, unknown> = {};
        for (let n = rng.int(5); n > 0; n--)
          Object.defineProperty(
            out,
            rng.pick([...HOSTILE_KEYS, wellFormed(rng.string(3).replace(/[\u0000-\u001f]/g, ''))]),
            {
              value: value(rng, depth + 1),
              enumerable: true,
              writable: true,
              configurable: true,
            },
          );
        return out;
      }
    }
  }

  for (const seed of SEEDS) {
    it(`seed ${seed}: canonical bytes parse back to the value, whatever its key order`, () => {
      const rng = new Rng(seed);
      for (let i = 0; i < 600; i++) {
        const v = value(rng, 0);
        const text = canonicalJson(v).toString('utf8');
        // Lone surrogates become U+FFFD in UTF-8, as Go's decoder makes them.
        assert.deepEqual(
          JSON.parse(text),
          JSON.parse(JSON.stringify(v), (_k, x) => (typeof x === 'string' ? wellFormed(x) : x)),
          text,
        );
        // The same value with its keys in reverse order encodes to the same bytes.
        const reversed = JSON.parse(JSON.stringify(v), (_k, x) =>
          typeof x === 'object' && x !== null && !Array.isArray(x)
            ? Object.fromEntries(Object.entries(x).reverse())
            : x,
        );
        assert.equal(canonicalJson(reversed).toString('utf8'), text);
      }
    });
  }

  it('refuses non-integers, other types and deep nesting with TRUST, never a TypeError or a stack overflow (regression)', () => {
    for (const bad of [
      1.5,
      -0.5,
      1e21,
      2 ** 53,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      { a: [0.1] },
      1n,
      () => 1,
      Symbol('s'),
    ]) {
      assert.throws(() => canonicalJson(bad), { code: 'TRUST' }, String(typeof bad));
    }
    for (const depth of [513, 3000, 12_000, 100_000]) {
      for (const kind of ['array', 'object', 'mixed'] as const) {
        assert.throws(
          () => canonicalJson(JSON.parse(deepJson(depth, kind))),
          { code: 'TRUST' },
          `${kind} ${depth}`,
        );
      }
    }
    assert.equal(canonicalJson(JSON.parse(deepJson(500, 'mixed'))).length, deepJson(500, 'mixed').length);
  });
});

describe('TUF metadata fuzzing', () => {
  const roles: BaseRole[] = ['root', 'targets', 'snapshot', 'timestamp'];
  const valid = collection();
  const root = parseEnvelope(valid.get('root') as Buffer, 'root', 'root').signed;

  for (const seed of SEEDS) {
    it(`seed ${seed}: mutated metadata files parse as their role or fail with TRUST`, () => {
      const rng = new Rng(seed + 10);
      let parsed = 0;
      for (let i = 0; i < 300; i++) {
        const role = rng.pick(roles);
        const raw = valid.get(role) as Buffer;
        const bytes =
          i % 6 === 5
            ? mutateBytesN(rng, raw, 1 + rng.int(3))
            : Buffer.from(mutateJson(rng, JSON.parse(raw.toString())));
        const context = `seed ${seed} case ${i} (${role})`;
        expectResultOrError(() => cachedVersion(bytes), [], context, bytes);
        const env = expectResultOrError(() => parseEnvelope(bytes, role, role), ['TRUST'], context, bytes);
        if (env instanceof Error) continue;
        parsed++;
        const trustRoot = role === 'root' ? (env.signed as RootSigned) : root;
        const trust = baseRoleTrust(trustRoot, role);
        expectResultOrError(() => verifyThreshold(env, trust, role), ['TRUST'], context, bytes);
        const metas =
          role === 'targets'
            ? Object.values((env.signed as { targets: object }).targets)
            : role === 'root'
              ? []
              : Object.values((env.signed as { meta: object }).meta);
        for (const meta of metas)
          expectResultOrError(() => checkFileMeta(MODULE, meta, 'm'), ['TRUST'], context, bytes);
      }
      assert.ok(parsed > 60, `only ${parsed} files parsed`);
    });
  }

  it('hostile keys and deep values in each role are refused or looked up as own properties', () => {
    for (const role of roles) {
      const base = SIGNED[role]();
      for (const key of Object.keys(base)) {
        for (const hostile of [...HOSTILE_KEYS, ...DEPTHS.map((d) => `deep${d}`)]) {
          const signed = JSON.parse(JSON.stringify(base));
          const inner = signed[key];
          const deep = hostile.startsWith('deep') ? deepJson(Number(hostile.slice(4)), 'mixed') : undefined;
          let text: string;
          if (deep) text = JSON.stringify({ ...signed, [key]: '@' }).replace('"@"', deep);
          else if (typeof inner === 'object' && inner !== null && !Array.isArray(inner)) {
            const first = Object.values(inner)[0] ?? { keyids: [], threshold: 1 };
            text = JSON.stringify(signed).replace(
              `"${key}":{`,
              `"${key}":{${JSON.stringify(hostile)}:${JSON.stringify(first)},`,
            );
          } else text = JSON.stringify(signed).replace(`"${key}":`, `${JSON.stringify(hostile)}:1,"${key}":`);
          const raw = Buffer.from(`{"signed":${text},"signatures":[]}`);
          expectResultOrError(
            () => parseEnvelope(raw, role, role),
            ['TRUST'],
            `${role} ${key} ${hostile}`,
            raw,
          );
        }
      }
    }
    // A root whose roles are only inherited names is refused.
    const roleless = Buffer.from(
      JSON.stringify({
        signed: { ...SIGNED.root(), roles: { constructor: {}, toString: {} } },
        signatures: [],
      }),
    );
    assert.throws(() => parseEnvelope(roleless, 'root', 'r'), { code: 'TRUST' });
  });

  it('an x509 key of repeated BEGIN lines and a certificate CN of stars are judged quickly (regression)', () => {
    // The lazy PEM regex rescanned from each BEGIN line (432 KB: ~7 s), /\*+$/ over a CN of stars was
    // quadratic too; both run on root keys before any signature is checked.
    const pem = '-----BEGIN CERTIFICATE-----\n'.repeat(40_000);
    const key: TufKey = { keytype: 'ecdsa-x509', keyval: { public: Buffer.from(pem).toString('base64') } };
    assertFast(1000, 'BEGIN lines', () => assert.throws(() => keyCertificate(key), /no certificate/));
    const stars = new X509Certificate(
      rootCertificate(`${'*'.repeat(60_000)}a*`, generateEcdsaKey(), { now: NOW }),
    );
    const problem = assertFast(1000, 'CN of stars', () =>
      rootCertificateProblem(stars, GUN, { checkExpiry: true, now: NOW }),
    );
    assert.match(problem ?? '', /is for/);
    const prefix = new X509Certificate(
      rootCertificate('registry.example/*', generateEcdsaKey(), { now: NOW }),
    );
    assert.equal(rootCertificateProblem(prefix, GUN, { checkExpiry: true, now: NOW }), undefined);
  });

  describe('the update workflow over a fake trust server', () => {
    let dir = '';
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-tuf-fuzz-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('verifies the unmutated collection', async () => {
      const ctx: TrustContext = {
        gun: GUN,
        server: fakeServer(valid),
        dir: new TrustDirectory(join(dir, 'ok')),
        now: NOW,
      };
      const trusted = await updateCollection(ctx);
      assert.ok(trusted);
      assert.equal((await findTarget(ctx, trusted, 'v1'))?.meta.length, MODULE.length);
      assert.equal(await findTarget(ctx, trusted, '__proto__'), undefined);
    });

    for (const seed of SEEDS) {
      it(`seed ${seed}: a collection with one re-signed mutated file is trusted or refused with TRUST`, async () => {
        const rng = new Rng(seed + 20);
        let trustedCount = 0;
        for (let i = 0; i < 25; i++) {
          const role = rng.pick(roles);
          const text = mutateJson(rng, JSON.parse((valid.get(role) as Buffer).toString()).signed);
          const files = collection({ role, text });
          const ctx: TrustContext = {
            gun: GUN,
            server: fakeServer(files),
            dir: new TrustDirectory(join(dir, `s${seed}-${i}`)),
            now: NOW,
          };
          const context = `seed ${seed} case ${i} (${role}): ${text.slice(0, 150)}`;
          const trusted = await expectResultOrErrorAsync(
            () => updateCollection(ctx),
            ['TRUST'],
            context,
            text,
          );
          if (trusted && !(trusted instanceof Error)) {
            trustedCount++;
            for (const name of ['v1', rng.pick(HOSTILE_KEYS), rng.pick(HOSTILE_STRINGS)])
              await expectResultOrErrorAsync(() => findTarget(ctx, trusted, name), ['TRUST'], context, name);
          }
        }
        // Some mutations (a custom field, an added key) keep a re-signed collection trustworthy.
        assert.ok(trustedCount > 0, 'no mutated collection was trusted');
      });
    }
  });
});

describe('trust server answers fuzzing', () => {
  it('key answers are a TUF key or REGISTRY; error bodies, however nested, give REGISTRY (regression)', async () => {
    // A 500 whose error detail nested deep made JSON.stringify overflow the stack while naming it.
    const rng = new Rng(74);
    const bodies = [
      '{"keytype":"ecdsa","keyval":{"public":"abc","private":null}}',
      '{"errors":[{"code":"UNKNOWN","message":"m","detail":{"a":1}}]}',
    ];
    for (let i = 0; i < 200; i++) {
      const base = rng.pick(bodies);
      const body =
        i < 6
          ? `{"errors":[{"code":"X","message":"m","detail":${deepJson(rng.pick([3000, 12_000, 30_000]), rng.pick(['array', 'object', 'mixed'] as const))}}]}`
          : mutateJson(rng, JSON.parse(base));
      const status = i < 6 ? 500 : rng.pick([200, 200, 404, 500, 503]);
      const engine: HttpEngine = {
        request: async (req) => ({
          status,
          headers: { 'content-type': 'application/json' },
          body: Readable.from([Buffer.from(body)]),
          url: req.url,
        }),
      };
      const server = new TrustServer('https://trust.test/', { engine, retry: { attempts: 1, resumes: 0 } });
      const context = `case ${i}: ${body.slice(0, 120)}`;
      try {
        await expectResultOrErrorAsync(
          () => server.key(GUN, 'timestamp'),
          ['REGISTRY', 'NOT_FOUND', 'TOO_LARGE'],
          context,
          body,
          (key) => {
            assert.equal(typeof key.keytype, 'string', context);
            assert.equal(typeof key.keyval.public, 'string', context);
          },
        );
        await expectResultOrErrorAsync(
          () => server.metadata(GUN, 'timestamp'),
          ['REGISTRY', 'TOO_LARGE'],
          context,
          body,
        );
      } finally {
        server.close();
      }
    }
  });
});

describe('TUF metadata properties (fast-check)', () => {
  const roles: BaseRole[] = ['root', 'targets', 'snapshot', 'timestamp'];
  const valid = collection();
  const root = parseEnvelope(valid.get('root') as Buffer, 'root', 'root').signed;

  const expires = mostly(
    fc.constantFrom(EXPIRES, '2030-01-01T00:00:00Z', '2030-01-01T00:00:00.123456789+01:00'),
    fc.oneof(
      fc.constantFrom(
        '2020-01-01T00:00:00Z',
        '2030-13-01T00:00:00Z',
        '2030-01-01',
        'tomorrow',
        '+275760-09-13T00:00:00Z',
      ),
      fc.date().map((dt) => (Number.isNaN(dt.getTime()) ? 'Invalid Date' : dt.toISOString())),
      anyString(),
    ),
    12,
  );
  const version = mostly(fc.integer({ min: 1, max: 1000 }), fc.oneof(hostileNumber, anyString(5)), 12);
  const keyid = mostly(fc.constantFrom(...Object.values(keys).map((s) => s.id)), hostileKey, 12);
  const roleShape = nearRecord(
    {
      keyids: mostly(fc.array(keyid, { maxLength: 3 }), hostileValue, 20),
      threshold: mostly(fc.integer({ min: 1, max: 3 }), hostileNumber, 20),
    },
    40,
  );
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
  const meta = nearRecord(
    {
      length: mostly(fc.constantFrom(MODULE.length, 0, 1), hostileNumber, 20),
      hashes: mostly(
        fc.oneof(
          fc.constant(fileMeta(MODULE).hashes),
          fc.dictionary(
            mostly(fc.constantFrom('sha256', 'sha512'), hostileKey, 3),
            mostly(fc.uint8Array({ minLength: 32, maxLength: 64 }).map(b64)),
            { maxKeys: 3 },
          ),
        ),
        hostileValue,
        20,
      ),
      custom: optional(
        mostly(
          fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.integer(), fc.string({ maxLength: 5 })), {
            maxKeys: 3,
          }),
          fc.jsonValue({ maxDepth: 2 }),
          4,
        ),
      ),
    },
    40,
  );
  const metaMap = (names: string[]) =>
    mostly(
      fc.dictionary(mostly(fc.constantFrom(...names), hostileKey, 3), meta, { maxKeys: 3 }),
      hostileValue,
      20,
    );
  const signedOf: Record<BaseRole, fc.Arbitrary<object>> = {
    root: nearRecord(
      {
        _type: mostly(fc.constant('Root')),
        consistent_snapshot: fc.boolean(),
        expires,
        keys: mostly(
          fc.oneof(
            fc.constant((SIGNED.root() as { keys: object }).keys),
            fc.dictionary(
              keyid,
              fc.record({ keytype: anyString(10), keyval: fc.record({ public: anyString(20) }) }),
              {
                maxKeys: 3,
              },
            ),
          ),
          hostileValue,
          12,
        ),
        roles: mostly(
          fc.record({ root: roleShape, targets: roleShape, snapshot: roleShape, timestamp: roleShape }),
          fc.oneof(hostileValue, fc.dictionary(hostileKey, roleShape, { maxKeys: 3 })),
          12,
        ),
        version,
      },
      20,
    ),
    targets: nearRecord(
      {
        _type: mostly(fc.constant('Targets')),
        delegations: mostly(
          fc.record({
            keys: fc.constant({}),
            roles: fc.array(
              nearRecord({
                name: mostly(
                  fc.constantFrom('targets/releases', 'targets/a/b'),
                  fc.constantFrom('targets/..', 'targets', 'targets/A'),
                ),
                keyids: fc.array(keyid, { maxLength: 2 }),
                threshold: fc.integer({ min: 1, max: 2 }),
                paths: mostly(fc.array(anyString(10), { maxLength: 2 }), hostileValue),
              }),
              { maxLength: 2 },
            ),
          }),
          hostileValue,
          12,
        ),
        expires,
        targets: metaMap(['v1', 'latest']),
        version,
      },
      20,
    ),
    snapshot: nearRecord(
      {
        _type: mostly(fc.constant('Snapshot')),
        expires,
        meta: metaMap(['root', 'targets']),
        version,
      },
      20,
    ),
    timestamp: nearRecord(
      {
        _type: mostly(fc.constant('Timestamp')),
        expires,
        meta: metaMap(['snapshot']),
        version,
      },
      20,
    ),
  };
  /** A role and the text of its `signed`, near-valid. */
  const signedText = fc
    .constantFrom(...roles)
    .chain((role) => signedOf[role].map((signed) => ({ role, text: jsonText(signed) })));

  /** The file of one role: `signed` re-signed by the role's key (so the checks behind it are reached). */
  function signedFile(role: BaseRole, text: string): Buffer {
    let signed: unknown;
    try {
      signed = JSON.parse(text);
    } catch {
      return Buffer.from(`{"signed":${text},"signatures":[]}`);
    }
    return envelope(role, signed, text);
  }

  function checkFile(bytes: Buffer, role: BaseRole): boolean {
    outcome(() => cachedVersion(bytes), [], bytes);
    const env = outcome(() => parseEnvelope(bytes, role, role), ['TRUST'], bytes);
    if (env instanceof WasmOciError) return false;
    const trustRoot = role === 'root' ? (env.signed as RootSigned) : root;
    const trust = outcome(() => baseRoleTrust(trustRoot, role), [], bytes);
    if (trust instanceof WasmOciError) return true;
    outcome(() => verifyThreshold(env, trust, role), ['TRUST'], bytes);
    const metas =
      role === 'targets'
        ? Object.values((env.signed as { targets: object }).targets)
        : role === 'root'
          ? []
          : Object.values((env.signed as { meta: object }).meta);
    for (const m of metas) outcome(() => checkFileMeta(MODULE, m, 'm'), ['TRUST'], bytes);
    return true;
  }

  it('a near-valid signed part, re-signed, parses as its role or fails with TRUST', () => {
    let parsed = 0;
    fc.assert(
      fc.property(signedText, ({ role, text }) => {
        if (checkFile(signedFile(role, text), role)) parsed++;
      }),
      params(0x7f0101, 250),
    );
    assert.ok(parsed > 60, `only ${parsed} files parsed`);
  });

  it('any envelope text or bytes parses as its role or fails with TRUST', () => {
    const signature = nearRecord({
      keyid,
      method: mostly(fc.constantFrom('ecdsa', 'rsapss', 'ed25519')),
      sig: mostly(fc.uint8Array({ maxLength: 72 }).map(b64)),
    });
    const doc = fc.constantFrom(...roles).chain((role) =>
      fc
        .tuple(
          nearRecord({
            signed: signedOf[role],
            signatures: mostly(fc.array(signature, { maxLength: 3 }), hostileValue, 4),
          }),
          fc.constant(role),
        )
        .map(([d, r]) => ({ role: r, doc: d })),
    );
    fc.assert(
      fc.property(fc.constantFrom(...roles), jsonInput(doc.map((d) => d.doc)), (role, bytes) => {
        checkFile(bytes, role);
      }),
      params(0x7f0102, 300),
    );
  });

  it('canonical JSON of any value is bytes that parse back to it, or TRUST', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue({ maxDepth: 4 }), hostileValue), (value) => {
        let json: unknown;
        try {
          json = JSON.parse(jsonText(value));
        } catch {
          return;
        }
        outcome(
          () => canonicalJson(json),
          ['TRUST'],
          value,
          (bytes) => {
            const text = bytes.toString('utf8');
            // Canonical JSON writes control characters raw, which JSON.parse refuses.
            if (/[\u0000-\u001f]/.test(text)) return;
            const expected = JSON.parse(JSON.stringify(json), (_k, x) =>
              typeof x === 'string' ? wellFormed(x) : x,
            );
            assert.deepEqual(JSON.parse(text), expected);
          },
        );
      }),
      params(0x7f0103, 500),
    );
  });

  describe('the update workflow over a fake trust server', () => {
    let dir = '';
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-tuf-prop-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('a collection with one near-valid re-signed file is trusted or refused with TRUST', async () => {
      let n = 0;
      await fc.assert(
        fc.asyncProperty(signedText, fc.constantFrom('v1', ...HOSTILE_KEYS), async ({ role, text }, name) => {
          const ctx: TrustContext = {
            gun: GUN,
            server: fakeServer(collection({ role, text })),
            dir: new TrustDirectory(join(dir, `p${n++}`)),
            now: NOW,
          };
          const trusted = await outcomeAsync(() => updateCollection(ctx), ['TRUST'], text, undefined, 3000);
          if (trusted && !(trusted instanceof WasmOciError))
            await outcomeAsync(() => findTarget(ctx, trusted, name), ['TRUST'], name);
        }),
        params(0x7f0104, 20),
      );
    });
  });
});
