import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  constants,
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  X509Certificate,
} from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hasCode } from '../../errors.js';
import {
  certificateKey,
  commonName,
  generateEcdsaKey,
  keyCertificate,
  keyId,
  privateKeyId,
  publicKeyObject,
  rootCertificate,
  rootCertificateProblem,
  signEcdsa,
  type TufKey,
  tufPublicKey,
  verifySignature,
} from './keys.js';

const OPENSSL = '/usr/bin/openssl';
const hasOpenssl = existsSync(OPENSSL);
const GUN = 'localhost:5000/hello';
const NOW = new Date('2026-11-28T12:00:00Z');
const MESSAGE = Buffer.from('{"_type":"Targets","version":1}');

// Generated once for the file: RSA key generation is the slow part.
const ec = generateEcdsaKey();
const ecPub = tufPublicKey(createPublicKey(ec));
const ed = generateKeyPairSync('ed25519').privateKey;
const edPub = tufPublicKey(createPublicKey(ed));
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const rsaPub = tufPublicKey(createPublicKey(rsa));

const pssSign = (message: Buffer, key: KeyObject, saltLength = 32) =>
  sign('sha256', message, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }).toString('base64');
const pkcs1Sign = (message: Buffer, key: KeyObject) =>
  sign('sha256', message, { key, padding: constants.RSA_PKCS1_PADDING }).toString('base64');

let work: string | undefined;
function workDir(): string {
  work ??= mkdtempSync(join(tmpdir(), 'wasm-to-oci-keys-'));
  return work;
}
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('key IDs', () => {
  it('are the hex SHA-256 of {"keytype":...,"keyval":{"private":null,"public":...}}', () => {
    const json = `{"keytype":"ecdsa","keyval":{"private":null,"public":"${ecPub.keyval.public}"}}`;
    assert.equal(keyId(ecPub), createHash('sha256').update(json).digest('hex'));
    assert.match(keyId(ecPub), /^[0-9a-f]{64}$/);
  });

  it('are stable, ignore the private part and differ between keys and key types', () => {
    const again = tufPublicKey(createPublicKey(ec));
    assert.equal(keyId(again), keyId(ecPub));
    assert.equal(
      keyId({ ...ecPub, keyval: { private: 'c2VjcmV0', public: ecPub.keyval.public } }),
      keyId(ecPub),
    );
    assert.equal(keyId({ keytype: 'ecdsa', keyval: { public: ecPub.keyval.public } }), keyId(ecPub));
    assert.notEqual(keyId(tufPublicKey(createPublicKey(generateEcdsaKey()))), keyId(ecPub));
    assert.notEqual(keyId({ ...ecPub, keytype: 'ecdsa-x509' }), keyId(ecPub));
  });

  it('match an ID notary-server published', () => {
    const key = {
      keytype: 'ed25519',
      keyval: { private: null, public: 'OZfN50Xg8Il29IePUkH9TpG7Nuw0bVSVwKMfdlfChWk=' },
    };
    assert.equal(keyId(key), '221e545cb203b01d9c04a5c2fca382627b9d92c74c383d3fcf26b0229fde5051');
  });
});

