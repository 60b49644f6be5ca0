import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { hasCode } from '../../errors.js';
import { canonicalJson } from './canonical.js';
import { generateEcdsaKey, keyId, type Signature, signEcdsa, type TufKey, tufPublicKey } from './keys.js';
import {
  type BaseRole,
  baseRoleTrust,
  cachedVersion,
  checkExpiry,
  checkFileMeta,
  checkVersion,
  type Envelope,
  expiresIn,
  fileMeta,
  parseEnvelope,
  type RoleTrust,
  type RootSigned,
  serializeEnvelope,
  trustError,
  verifyThreshold,
} from './metadata.js';

interface Signer {
  id: string;
  pub: TufKey;
  key: KeyObject;
}

function ecdsa(): Signer {
  const key = generateEcdsaKey();
  const pub = tufPublicKey(createPublicKey(key));
  return { id: keyId(pub), pub, key };
}

const a = ecdsa();
const b = ecdsa();
const c = ecdsa();

const sigBy = (s: Signer, signed: unknown): Signature => ({
  keyid: s.id,
  method: 'ecdsa',
  sig: signEcdsa(canonicalJson(signed), s.key),
});

const EXPIRES = '2030-01-01T00:00:00Z';
const meta = { length: 12, hashes: { sha256: 'c2hhMjU2', sha512: 'c2hhNTEy' } };

const signedOf: Record<BaseRole, () => Record<string, unknown>> = {
  root: () => ({
    _type: 'Root',
    consistent_snapshot: false,
    expires: EXPIRES,
    keys: { [a.id]: a.pub, [b.id]: b.pub },
    roles: {
      root: { keyids: [a.id], threshold: 1 },
      snapshot: { keyids: [b.id], threshold: 1 },
      targets: { keyids: [a.id], threshold: 1 },
      timestamp: { keyids: [b.id], threshold: 1 },
    },
    version: 1,
  }),
  targets: () => ({
    _type: 'Targets',
    delegations: {
      keys: { [c.id]: c.pub },
      roles: [{ name: 'targets/releases', keyids: [c.id], threshold: 1, paths: [''] }],
    },
    expires: EXPIRES,
    targets: { v1: { ...meta, custom: { note: 'x' } } },
    version: 3,
  }),
  snapshot: () => ({
    _type: 'Snapshot',
    expires: EXPIRES,
    meta: { root: meta, targets: meta, 'targets/releases': meta },
    version: 2,
  }),
  timestamp: () => ({ _type: 'Timestamp', expires: EXPIRES, meta: { snapshot: meta }, version: 7 }),
};

/** JSON of an envelope (not canonical: what a test wants on the wire). */
const wire = (signed: unknown, signatures: unknown = []) =>
  Buffer.from(JSON.stringify({ signed, signatures }));

const isTrust = (pattern: RegExp) => (err: unknown) => {
  assert.ok(hasCode(err, 'TRUST'), `not a TRUST error: ${err}`);
  assert.match(err.message, pattern);
  return true;
};

describe('serializeEnvelope', () => {
  it('writes the canonical signed object first, then the signatures, with no whitespace', () => {
    const signed = {
      version: 1,
      _type: 'Timestamp',
      meta: { snapshot: { length: 1, hashes: { sha256: 'AA==' } } },
    };
    const sig: Signature = { sig: 'c2ln', method: 'ecdsa', keyid: 'k' };
    assert.equal(
      serializeEnvelope(signed, [sig]).toString(),
      '{"signed":{"_type":"Timestamp","meta":{"snapshot":{"hashes":{"sha256":"AA=="},"length":1}},"version":1},' +
        '"signatures":[{"keyid":"k","method":"ecdsa","sig":"c2ln"}]}',
    );
    assert.equal(serializeEnvelope({}, []).toString(), '{"signed":{},"signatures":[]}');
  });
});

