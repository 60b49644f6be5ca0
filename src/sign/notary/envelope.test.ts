import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { describe, it } from 'node:test';
import { hasCode } from '../../errors.js';
import { generateEcdsaKey, keyId, signEcdsa, tufPublicKey } from './keys.js';
import {
  cachedVersion,
  checkFileMeta,
  checkVersion,
  fileMeta,
  goTime,
  parseEnvelope,
  serializeEnvelope,
  verifyThreshold,
} from './metadata.js';

const key = generateEcdsaKey();
const pub = tufPublicKey(createPublicKey(key));
const id = keyId(pub);

const timestamp = (overrides: Record<string, unknown> = {}) => ({
  _type: 'Timestamp',
  expires: '2030-01-01T00:00:00Z',
  meta: { snapshot: { hashes: { sha256: 'AAAA' }, length: 1 } },
  version: 1,
  ...overrides,
});

const raw = (signed: unknown, signatures: unknown = []) =>
  Buffer.from(JSON.stringify({ signed, signatures }));
const malformed = (pattern: RegExp) => (err: unknown) => hasCode(err, 'TRUST') && pattern.test(err.message);

describe('metadata files', () => {
  it('parses a well-formed file; its message is the canonical signed object', () => {
    const signed = timestamp();
    const bytes = serializeEnvelope(signed, []);
    assert.match(bytes.toString(), /^\{"signed":\{"_type":"Timestamp","expires"/);
    const env = parseEnvelope(bytes, 'timestamp', 'the timestamp');
    assert.equal(env.signed.version, 1);
    assert.equal(
      env.message.toString(),
      '{"_type":"Timestamp","expires":"2030-01-01T00:00:00Z","meta":{"snapshot":{"hashes":{"sha256":"AAAA"},"length":1}},"version":1}',
    );
  });

  it('refuses malformed files, each with what is wrong', () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.from('not json'), /not valid JSON/],
      [raw(timestamp({ _type: 'Snapshot' })), /"Snapshot", not Timestamp/],
      [raw(timestamp({ version: 0 })), /version is not a valid number/],
      [raw(timestamp({ version: '1' })), /version is not a valid number/],
      [raw(timestamp({ expires: 'soon' })), /expires is not a date/],
      [raw(timestamp({ meta: {} })), /lists no snapshot/],
      [raw(timestamp({ meta: { snapshot: { hashes: {}, length: -1 } } })), /length of snapshot/],
      [raw(timestamp(), [{ keyid: 1 }]), /a signature is malformed/],
      [raw(timestamp(), {}), /no signature list/],
      [raw(timestamp({ extra: 0.5 })), /no number 0.5/],
    ];
    for (const [bytes, pattern] of cases) {
      assert.throws(
        () => parseEnvelope(bytes, 'timestamp', 'the timestamp'),
        malformed(pattern),
        pattern.source,
      );
    }
    assert.throws(
      () =>
        parseEnvelope(
          raw({ _type: 'Root', expires: '2030-01-01T00:00:00Z', version: 1, keys: {}, roles: {} }),
          'root',
          'r',
        ),
      malformed(/role root is missing/),
    );
  });

  it('counts each valid key once toward the threshold; mislabelled and unlisted keys do not count', () => {
    const signed = timestamp();
    const env = parseEnvelope(serializeEnvelope(signed, []), 'timestamp', 't');
    const sig = { keyid: id, method: 'ecdsa', sig: signEcdsa(env.message, key) };
    const role = (threshold: number) => ({ keyids: [id], threshold, keys: { [id]: pub } });
    verifyThreshold({ ...env, signatures: [sig] }, role(1), 't');
    assert.throws(
      () => verifyThreshold({ ...env, signatures: [sig, sig] }, role(2), 't'),
      malformed(/1 valid signature, 2 needed/),
    );
    const other = tufPublicKey(createPublicKey(generateEcdsaKey()));
    // A key listed under an ID that is not its own.
    assert.throws(
      () =>
        verifyThreshold(
          { ...env, signatures: [sig] },
          { keyids: [id], threshold: 1, keys: { [id]: other } },
          't',
        ),
      malformed(/0 valid signatures/),
    );
    assert.throws(
      () =>
        verifyThreshold(
          { ...env, signatures: [sig] },
          { keyids: [], threshold: 1, keys: { [id]: pub } },
          't',
        ),
      malformed(/0 valid signatures/),
    );
  });

  it('checks lengths, hashes and versions', () => {
    const bytes = Buffer.from('content');
    checkFileMeta(bytes, fileMeta(bytes), 'x');
    assert.throws(
      () => checkFileMeta(Buffer.from('contenT'), fileMeta(bytes), 'x'),
      malformed(/sha256 hash/),
    );
    assert.throws(() => checkFileMeta(Buffer.from('conten'), fileMeta(bytes), 'x'), malformed(/has 6 bytes/));
    assert.throws(() => checkFileMeta(bytes, { length: 7, hashes: { md5: 'x' } }, 'x'), malformed(/no hash/));
    checkVersion(3, 3, 'x');
    checkVersion(3, undefined, 'x');
    assert.throws(() => checkVersion(2, 3, 'x'), malformed(/rolled back/));
    assert.equal(cachedVersion(Buffer.from('garbage')), undefined);
    assert.equal(cachedVersion(raw({ version: 4 })), 4);
  });

  it('writes times as Go does', () => {
    assert.equal(goTime(new Date('2029-11-28T06:50:15.160Z')), '2029-11-28T06:50:15.16Z');
    assert.equal(goTime(new Date('2029-11-28T06:50:10.000Z')), '2029-11-28T06:50:10Z');
    assert.equal(goTime(new Date('2029-11-28T06:50:15.007Z')), '2029-11-28T06:50:15.007Z');
  });
});