describe('TUF public keys', () => {
  it('write EC and RSA keys as base64 SPKI DER, Ed25519 keys as their 32 raw bytes', () => {
    const ecSpki = createPublicKey(ec).export({ type: 'spki', format: 'der' });
    assert.deepEqual(ecPub, {
      keytype: 'ecdsa',
      keyval: { private: null, public: ecSpki.toString('base64') },
    });
    const rsaSpki = createPublicKey(rsa).export({ type: 'spki', format: 'der' });
    assert.deepEqual(rsaPub, {
      keytype: 'rsa',
      keyval: { private: null, public: rsaSpki.toString('base64') },
    });
    assert.equal(edPub.keytype, 'ed25519');
    assert.equal(edPub.keyval.private, null);
    const raw = Buffer.from(edPub.keyval.public, 'base64');
    assert.equal(raw.length, 32);
    const jwk = createPublicKey(ed).export({ format: 'jwk' });
    assert.equal(raw.toString('base64url'), jwk.x);
  });

  it('refuse key types Notary has no form for', () => {
    const x25519 = createPublicKey(generateKeyPairSync('x25519').privateKey);
    assert.throws(
      () => tufPublicKey(x25519),
      (err) => hasCode(err, 'UNSUPPORTED') && /x25519/.test(err.message),
    );
  });

  it('round-trip through publicKeyObject for every key type', () => {
    for (const [name, key, pub] of [
      ['ecdsa', ec, ecPub],
      ['ed25519', ed, edPub],
      ['rsa', rsa, rsaPub],
    ] as const) {
      const back = publicKeyObject(pub);
      assert.equal(back.type, 'public', name);
      assert.ok(back.equals(createPublicKey(key)), name);
      assert.deepEqual(tufPublicKey(back), pub, name);
    }
    const p384 = createPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey);
    assert.ok(publicKeyObject(tufPublicKey(p384)).equals(p384));
  });

  it('give the certificate key of an *-x509 key', () => {
    const pem = rootCertificate(GUN, ec, { now: NOW });
    const certKey = certificateKey(pem);
    assert.equal(certKey.keytype, 'ecdsa-x509');
    assert.equal(certKey.keyval.private, null);
    assert.equal(Buffer.from(certKey.keyval.public, 'base64').toString('utf8'), pem);
    assert.ok(publicKeyObject(certKey).equals(createPublicKey(ec)));
    assert.ok(publicKeyObject({ ...certKey, keytype: 'rsa-x509' }).equals(createPublicKey(ec)));
  });

  it('refuse malformed keys', () => {
    assert.throws(
      () => publicKeyObject({ keytype: 'dsa', keyval: { public: ecPub.keyval.public } }),
      /unknown/,
    );
    const short = Buffer.from(edPub.keyval.public, 'base64').subarray(1).toString('base64');
    assert.throws(() => publicKeyObject({ keytype: 'ed25519', keyval: { public: short } }), /32 bytes/);
    assert.throws(() => publicKeyObject({ keytype: 'ecdsa', keyval: { public: 'AAAA' } }));
    assert.throws(() =>
      publicKeyObject({ keytype: 'rsa', keyval: { public: ecPub.keyval.public.slice(8) } }),
    );
    const noCert = {
      keytype: 'ecdsa-x509',
      keyval: { public: Buffer.from('no pem here').toString('base64') },
    };
    assert.throws(() => publicKeyObject(noCert), /no certificate/);
  });
});

describe('key certificates and private key IDs', () => {
  const pem = rootCertificate(GUN, ec, { now: NOW });
  const certKey = certificateKey(pem);

  it('read the first certificate of an x509 key, and nothing from a bare key', () => {
    assert.equal(keyCertificate(ecPub), undefined);
    assert.equal(keyCertificate(edPub), undefined);
    const cert = keyCertificate(certKey);
    assert.ok(cert);
    assert.equal(cert.subject, `CN=${GUN}`);
    const other = rootCertificate('localhost:5000/intermediate', generateEcdsaKey(), { now: NOW });
    const chain = certificateKey(`${pem}${other}`);
    assert.equal(keyCertificate(chain)?.fingerprint256, new X509Certificate(pem).fingerprint256);
  });

  it('file a certificate key under the ID of its bare public key, as Notary does', () => {
    assert.equal(privateKeyId(certKey), keyId(ecPub));
    assert.notEqual(privateKeyId(certKey), keyId(certKey));
    assert.equal(privateKeyId(ecPub), keyId(ecPub));
    assert.equal(privateKeyId(edPub), keyId(edPub));
    assert.equal(privateKeyId(rsaPub), keyId(rsaPub));
  });

  it('name the common name of a certificate', () => {
    assert.equal(commonName(new X509Certificate(pem)), GUN);
  });
});