describe('parseEnvelope: well-formed files', () => {
  for (const role of ['root', 'targets', 'snapshot', 'timestamp'] as const) {
    it(`accepts a signed ${role} file; its message is the canonical signed object`, () => {
      const signed = signedOf[role]();
      const signature = sigBy(a, signed);
      const raw = serializeEnvelope(signed, [signature]);
      const env = parseEnvelope(raw, role, `the ${role} metadata of x`);
      assert.equal(env.raw, raw);
      assert.deepEqual(env.signed, signed);
      assert.ok(env.message.equals(canonicalJson(signed)));
      assert.deepEqual(env.signatures, [signature]);
      verifyThreshold(env, { keyids: [a.id], threshold: 1, keys: { [a.id]: a.pub } }, 'x');
    });
  }

  it('re-encodes the signed object canonically, however the file spells it', () => {
    const signed = signedOf.timestamp();
    const signature = sigBy(a, signed);
    // Keys in another order, with whitespace: the signature is over the canonical form.
    const spelled = Buffer.from(
      `{ "signatures": [${JSON.stringify(signature)}],\n  "signed": {"version": 7, "meta": {"snapshot": ` +
        `{"length": 12, "hashes": {"sha512": "c2hhNTEy", "sha256": "c2hhMjU2"}}}, "expires": "${EXPIRES}", "_type": "Timestamp"} }`,
    );
    const env = parseEnvelope(spelled, 'timestamp', 't');
    assert.ok(env.message.equals(canonicalJson(signed)));
    assert.equal(env.raw, spelled);
    verifyThreshold(env, { keyids: [a.id], threshold: 1, keys: { [a.id]: a.pub } }, 't');
  });

  it('gives targets without delegations empty ones', () => {
    for (const delegations of [undefined, null, {}, { keys: null, roles: null }]) {
      const signed: Record<string, unknown> = { ...signedOf.targets(), delegations };
      if (delegations === undefined) delete signed.delegations;
      const env = parseEnvelope(wire(signed), 'targets', 't');
      assert.deepEqual(env.signed.delegations, { keys: {}, roles: [] }, JSON.stringify(delegations));
    }
  });

  it('accepts delegations with path hash prefixes, or null paths', () => {
    const signed = signedOf.targets();
    signed.delegations = {
      keys: { [c.id]: c.pub },
      roles: [
        { name: 'targets/a', keyids: [c.id], threshold: 1, path_hash_prefixes: ['ab'] },
        { name: 'targets/b', keyids: [c.id], threshold: 1, paths: null },
      ],
    };
    const env = parseEnvelope(wire(signed), 'targets', 't');
    assert.deepEqual(
      env.signed.delegations.roles.map((r) => r.name),
      ['targets/a', 'targets/b'],
    );
  });

  it('accepts a timestamp whose entries carry only a sha512 hash, or extra hashes', () => {
    const signed = {
      ...signedOf.timestamp(),
      meta: { snapshot: { length: 1, hashes: { sha512: 'x', md5: 'y' } } },
    };
    assert.equal(parseEnvelope(wire(signed), 'timestamp', 't').signed.version, 7);
  });
});

