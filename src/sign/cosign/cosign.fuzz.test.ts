import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { mutateBytes, mutateJson, Rng } from '../../../test/harness/fuzz.js';
import {
  anyString,
  jsonInput,
  nearRecord,
  outcome,
  outcomeAsync,
  params,
} from '../../../test/harness/properties.js';
import { buildBundle, pae, parseBundle, parseStatement, signStatement } from './bundle.js';
import { encryptKey, parseEncryptedKey, parsePrivateKeyFile, readPrivateKey, readPublicKey } from './keys.js';
import { keySigner } from './signer.js';
import { parseSimpleSigning, simpleSigningPayload } from './simplesigning.js';
import { checkBundle, checkSimpleSigning } from './verify.js';

/**
 * Seeded, bounded fuzzing of what a cosign signature brings in from outside: key files (anyone may hand
 * one over), bundles and simple-signing payloads (whatever a registry serves under a signature's name).
 * Each parser returns or throws a one-line WasmOciError of an expected code; the checks never throw.
 */

const SEEDS = [151, 152, 153];
const DIGEST = `sha256:${'12'.repeat(32)}`;
const KEY_CODES = ['SIGNING_KEY', 'PASSPHRASE', 'UNSUPPORTED'];
const SIGNATURE_CODES = ['SIGNATURE_INVALID', 'UNSUPPORTED'];

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signer = keySigner(privateKey);
const verifier = signer.verifier();

const b64 = fc.uint8Array({ maxLength: 48 }).map((b) => Buffer.from(b).toString('base64'));

const keyJson = nearRecord({
  kdf: nearRecord({
    name: fc.constant('scrypt'),
    params: nearRecord({
      N: fc.constantFrom(32768, 65536, 1024, 2 ** 40),
      r: fc.constant(8),
      p: fc.constant(1),
    }),
    salt: b64,
  }),
  cipher: nearRecord({
    name: fc.constant('nacl/secretbox'),
    nonce: fc.uint8Array({ minLength: 24, maxLength: 24 }).map((b) => Buffer.from(b).toString('base64')),
  }),
  ciphertext: b64,
});

const pemText = (type: string, body: Buffer) =>
  `-----BEGIN ${type}-----\n${body.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END ${type}-----\n`;

describe('cosign parsers under fuzzing', () => {
  for (const seed of SEEDS) {
    it(`encrypted key JSON and key files, seed ${seed}`, () => {
      fc.assert(
        fc.property(
          jsonInput(keyJson),
          fc.constantFrom(
            'ENCRYPTED SIGSTORE PRIVATE KEY',
            'ENCRYPTED COSIGN PRIVATE KEY',
            'PUBLIC KEY',
            'X',
          ),
          (bytes, type) => {
            outcome(() => parseEncryptedKey(bytes), KEY_CODES, bytes);
            outcome(() => parsePrivateKeyFile(pemText(type, bytes)), KEY_CODES, bytes);
            outcome(() => readPublicKey(pemText(type, bytes)), KEY_CODES, bytes);
          },
        ),
        params(seed, 300),
      );
    });

    it(`public key files, mutated, seed ${seed}`, () => {
      const rng = new Rng(seed);
      const pem = readablePublicPem();
      for (let i = 0; i < 300; i++) {
        const text = mutateBytes(rng, Buffer.from(pem)).toString('latin1');
        outcome(() => readPublicKey(text), KEY_CODES, text);
      }
    });

    it(`bundles: parser and check, seed ${seed}`, async () => {
      const statement = signStatement(DIGEST);
      const good = buildBundle(
        statement,
        await signer.sign(pae('application/vnd.in-toto+json', statement)),
        signer.material(),
      );
      const doc = JSON.parse(Buffer.from(good).toString());
      const rng = new Rng(seed);
      for (let i = 0; i < 300; i++) {
        const bytes = Buffer.from(rng.bool(0.5) ? mutateJson(rng, doc) : mutateBytes(rng, good));
        outcome(() => parseBundle(bytes), SIGNATURE_CODES, bytes);
        const check = checkBundle(bytes, DIGEST, verifier);
        assert.equal(typeof check.ok, 'boolean');
        if (check.ok) assert.ok(bytes.includes('dsseEnvelope'));
      }
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 200 }), (payload) => {
          outcome(() => parseStatement(payload), SIGNATURE_CODES, payload);
        }),
        params(seed, 200),
      );
    });

    it(`simple-signing payloads: parser and check, seed ${seed}`, async () => {
      const payload = simpleSigningPayload('example.com/app', DIGEST);
      const signature = Buffer.from(await signer.sign(payload)).toString('base64');
      const doc = JSON.parse(Buffer.from(payload).toString());
      const rng = new Rng(seed);
      for (let i = 0; i < 300; i++) {
        const bytes = Buffer.from(rng.bool(0.5) ? mutateJson(rng, doc) : mutateBytes(rng, payload));
        outcome(() => parseSimpleSigning(bytes), SIGNATURE_CODES, bytes);
        const check = checkSimpleSigning(bytes, rng.bool(0.8) ? signature : rng.string(12), DIGEST, verifier);
        // A changed payload can never carry the signature of the original.
        if (!Buffer.from(bytes).equals(Buffer.from(payload))) assert.equal(check.ok, false);
      }
      fc.assert(
        fc.property(anyString(60), (text) => {
          outcome(() => parseSimpleSigning(Buffer.from(text)), SIGNATURE_CODES, text);
        }),
        params(seed, 200),
      );
    });
  }

  it('decrypting mutated key files (a few: each costs a scrypt derivation)', async () => {
    const sealed = Buffer.from(await encryptKey(privateKey.export({ format: 'der', type: 'pkcs8' }), 'pw'));
    const rng = new Rng(154);
    for (let i = 0; i < 6; i++) {
      const text = pemText(
        'ENCRYPTED SIGSTORE PRIVATE KEY',
        Buffer.from(mutateJson(rng, JSON.parse(sealed.toString()))),
      );
      await outcomeAsync(() => readPrivateKey(text, 'pw'), KEY_CODES, text, undefined, 10_000);
    }
  });
});

function readablePublicPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .publicKey.export({ format: 'pem', type: 'spki' })
    .toString();
}
