import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants, createPublicKey, generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hasCode } from '../../errors.js';
import { integer, objectIdentifier, readTlv, sequence, time, tlv } from './der.js';
import {
  generateEcdsaKey,
  keyId,
  publicKeyObject,
  rootCertificate,
  rootCertificateProblem,
  signEcdsa,
  tufPublicKey,
  verifySignature,
} from './keys.js';
import { type PassphraseSource, parsePem, pbkdf2Rounds, TrustDirectory } from './keystore.js';

const OPENSSL = '/usr/bin/openssl';
const GUN = 'localhost:5000/hello';
let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wasm-to-oci-crypto-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('DER', () => {
  it('encodes lengths, integers, object identifiers and times', () => {
    assert.equal(tlv(0x04, Buffer.alloc(3)).toString('hex'), '0403000000');
    assert.equal(tlv(0x04, Buffer.alloc(200)).subarray(0, 3).toString('hex'), '0481c8');
    assert.equal(tlv(0x04, Buffer.alloc(300)).subarray(0, 4).toString('hex'), '0482012c');
    assert.equal(integer(0).toString('hex'), '020100');
    assert.equal(integer(127).toString('hex'), '02017f');
    assert.equal(integer(128).toString('hex'), '02020080');
    assert.equal(integer(100_000).toString('hex'), '02030186a0');
    assert.equal(integer(Buffer.from([0, 0, 0x12])).toString('hex'), '020112');
    assert.equal(objectIdentifier('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
    assert.equal(time(new Date('2036-01-02T03:04:05.678Z')).toString('latin1').slice(2), '360102030405Z');
    assert.equal(time(new Date('2050-01-02T03:04:05Z'))[0], 0x18);
  });

  it('reads back what it writes and refuses truncated input', () => {
    const der = sequence(integer(5), objectIdentifier('2.5.4.3'));
    const outer = readTlv(der);
    assert.equal(outer.tag, 0x30);
    assert.equal(readTlv(outer.content).content.toString('hex'), '05');
    assert.throws(() => readTlv(der.subarray(0, der.length - 1)), /truncated/);
    assert.throws(() => readTlv(Buffer.from([0x30])), /truncated/);
  });
});

describe('keys and signatures', () => {
  it('key IDs are the SHA-256 of the canonical public key; every key type round-trips', () => {
    const ec = generateEcdsaKey();
    const pub = tufPublicKey(createPublicKey(ec));
    assert.equal(pub.keytype, 'ecdsa');
    assert.match(keyId(pub), /^[0-9a-f]{64}$/);
    assert.equal(keyId({ ...pub, keyval: { private: 'ignored', public: pub.keyval.public } }), keyId(pub));
    const ed = tufPublicKey(createPublicKey(generateKeyPairSync('ed25519').privateKey));
    assert.equal(Buffer.from(ed.keyval.public, 'base64').length, 32);
    assert.equal(publicKeyObject(ed).asymmetricKeyType, 'ed25519');
  });

  it('checks ECDSA (raw r||s), Ed25519 and RSA-PSS signatures and refuses mismatches', () => {
    const msg = Buffer.from('{"signed":true}');
    const ec = generateEcdsaKey();
    const ecPub = tufPublicKey(createPublicKey(ec));
    const sig = signEcdsa(msg, ec);
    assert.equal(Buffer.from(sig, 'base64').length, 64);
    assert.equal(verifySignature('ecdsa', sig, msg, ecPub), true);
    assert.equal(verifySignature('ECDSA', sig, msg, ecPub), true);
    assert.equal(verifySignature('ecdsa', sig, Buffer.from('other'), ecPub), false);
    assert.equal(
      verifySignature('ecdsa', sign('sha256', msg, ec).toString('base64'), msg, ecPub),
      false,
      'DER form',
    );
    assert.equal(verifySignature('eddsa', sig, msg, ecPub), false, 'method does not fit the key');
    assert.equal(verifySignature('hmac', sig, msg, ecPub), false);

    const ed = generateKeyPairSync('ed25519').privateKey;
    const edPub = tufPublicKey(createPublicKey(ed));
    assert.equal(verifySignature('eddsa', sign(null, msg, ed).toString('base64'), msg, edPub), true);
    assert.equal(
      verifySignature('eddsa', sign(null, Buffer.from('x'), ed).toString('base64'), msg, edPub),
      false,
    );

    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const rsaPub = tufPublicKey(createPublicKey(rsa));
    const pss = sign('sha256', msg, { key: rsa, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    assert.equal(verifySignature('rsapss', pss.toString('base64'), msg, rsaPub), true);
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    const smallSig = sign('sha256', msg, {
      key: small,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    });
    assert.equal(
      verifySignature('rsapss', smallSig.toString('base64'), msg, tufPublicKey(createPublicKey(small))),
      false,
    );
  });
});

describe('root certificates', () => {
  it('are what Notary makes: self-signed, CN = GUN, not a CA, code signing, ten years', () => {
    const key = generateEcdsaKey();
    const now = new Date('2026-11-28T00:00:00Z');
    const pem = rootCertificate(GUN, key, { now });
    const cert = new X509Certificate(pem);
    assert.equal(cert.subject, `CN=${GUN}`);
    assert.equal(cert.issuer, `CN=${GUN}`);
    assert.equal(cert.ca, false);
    assert.ok(cert.verify(cert.publicKey));
    assert.equal(new Date(cert.validTo).getUTCFullYear(), 2036);
    assert.equal(rootCertificateProblem(cert, GUN, { checkExpiry: true, now }), undefined);
    const text = execFileSync(OPENSSL, ['x509', '-noout', '-text'], { input: pem }).toString();
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
    assert.match(text, /X509v3 Extended Key Usage:\s+Code Signing/);
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /ecdsa-with-SHA256/);
    // A GUN outside PrintableString (an underscore) is written as a UTF8String and still matches.
    const odd = new X509Certificate(rootCertificate('localhost:5000/my_app', key, { now }));
    assert.equal(rootCertificateProblem(odd, 'localhost:5000/my_app', { checkExpiry: true, now }), undefined);
  });

  it('say why they cannot vouch for a collection', async () => {
    const now = new Date('2026-11-28T00:00:00Z');
    const cert = new X509Certificate(rootCertificate(GUN, generateEcdsaKey(), { now }));
    assert.match(
      rootCertificateProblem(cert, 'localhost:5000/other', { checkExpiry: true, now }) ?? '',
      /not "localhost:5000\/other"/,
    );
    const later = new Date('2037-01-01T00:00:00Z');
    assert.match(
      rootCertificateProblem(cert, GUN, { checkExpiry: true, now: later }) ?? '',
      /expired on 2036/,
    );
    assert.equal(rootCertificateProblem(cert, GUN, { checkExpiry: false, now: later }), undefined);
    const early = new Date(now.getTime() - 2 * 86_400_000);
    assert.match(
      rootCertificateProblem(cert, GUN, { checkExpiry: true, now: early }) ?? '',
      /not valid before/,
    );
    const hoursEarly = new Date(now.getTime() - 3_600_000);
    assert.equal(
      rootCertificateProblem(cert, GUN, { checkExpiry: true, now: hoursEarly }),
      undefined,
      'one day leeway',
    );
    const wildcard = new X509Certificate(rootCertificate('localhost:5000/*', generateEcdsaKey(), { now }));
    assert.equal(rootCertificateProblem(wildcard, GUN, { checkExpiry: true, now }), undefined);

    const openssl = (name: string, args: string[]) => {
      const keyPath = join(work, `${name}.key`);
      const certPath = join(work, `${name}.crt`);
      execFileSync(
        OPENSSL,
        ['req', '-x509', '-nodes', '-days', '30', '-keyout', keyPath, '-out', certPath, ...args],
        {
          stdio: 'ignore',
        },
      );
      return readFile(certPath, 'utf8');
    };
    const ca = await openssl('ca', [
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-subj',
      `/CN=${GUN.replace('/', '\\/')}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
    ]);
    assert.match(
      rootCertificateProblem(new X509Certificate(ca), GUN, { checkExpiry: true, now: new Date() }) ?? '',
      /CA certificate/,
    );
    const sha1 = await openssl('sha1', [
      '-newkey',
      'rsa:2048',
      '-sha1',
      '-subj',
      `/CN=${GUN.replace('/', '\\/')}`,
      '-addext',
      'basicConstraints=critical,CA:FALSE',
    ]);
    assert.match(
      rootCertificateProblem(new X509Certificate(sha1), GUN, { checkExpiry: true, now: new Date() }) ?? '',
      /SHA-1/,
    );
  });
});

describe('the trust directory', () => {
  const source =
    (passphrase: string, log: string[] = []): PassphraseSource =>
    async (request) => {
      log.push(`${request.role}:${request.attempt}:${request.create}`);
      return request.attempt === 1 ? passphrase : undefined;
    };

  it('saves keys as Notary does (0600 in 0700, gun/role headers, PBKDF2-SHA1) and loads them back', async () => {
    const dir = new TrustDirectory(join(work, 'trust'));
    const key = generateEcdsaKey();
    const id = await dir.saveKey(key, 'targets', GUN, source('targets-pass'));
    const rootId = await dir.saveKey(generateEcdsaKey(), 'root', undefined, source('root-pass'));
    const path = join(work, 'trust', 'private', `${id}.key`);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(work, 'trust'))).mode & 0o777, 0o700);
    assert.equal((await stat(join(work, 'trust', 'private'))).mode & 0o777, 0o700);
    const text = await readFile(path, 'utf8');
    assert.match(text, new RegExp(`^-----BEGIN ENCRYPTED PRIVATE KEY-----\ngun: ${GUN}\nrole: targets\n\n`));
    const block = parsePem(text);
    assert.ok(block);
    assert.equal(pbkdf2Rounds(block.der), 100_000);
    // openssl reads the same bytes with the passphrase (PBES2, PBKDF2 with HMAC-SHA1, AES-256-CBC).
    const der = join(work, 'key.der');
    await writeFile(der, block.der);
    const plain = execFileSync(OPENSSL, [
      'pkcs8',
      '-inform',
      'DER',
      '-in',
      der,
      '-passin',
      'pass:targets-pass',
    ]);
    assert.match(plain.toString(), /BEGIN PRIVATE KEY/);
    assert.match(execFileSync(OPENSSL, ['asn1parse', '-inform', 'DER', '-in', der]).toString(), /PBKDF2/);

    const keys = await dir.listKeys();
    assert.deepEqual(
      keys.map((k) => [k.role, k.gun]).sort(),
      [
        ['root', undefined],
        ['targets', GUN],
      ].sort(),
    );
    const loaded = await dir.loadKey(
      (await dir.findKey(id)) ?? assert.fail('no key'),
      source('targets-pass'),
    );
    assert.deepEqual(loaded.export({ format: 'jwk' }), key.export({ format: 'jwk' }));
    assert.ok(await dir.findKey(rootId));
    assert.equal(await dir.findKey('not-an-id'), undefined);
  });

  it('asks again after a wrong passphrase and reports PASSPHRASE when the source gives up', async () => {
    const dir = new TrustDirectory(join(work, 'trust2'));
    const id = await dir.saveKey(generateEcdsaKey(), 'snapshot', GUN, source('right-pass'));
    const file = (await dir.findKey(id)) ?? assert.fail('no key');
    const log: string[] = [];
    await assert.rejects(
      dir.loadKey(file, source('wrong-pass', log)),
      (err) =>
        hasCode(err, 'PASSPHRASE') &&
        /wrong passphrase for the snapshot key of localhost:5000\/hello/.test(err.message),
    );
    assert.deepEqual(log, ['snapshot:1:false', 'snapshot:2:false']);
    const answers = ['wrong-pass', 'right-pass'];
    const key = await dir.loadKey(file, async (r) => answers[r.attempt - 1]);
    assert.equal(key.asymmetricKeyType, 'ec');
    await assert.rejects(
      dir.saveKey(generateEcdsaKey(), 'root', undefined, async () => undefined),
      (err) => hasCode(err, 'PASSPHRASE'),
    );
  });

  it('refuses a key file whose name is not its key ID', async () => {
    const dir = new TrustDirectory(join(work, 'trust3'));
    const id = await dir.saveKey(generateEcdsaKey(), 'targets', GUN, source('pass-1234'));
    const other = await dir.saveKey(generateEcdsaKey(), 'targets', GUN, source('pass-1234'));
    const a = join(work, 'trust3', 'private', `${id}.key`);
    const b = join(work, 'trust3', 'private', `${other}.key`);
    await writeFile(a, await readFile(b));
    await writeFile(join(work, 'trust3', 'private', 'notes.txt'), 'not a key');
    assert.equal((await dir.listKeys()).length, 2);
    await assert.rejects(
      dir.loadKey((await dir.findKey(id)) ?? assert.fail('no key'), source('pass-1234')),
      (err) => hasCode(err, 'SIGNING_KEY'),
    );
  });

  it('refuses cache names that would leave their place, and says a corrupt key file is corrupt', async () => {
    const dir = new TrustDirectory(join(work, 'trust5'));
    for (const role of ['targets/../root', '../x', 'targets//a']) {
      await assert.rejects(
        dir.writeMetadata(GUN, role, Buffer.from('{}')),
        (err) => hasCode(err, 'TRUST'),
        role,
      );
    }
    const id = await dir.saveKey(generateEcdsaKey(), 'targets', GUN, source('pass-1234'));
    const path = join(work, 'trust5', 'private', `${id}.key`);
    await writeFile(
      path,
      '-----BEGIN ENCRYPTED PRIVATE KEY-----\nrole: targets\n\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n',
    );
    const log: string[] = [];
    await assert.rejects(
      dir.loadKey((await dir.findKey(id)) ?? assert.fail('no key'), source('pass-1234', log)),
      (err) => hasCode(err, 'SIGNING_KEY') && /is corrupt/.test(err.message),
    );
    assert.deepEqual(log, [], 'no passphrase asked for a corrupt file');
  });

  it('caches metadata per collection and role, delegations in subdirectories', async () => {
    const dir = new TrustDirectory(join(work, 'trust4'));
    const gun = '127.0.0.1:5000/a/b';
    assert.equal(await dir.readMetadata(gun, 'root'), undefined);
    await dir.writeMetadata(gun, 'targets/releases', Buffer.from('{"x":1}'));
    assert.equal((await dir.readMetadata(gun, 'targets/releases'))?.toString(), '{"x":1}');
    const path = join(
      work,
      'trust4',
      'tuf',
      '127.0.0.1:5000',
      'a',
      'b',
      'metadata',
      'targets',
      'releases.json',
    );
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });
});