describe('parseEnvelope: malformed files', () => {
  const refuse = (raw: Buffer, role: BaseRole, pattern: RegExp) =>
    assert.throws(
      () => parseEnvelope(raw, role, `the ${role} metadata of x`),
      isTrust(pattern),
      pattern.source,
    );
  const malformed = (role: BaseRole, change: (s: Record<string, unknown>) => void, problem: RegExp) => {
    const signed = signedOf[role]();
    change(signed);
    refuse(wire(signed), role, new RegExp(`^the ${role} metadata of x is malformed: ${problem.source}`));
  };

  it('refuses what is not a JSON envelope', () => {
    refuse(Buffer.from('not json'), 'timestamp', /^the timestamp metadata of x is not valid JSON$/);
    refuse(Buffer.from(''), 'timestamp', /is not valid JSON/);
    refuse(Buffer.from('[1,2]'), 'timestamp', /is malformed: no signed object/);
    refuse(Buffer.from('null'), 'timestamp', /is malformed: no signed object/);
    refuse(Buffer.from('{"signatures":[]}'), 'timestamp', /is malformed: no signed object/);
    refuse(Buffer.from('{"signed":[],"signatures":[]}'), 'timestamp', /is malformed: no signed object/);
    refuse(wire(signedOf.timestamp(), null), 'timestamp', /is malformed: no signature list/);
    refuse(Buffer.from(JSON.stringify({ signed: signedOf.timestamp() })), 'timestamp', /no signature list/);
  });

  it('refuses malformed signature entries', () => {
    const signed = signedOf.timestamp();
    const good = sigBy(a, signed);
    for (const bad of [
      null,
      'sig',
      { ...good, keyid: 1 },
      { ...good, method: undefined },
      { keyid: good.keyid, method: good.method },
      { ...good, sig: null },
    ]) {
      refuse(wire(signed, [good, bad]), 'timestamp', /is malformed: a signature is malformed/);
    }
  });

  it('refuses a file of another role', () => {
    refuse(wire(signedOf.root()), 'targets', /is malformed: it is "Root", not Targets/);
    refuse(wire(signedOf.snapshot()), 'timestamp', /it is "Snapshot", not Timestamp/);
    malformed('timestamp', (s) => delete s._type, /it is undefined, not Timestamp/);
    malformed('timestamp', (s) => (s._type = 'timestamp'), /it is "timestamp", not Timestamp/);
  });

  it('refuses a missing, zero, negative or non-numeric version', () => {
    malformed('timestamp', (s) => delete s.version, /version is not a valid number/);
    malformed('timestamp', (s) => (s.version = 0), /version is not a valid number/);
    malformed('snapshot', (s) => (s.version = -1), /version is not a valid number/);
    malformed('root', (s) => (s.version = '1'), /version is not a valid number/);
    malformed('targets', (s) => (s.version = null), /version is not a valid number/);
  });

  it('refuses floats and unsafe integers anywhere in signed (canonical JSON has none)', () => {
    malformed('timestamp', (s) => (s.version = 1.5), /canonical JSON has no number 1.5/);
    malformed(
      'targets',
      (s) => (s.targets = { v1: { ...meta, custom: { size: 0.25 } } }),
      /canonical JSON has no number 0\.25/,
    );
    malformed('snapshot', (s) => (s.extra = 2 ** 60), /canonical JSON has no number/);
    // Numbers JSON spells with an exponent or a fraction are floats too once parsed.
    const raw = Buffer.from(
      wire(signedOf.timestamp()).toString().replace('"version":7', '"version":7,"weight":1.5e-3'),
    );
    refuse(raw, 'timestamp', /is malformed: canonical JSON has no number 0.0015/);
  });

  it('refuses a missing or unreadable expiry', () => {
    malformed('timestamp', (s) => delete s.expires, /expires is not a date/);
    malformed('timestamp', (s) => (s.expires = 'soon'), /expires is not a date/);
    malformed('root', (s) => (s.expires = 1893456000), /expires is not a date/);
    malformed('targets', (s) => (s.expires = ''), /expires is not a date/);
  });

  it('refuses expiries that are not RFC 3339 times, as Notary (Go) does', () => {
    malformed('timestamp', (s) => (s.expires = 'Jan 1 2030'), /expires is not a date/);
    malformed('timestamp', (s) => (s.expires = '1'), /expires is not a date/);
    malformed('timestamp', (s) => (s.expires = '2030-01-01T00:00:00'), /expires is not a date/);
  });

  it('refuses file entries with a bad length or bad hashes', () => {
    malformed(
      'snapshot',
      (s) => (s.meta = { targets: { ...meta, length: '12' } }),
      /the length of targets is not a valid number/,
    );
    malformed(
      'snapshot',
      (s) => (s.meta = { targets: { ...meta, length: -1 } }),
      /the length of targets is not a valid number/,
    );
    malformed(
      'snapshot',
      (s) => (s.meta = { targets: { hashes: meta.hashes } }),
      /the length of targets is not a valid number/,
    );
    malformed(
      'snapshot',
      (s) => (s.meta = { targets: { ...meta, length: 12.5 } }),
      /canonical JSON has no number 12\.5/,
    );
    malformed(
      'snapshot',
      (s) => (s.meta = { targets: { length: 1 } }),
      /the hashes of targets are malformed/,
    );
    malformed(
      'snapshot',
      (s) => (s.meta = { targets: { length: 1, hashes: ['a'] } }),
      /the hashes of targets are malformed/,
    );
    malformed(
      'snapshot',
      (s) => (s.meta = { targets: { length: 1, hashes: { sha256: 5 } } }),
      /the hashes of targets are malformed/,
    );
    malformed('snapshot', (s) => (s.meta = { targets: 'x' }), /the entry of targets is not an object/);
    malformed('snapshot', (s) => (s.meta = []), /meta is not an object/);
    malformed(
      'targets',
      (s) => (s.targets = { v1: { ...meta, length: 1.5 } }),
      /canonical JSON has no number 1\.5/,
    );
    malformed(
      'targets',
      (s) => (s.targets = { v1: { length: 3, hashes: null } }),
      /the hashes of v1 are malformed/,
    );
    malformed('targets', (s) => (s.targets = null), /targets is not an object/);
  });

  it('refuses a timestamp that lists no snapshot', () => {
    malformed('timestamp', (s) => (s.meta = {}), /it lists no snapshot/);
    malformed('timestamp', (s) => (s.meta = { targets: meta }), /it lists no snapshot/);
    malformed('timestamp', (s) => delete s.meta, /meta is not an object/);
  });

  it('refuses a root with malformed keys or roles', () => {
    malformed('root', (s) => (s.keys = []), /keys is not an object/);
    malformed('root', (s) => (s.keys = { k: { keytype: 'ecdsa' } }), /key k is malformed/);
    malformed(
      'root',
      (s) => (s.keys = { k: { keytype: 'ecdsa', keyval: { public: 7 } } }),
      /key k is malformed/,
    );
    malformed(
      'root',
      (s) => (s.keys = { k: { keytype: 1, keyval: { public: 'AA' } } }),
      /key k is malformed/,
    );
    malformed('root', (s) => delete s.roles, /roles is not an object/);
    malformed(
      'root',
      (s) => delete (s.roles as Record<string, unknown>).timestamp,
      /role timestamp is missing/,
    );
    malformed(
      'root',
      (s) => ((s.roles as Record<string, unknown>).targets = { threshold: 1 }),
      /role targets has no key IDs/,
    );
    malformed(
      'root',
      (s) => ((s.roles as Record<string, unknown>).targets = { keyids: [1], threshold: 1 }),
      /role targets has no key IDs/,
    );
    malformed(
      'root',
      (s) => ((s.roles as Record<string, unknown>).root = { keyids: [a.id], threshold: 0 }),
      /the threshold of root is not a valid number/,
    );
    malformed(
      'root',
      (s) => ((s.roles as Record<string, unknown>).snapshot = { keyids: [a.id] }),
      /the threshold of snapshot is not a valid number/,
    );
  });

  it('refuses malformed delegations', () => {
    const role = { name: 'targets/releases', keyids: [c.id], threshold: 1, paths: [''] };
    const withDelegations = (delegations: unknown) => (s: Record<string, unknown>) =>
      (s.delegations = delegations);
    malformed('targets', withDelegations('x'), /delegations is not an object/);
    malformed('targets', withDelegations({ keys: [], roles: [] }), /keys is not an object/);
    malformed('targets', withDelegations({ keys: { k: {} }, roles: [] }), /key k is malformed/);
    malformed('targets', withDelegations({ keys: {}, roles: {} }), /delegated roles are not a list/);
    malformed(
      'targets',
      withDelegations({ keys: {}, roles: [{ ...role, name: 5 }] }),
      /a delegated role has no name/,
    );
    malformed('targets', withDelegations({ keys: {}, roles: ['targets/x'] }), /a delegated role has no name/);
    malformed(
      'targets',
      withDelegations({ keys: {}, roles: [{ ...role, threshold: 0 }] }),
      /the threshold of targets\/releases is not a valid number/,
    );
    malformed(
      'targets',
      withDelegations({ keys: {}, roles: [{ ...role, keyids: 'k' }] }),
      /role targets\/releases has no key IDs/,
    );
    malformed(
      'targets',
      withDelegations({ keys: {}, roles: [{ ...role, paths: 'x' }] }),
      /paths of targets\/releases is malformed/,
    );
    malformed(
      'targets',
      withDelegations({ keys: {}, roles: [{ ...role, path_hash_prefixes: [1] }] }),
      /path_hash_prefixes of targets\/releases is malformed/,
    );
  });
});