describe('signatures', () => {
  it('ECDSA: raw r||s over SHA-256, verified; altered message, signature or key refused', () => {
    const sig = signEcdsa(MESSAGE, ec);
    const raw = Buffer.from(sig, 'base64');
    assert.equal(raw.length, 64);
    assert.equal(verifySignature('ecdsa', sig, MESSAGE, ecPub), true);
    assert.equal(verifySignature('ecdsa', sig, Buffer.from(`${MESSAGE} `), ecPub), false);
    const flipped = Buffer.from(raw);
    flipped[10] = (flipped[10] as number) ^ 1;
    assert.equal(verifySignature('ecdsa', flipped.toString('base64'), MESSAGE, ecPub), false);
    const otherPub = tufPublicKey(createPublicKey(generateEcdsaKey()));
    assert.equal(verifySignature('ecdsa', sig, MESSAGE, otherPub), false);
  });

  it('ECDSA: a signature of the wrong length, DER-encoded, empty or not base64 is refused', () => {
    const raw = Buffer.from(signEcdsa(MESSAGE, ec), 'base64');
    assert.equal(verifySignature('ecdsa', raw.subarray(0, 63).toString('base64'), MESSAGE, ecPub), false);
    const longer = Buffer.concat([raw, Buffer.from([0])]).toString('base64');
    assert.equal(verifySignature('ecdsa', longer, MESSAGE, ecPub), false);
    const der = sign('sha256', MESSAGE, ec);
    assert.equal(verifySignature('ecdsa', der.toString('base64'), MESSAGE, ecPub), false);
    assert.equal(verifySignature('ecdsa', '', MESSAGE, ecPub), false);
    assert.equal(verifySignature('ecdsa', '!!!not base64!!!', MESSAGE, ecPub), false);
  });

  it('ECDSA: P-384 signatures are 96 bytes; curves Notary does not know are refused', () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const sig = sign('sha256', MESSAGE, { key: p384, dsaEncoding: 'ieee-p1363' });
    assert.equal(sig.length, 96);
    assert.equal(
      verifySignature('ecdsa', sig.toString('base64'), MESSAGE, tufPublicKey(createPublicKey(p384))),
      true,
    );
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey;
    const k1Sig = sign('sha256', MESSAGE, { key: k1, dsaEncoding: 'ieee-p1363' }).toString('base64');
    assert.equal(verifySignature('ecdsa', k1Sig, MESSAGE, tufPublicKey(createPublicKey(k1))), false);
  });

  it('ECDSA: a root certificate key verifies the signatures of its key', () => {
    const certKey = certificateKey(rootCertificate(GUN, ec, { now: NOW }));
    assert.equal(verifySignature('ecdsa', signEcdsa(MESSAGE, ec), MESSAGE, certKey), true);
    assert.equal(verifySignature('ecdsa', signEcdsa(MESSAGE, generateEcdsaKey()), MESSAGE, certKey), false);
  });

  it('EdDSA: valid, altered, short and foreign signatures', () => {
    const sig = sign(null, MESSAGE, ed);
    assert.equal(verifySignature('eddsa', sig.toString('base64'), MESSAGE, edPub), true);
    assert.equal(verifySignature('eddsa', sig.toString('base64'), Buffer.from('other'), edPub), false);
    assert.equal(verifySignature('eddsa', sig.subarray(0, 63).toString('base64'), MESSAGE, edPub), false);
    const other = sign(null, MESSAGE, generateKeyPairSync('ed25519').privateKey);
    assert.equal(verifySignature('eddsa', other.toString('base64'), MESSAGE, edPub), false);
  });

  it('RSA-PSS (SHA-256, salt of 32 bytes) and RSA PKCS#1 v1.5 with a 2048-bit key', () => {
    assert.equal(verifySignature('rsapss', pssSign(MESSAGE, rsa), MESSAGE, rsaPub), true);
    assert.equal(verifySignature('rsapss', pssSign(Buffer.from('x'), rsa), MESSAGE, rsaPub), false);
    // Notary (Go's PSSSaltLengthEqualsHash) wants a 32-byte salt exactly.
    assert.equal(verifySignature('rsapss', pssSign(MESSAGE, rsa, 20), MESSAGE, rsaPub), false);
    assert.equal(verifySignature('rsapkcs1v15', pkcs1Sign(MESSAGE, rsa), MESSAGE, rsaPub), true);
    // The padding must be the one the method names.
    assert.equal(verifySignature('rsapss', pkcs1Sign(MESSAGE, rsa), MESSAGE, rsaPub), false);
    assert.equal(verifySignature('rsapkcs1v15', pssSign(MESSAGE, rsa), MESSAGE, rsaPub), false);
  });

  it('RSA keys shorter than 2048 bits are refused, even with a good signature', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    const smallPub = tufPublicKey(createPublicKey(small));
    assert.equal(verifySignature('rsapss', pssSign(MESSAGE, small), MESSAGE, smallPub), false);
    assert.equal(verifySignature('rsapkcs1v15', pkcs1Sign(MESSAGE, small), MESSAGE, smallPub), false);
  });

  it('an unknown method, or a method that does not fit the key, is refused', () => {
    const ecSig = signEcdsa(MESSAGE, ec);
    const edSig = sign(null, MESSAGE, ed).toString('base64');
    const pss = pssSign(MESSAGE, rsa);
    for (const method of ['', 'hmac-sha256', 'ecdsa-sha512', 'rsa', 'ed25519']) {
      assert.equal(verifySignature(method, ecSig, MESSAGE, ecPub), false, method);
    }
    assert.equal(verifySignature('eddsa', ecSig, MESSAGE, ecPub), false);
    assert.equal(verifySignature('rsapss', ecSig, MESSAGE, ecPub), false);
    assert.equal(verifySignature('ecdsa', edSig, MESSAGE, edPub), false);
    assert.equal(verifySignature('rsapss', edSig, MESSAGE, edPub), false);
    assert.equal(verifySignature('ecdsa', pss, MESSAGE, rsaPub), false);
    assert.equal(verifySignature('eddsa', pss, MESSAGE, rsaPub), false);
  });

  it('a malformed key makes a signature invalid rather than throwing', () => {
    const sig = signEcdsa(MESSAGE, ec);
    const bad: TufKey[] = [
      { keytype: 'ecdsa', keyval: { public: 'AAAA' } },
      { keytype: 'ecdsa-x509', keyval: { public: 'AAAA' } },
      { keytype: 'unknown', keyval: { public: ecPub.keyval.public } },
    ];
    for (const key of bad) assert.equal(verifySignature('ecdsa', sig, MESSAGE, key), false, key.keytype);
  });

  it('method names are matched case-insensitively', () => {
    assert.equal(verifySignature('ECDSA', signEcdsa(MESSAGE, ec), MESSAGE, ecPub), true);
    assert.equal(verifySignature('EdDSA', sign(null, MESSAGE, ed).toString('base64'), MESSAGE, edPub), true);
  });

  it('an upper-case RSAPSS method still means PSS padding', () => {
    assert.equal(verifySignature('RSAPSS', pssSign(MESSAGE, rsa), MESSAGE, rsaPub), true);
    assert.equal(verifySignature('RSAPSS', pkcs1Sign(MESSAGE, rsa), MESSAGE, rsaPub), false);
  });
});