describe('verifyThreshold', () => {
  const signed = signedOf.snapshot();
  const env = (signatures: Signature[]): Envelope<unknown> => ({
    ...parseEnvelope(serializeEnvelope(signed, []), 'snapshot', 's'),
    signatures,
  });
  const role = (signers: Signer[], threshold: number, extraKeys: Signer[] = []): RoleTrust => ({
    keyids: signers.map((s) => s.id),
    threshold,
    keys: Object.fromEntries([...signers, ...extraKeys].map((s) => [s.id, s.pub])),
  });
  const short = (valid: number, needed: number) =>
    isTrust(
      new RegExp(
        `^the snapshot is not signed by enough of its keys \\(${valid} valid signatures?, ${needed} needed\\)$`,
      ),
    );

  it('passes with 1 of 1, and k of n distinct keys', () => {
    verifyThreshold(env([sigBy(a, signed)]), role([a], 1), 'the snapshot');
    verifyThreshold(env([sigBy(a, signed), sigBy(b, signed)]), role([a, b, c], 2), 'the snapshot');
    verifyThreshold(env([sigBy(c, signed), sigBy(a, signed)]), role([a, b, c], 2), 'the snapshot');
  });

  it('fails with no signature, and says how many were valid', () => {
    assert.throws(() => verifyThreshold(env([]), role([a], 1), 'the snapshot'), short(0, 1));
    assert.throws(
      () => verifyThreshold(env([sigBy(a, signed)]), role([a, b], 2), 'the snapshot'),
      short(1, 2),
    );
  });

  it('counts a key once, however often it signed', () => {
    const sig = sigBy(a, signed);
    const again = sigBy(a, signed);
    assert.notEqual(sig.sig, again.sig, 'two ECDSA signatures of the same bytes differ');
    assert.throws(
      () => verifyThreshold(env([sig, again, sig]), role([a, b], 2), 'the snapshot'),
      short(1, 2),
    );
  });

  it('ignores a signature whose key ID is not the ID of the key listed under it', () => {
    // b's signature, filed under a's ID, with b's key listed under a's ID: valid bytes, wrong ID.
    const mislabelled: Signature = { ...sigBy(b, signed), keyid: a.id };
    const lying: RoleTrust = { keyids: [a.id], threshold: 1, keys: { [a.id]: b.pub } };
    assert.throws(() => verifyThreshold(env([mislabelled]), lying, 'the snapshot'), short(0, 1));
  });

  it('ignores keys that are not the role’s, even when listed among the keys', () => {
    assert.throws(
      () => verifyThreshold(env([sigBy(c, signed)]), role([a], 1, [c]), 'the snapshot'),
      short(0, 1),
    );
    // A role key ID that has no key is no help either.
    const missing: RoleTrust = { keyids: [a.id], threshold: 1, keys: {} };
    assert.throws(() => verifyThreshold(env([sigBy(a, signed)]), missing, 'the snapshot'), short(0, 1));
  });

  it('ignores bad signatures and unknown methods, and counts the good ones', () => {
    const other = signedOf.timestamp();
    const bad = sigBy(a, other);
    const unknown: Signature = { ...sigBy(b, signed), method: 'rsassa-pss-sha512' };
    assert.throws(() => verifyThreshold(env([bad, unknown]), role([a, b], 1), 'the snapshot'), short(0, 1));
    assert.throws(
      () => verifyThreshold(env([bad, unknown, sigBy(c, signed)]), role([a, b, c], 2), 'the snapshot'),
      short(1, 2),
    );
  });

  it('counts Ed25519 signatures', () => {
    const key = generateKeyPairSync('ed25519').privateKey;
    const pub = tufPublicKey(createPublicKey(key));
    const id = keyId(pub);
    const sig: Signature = {
      keyid: id,
      method: 'eddsa',
      sig: sign(null, canonicalJson(signed), key).toString('base64'),
    };
    verifyThreshold(env([sig]), { keyids: [id], threshold: 1, keys: { [id]: pub } }, 'the snapshot');
  });

  it('says what to suspect in its hint', () => {
    assert.throws(
      () => verifyThreshold(env([]), role([a], 1), 'the snapshot'),
      (err) => hasCode(err, 'TRUST') && /altered or signed with keys/.test(err.hint ?? ''),
    );
  });
});

describe('baseRoleTrust', () => {
  it('gives a role its key IDs and threshold from root, with all root keys', () => {
    const root = signedOf.root() as unknown as RootSigned;
    assert.deepEqual(baseRoleTrust(root, 'snapshot'), { keyids: [b.id], threshold: 1, keys: root.keys });
    assert.deepEqual(baseRoleTrust(root, 'targets').keyids, [a.id]);
  });
});

describe('expiry and versions', () => {
  const now = new Date('2026-11-28T12:00:00Z');

  it('checkExpiry: passes before the expiry, fails at and after it', () => {
    checkExpiry({ expires: '2026-11-28T12:00:01Z' }, now, 'x');
    assert.throws(
      () => checkExpiry({ expires: '2026-11-28T12:00:00Z' }, now, 'the timestamp metadata of g'),
      isTrust(/^the timestamp metadata of g expired on 2026-11-28T12:00:00.000Z$/),
    );
    assert.throws(
      () => checkExpiry({ expires: '2020-01-01T00:00:00.5Z' }, now, 'x'),
      (err) =>
        hasCode(err, 'TRUST') &&
        err.message === 'x expired on 2020-01-01T00:00:00.500Z' &&
        /stale/.test(err.hint ?? ''),
    );
  });

  it('checkVersion: the same or a newer version passes, an older one is a rollback', () => {
    checkVersion(3, undefined, 'x');
    checkVersion(3, 3, 'x');
    checkVersion(4, 3, 'x');
    assert.throws(
      () => checkVersion(2, 3, 'the snapshot metadata of g'),
      isTrust(
        /^the snapshot metadata of g was rolled back: version 2 is older than the version 3 trusted before$/,
      ),
    );
    assert.throws(
      () => checkVersion(1, 10, 'x'),
      (err) => hasCode(err, 'TRUST') && /replaying/.test(err.hint ?? ''),
    );
  });

  it('expiresIn: years and days from now, as Go writes times', () => {
    const from = new Date('2026-11-28T06:50:15.160Z');
    assert.equal(expiresIn(from, { years: 3 }), '2029-11-28T06:50:15.16Z');
    assert.equal(expiresIn(from, { days: 14 }), '2026-12-12T06:50:15.16Z');
    assert.equal(expiresIn(from, { years: 1, days: 40 }), '2028-01-07T06:50:15.16Z');
    assert.equal(expiresIn(new Date('2026-01-01T00:00:00Z'), {}), '2026-01-01T00:00:00Z');
    // 29 February plus a year is 1 March.
    assert.equal(expiresIn(new Date('2028-02-29T00:00:00Z'), { years: 1 }), '2029-03-01T00:00:00Z');
    assert.equal(from.toISOString(), '2026-11-28T06:50:15.160Z', 'the date given is not changed');
  });

  it('cachedVersion: the version of a cached file, undefined for anything else', () => {
    assert.equal(cachedVersion(undefined), undefined);
    assert.equal(cachedVersion(Buffer.alloc(0)), undefined);
    assert.equal(cachedVersion(Buffer.from('garbage')), undefined);
    assert.equal(cachedVersion(Buffer.from('null')), undefined);
    assert.equal(cachedVersion(Buffer.from('{"signed":null}')), undefined);
    assert.equal(cachedVersion(Buffer.from('{"signed":{}}')), undefined);
    assert.equal(cachedVersion(Buffer.from('{"signed":{"version":"3"}}')), undefined);
    assert.equal(cachedVersion(Buffer.from('{"signed":{"version":3.5}}')), undefined);
    assert.equal(cachedVersion(Buffer.from('{"signed":{"version":3}}')), 3);
    assert.equal(cachedVersion(serializeEnvelope(signedOf.timestamp(), [])), 7);
  });
});