describe('root certificates as trust anchors', () => {
  const cert = new X509Certificate(rootCertificate(GUN, ec, { now: NOW }));
  const check = (c: X509Certificate, gun: string, now = NOW, checkExpiry = true) =>
    rootCertificateProblem(c, gun, { checkExpiry, now });

  it('vouch for the GUN they name', () => {
    assert.equal(check(cert, GUN), undefined);
  });

  it('refuse another GUN, a prefix or an extension of theirs', () => {
    for (const other of [
      'localhost:5000/other',
      'localhost:5000',
      'localhost:5000/hello/sub',
      'Localhost:5000/hello',
    ]) {
      assert.equal(check(cert, other), `its certificate is for "${GUN}", not "${other}"`, other);
    }
  });

  it('with a trailing * in the CN, vouch for every GUN with that prefix', () => {
    const wildcard = new X509Certificate(
      rootCertificate('localhost:5000/*', generateEcdsaKey(), { now: NOW }),
    );
    assert.equal(commonName(wildcard), 'localhost:5000/*');
    assert.equal(check(wildcard, GUN), undefined);
    assert.equal(check(wildcard, 'localhost:5000/a/b'), undefined);
    assert.match(check(wildcard, 'localhost:5001/hello') ?? '', /is for "localhost:5000\/\*"/);
    assert.match(check(wildcard, 'otherhost/localhost:5000/x') ?? '', /is for/);
  });

  it('expire: refused after their end unless expiry is not checked', () => {
    const to = new Date(cert.validTo);
    assert.equal(check(cert, GUN, to), undefined, 'valid up to the last second');
    const later = new Date(to.getTime() + 1000);
    assert.equal(check(cert, GUN, later), `its certificate expired on ${to.toISOString()}`);
    assert.equal(check(cert, GUN, new Date('2040-01-01T00:00:00Z'), false), undefined);
  });

  it('are accepted up to a day before they start (clock skew), not earlier', () => {
    const from = new Date(cert.validFrom);
    assert.equal(check(cert, GUN, new Date(from.getTime() - 23 * 3_600_000)), undefined);
    assert.equal(check(cert, GUN, new Date(from.getTime() - 86_400_000)), undefined);
    const early = new Date(from.getTime() - 25 * 3_600_000);
    assert.equal(check(cert, GUN, early), `its certificate is not valid before ${from.toISOString()}`);
    assert.equal(check(cert, GUN, early, false), undefined);
  });

  describe('made by openssl', { skip: !hasOpenssl && 'no openssl' }, () => {
    const CN = 'registry.example/team/app';
    let n = 0;
    const openssl = (newkey: string[], extra: string[]): X509Certificate => {
      const dir = workDir();
      const name = `c${n++}`;
      execFileSync(
        OPENSSL,
        [
          'req',
          '-x509',
          '-nodes',
          '-days',
          '30',
          ...newkey,
          '-subj',
          `/CN=${CN.replaceAll('/', '\\/')}`,
          '-keyout',
          join(dir, `${name}.key`),
          '-out',
          join(dir, `${name}.crt`),
          ...extra,
        ],
        { stdio: 'ignore' },
      );
      return new X509Certificate(readFileSync(join(dir, `${name}.crt`)));
    };
    const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
    const leaf = ['-addext', 'basicConstraints=critical,CA:FALSE'];
    const now = () => new Date();

    it('an ordinary ECDSA / SHA-256 leaf is accepted (the control)', () => {
      const c = openssl(P256, ['-sha256', ...leaf]);
      assert.equal(commonName(c), CN);
      assert.equal(check(c, CN, now()), undefined);
    });

    it('a CA certificate is refused', () => {
      const c = openssl(P256, ['-sha256', '-addext', 'basicConstraints=critical,CA:TRUE']);
      assert.equal(c.ca, true);
      assert.equal(check(c, CN, now()), 'its certificate is a CA certificate');
    });

    it('SHA-1 signatures are refused, RSA and ECDSA alike; SHA-256 with the same RSA size is not', () => {
      assert.equal(
        check(openssl(['-newkey', 'rsa:2048'], ['-sha1', ...leaf]), CN, now()),
        'its certificate is signed with SHA-1',
      );
      assert.equal(
        check(openssl(P256, ['-sha1', ...leaf]), CN, now()),
        'its certificate is signed with SHA-1',
      );
      assert.equal(check(openssl(['-newkey', 'rsa:2048'], ['-sha256', ...leaf]), CN, now()), undefined);
    });

    it('RSA keys under 2048 bits are refused', () => {
      const c = openssl(['-newkey', 'rsa:1024'], ['-sha256', ...leaf]);
      assert.equal(check(c, CN, now()), 'its RSA key is shorter than 2048 bits');
    });

    it('a certificate without a common name vouches for nothing', () => {
      const dir = workDir();
      execFileSync(
        OPENSSL,
        [
          'req',
          '-x509',
          '-nodes',
          '-days',
          '30',
          ...P256,
          '-subj',
          '/O=nobody',
          '-keyout',
          join(dir, 'o.key'),
          '-out',
          join(dir, 'o.crt'),
        ],
        { stdio: 'ignore' },
      );
      const c = new X509Certificate(readFileSync(join(dir, 'o.crt')));
      assert.equal(commonName(c), undefined);
      assert.equal(check(c, CN, now()), `its certificate is for "", not "${CN}"`);
    });
  });
});