describe('file lengths and hashes', () => {
  const bytes = Buffer.from('{"signed":{"_type":"Targets"}}');
  const b64 = (algorithm: string, data: Buffer) => createHash(algorithm).update(data).digest('base64');

  it('fileMeta lists the length and the base64 SHA-256 and SHA-512', () => {
    assert.deepEqual(fileMeta(bytes), {
      length: bytes.length,
      hashes: { sha256: b64('sha256', bytes), sha512: b64('sha512', bytes) },
    });
    assert.deepEqual(fileMeta(new Uint8Array(0)).length, 0);
  });

  it('checkFileMeta passes for the listed bytes', () => {
    checkFileMeta(bytes, fileMeta(bytes), 'x');
    checkFileMeta(bytes, { length: bytes.length, hashes: { sha256: b64('sha256', bytes) } }, 'x');
    checkFileMeta(
      bytes,
      { length: bytes.length, hashes: { sha384: b64('sha384', bytes), md5: 'whatever' } },
      'x',
    );
  });

  it('checkFileMeta refuses another length', () => {
    assert.throws(
      () => checkFileMeta(bytes.subarray(1), fileMeta(bytes), 'the targets metadata of g'),
      isTrust(
        new RegExp(
          `^the targets metadata of g has ${bytes.length - 1} bytes where the signed metadata says ${bytes.length}$`,
        ),
      ),
    );
  });

  it('checkFileMeta refuses other bytes of the same length, whichever known hash differs', () => {
    const altered = Buffer.from(bytes);
    altered[3] = 0x41;
    assert.throws(
      () => checkFileMeta(altered, fileMeta(bytes), 'f'),
      isTrust(/^f does not match the sha256 hash/),
    );
    const sha512Wrong = {
      length: bytes.length,
      hashes: { sha256: b64('sha256', bytes), sha512: b64('sha512', altered) },
    };
    assert.throws(() => checkFileMeta(bytes, sha512Wrong, 'f'), isTrust(/does not match the sha512 hash/));
    // A hex digest is not the base64 Notary writes.
    const hex = {
      length: bytes.length,
      hashes: { sha256: createHash('sha256').update(bytes).digest('hex') },
    };
    assert.throws(() => checkFileMeta(bytes, hex, 'f'), isTrust(/sha256 hash/));
  });

  it('checkFileMeta refuses a listing with no hash it knows', () => {
    assert.throws(
      () => checkFileMeta(bytes, { length: bytes.length, hashes: { md5: 'x', sha1: 'y' } }, 'f'),
      isTrust(/^f is listed with no hash this version knows$/),
    );
    assert.throws(() => checkFileMeta(bytes, { length: bytes.length, hashes: {} }, 'f'), isTrust(/no hash/));
  });
});

describe('trustError', () => {
  it('is a TRUST error with an optional hint', () => {
    const plain = trustError('m');
    assert.ok(hasCode(plain, 'TRUST'));
    assert.equal(plain.message, 'm');
    assert.equal(plain.hint, undefined);
    assert.equal(trustError('m', 'do this').hint, 'do this');
  });
});
