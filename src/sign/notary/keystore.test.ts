import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hasCode } from '../../errors.js';
import { readTlv } from './der.js';
import { generateEcdsaKey, keyId, tufPublicKey } from './keys.js';
import {
  encryptPkcs8,
  type PassphraseRequest,
  type PassphraseSource,
  parsePem,
  passphraseVariable,
  pbkdf2Rounds,
  privateKeyIdOf,
  TrustDirectory,
} from './keystore.js';

const OPENSSL = '/usr/bin/openssl';
const hasOpenssl = existsSync(OPENSSL);
const GUN = 'localhost:5000/team/app';

let work: string;
let n = 0;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wasm-to-oci-keystore-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A fresh trust directory path (not created yet) under the temp dir. */
const fresh = () => join(work, `trust${n++}`);

/** Answers `answers[attempt - 1]` and records every request. */
function scripted(answers: (string | undefined)[], log: PassphraseRequest[] = []): PassphraseSource {
  return async (request) => {
    log.push({ ...request });
    return answers[request.attempt - 1];
  };
}

const mode = async (path: string) => (await stat(path)).mode & 0o777;
const samePrivateKey = (a: KeyObject, b: KeyObject) =>
  assert.deepEqual(a.export({ format: 'jwk' }), b.export({ format: 'jwk' }));

/** The PEM body without its headers (what tools other than Notary read). */
function withoutHeaders(text: string): string {
  return text
    .split('\n')
    .filter((line) => !/^[a-z]+: /.test(line) && line !== '')
    .join('\n')
    .concat('\n');
}

describe('saving and loading keys', () => {
  it('saves a key under its ID and loads it back with the right passphrase', async () => {
    const dir = new TrustDirectory(fresh());
    const key = generateEcdsaKey();
    const log: PassphraseRequest[] = [];
    const id = await dir.saveKey(key, 'targets', GUN, scripted(['targets secret'], log));
    assert.equal(id, keyId(tufPublicKey(createPublicKey(key))));
    assert.equal(id, privateKeyIdOf(key));
    assert.deepEqual(log, [{ role: 'targets', gun: GUN, keyId: id, create: true, attempt: 1 }]);

    const file = await dir.findKey(id);
    assert.deepEqual(file, { id, role: 'targets', gun: GUN, path: join(dir.path, 'private', `${id}.key`) });
    const loadLog: PassphraseRequest[] = [];
    const loaded = await dir.loadKey(file, scripted(['targets secret'], loadLog));
    samePrivateKey(loaded, key);
    assert.equal(loaded.type, 'private');
    assert.deepEqual(loadLog, [{ role: 'targets', gun: GUN, keyId: id, create: false, attempt: 1 }]);
  });

  it('writes key files 0600 in 0700 directories, and leaves no temporary file', async () => {
    const root = fresh();
    const dir = new TrustDirectory(root);
    const id = await dir.saveKey(generateEcdsaKey(), 'snapshot', GUN, scripted(['pw']));
    assert.equal(await mode(root), 0o700);
    assert.equal(await mode(join(root, 'private')), 0o700);
    assert.equal(await mode(join(root, 'private', `${id}.key`)), 0o600);
    assert.deepEqual(await readdir(join(root, 'private')), [`${id}.key`]);
  });

  it('writes Notary PEM: gun and role headers, a blank line, 64-column base64', async () => {
    const dir = new TrustDirectory(fresh());
    const id = await dir.saveKey(generateEcdsaKey(), 'targets', GUN, scripted(['pw']));
    const text = await readFile(join(dir.path, 'private', `${id}.key`), 'utf8');
    const lines = text.split('\n');
    assert.deepEqual(lines.slice(0, 4), [
      '-----BEGIN ENCRYPTED PRIVATE KEY-----',
      `gun: ${GUN}`,
      'role: targets',
      '',
    ]);
    assert.equal(lines.at(-2), '-----END ENCRYPTED PRIVATE KEY-----');
    assert.equal(lines.at(-1), '');
    const body = lines.slice(4, -2);
    for (const line of body) assert.match(line, /^[A-Za-z0-9+/=]{1,64}$/);
    for (const line of body.slice(0, -1)) assert.equal(line.length, 64);
  });

  it('writes a root key with a role header and no gun', async () => {
    const dir = new TrustDirectory(fresh());
    const id = await dir.saveKey(generateEcdsaKey(), 'root', undefined, scripted(['pw']));
    const text = await readFile(join(dir.path, 'private', `${id}.key`), 'utf8');
    assert.match(text, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\nrole: root\n\n/);
    assert.doesNotMatch(text, /gun:/);
    const block = parsePem(text);
    assert.deepEqual(block?.headers, { role: 'root' });
    assert.deepEqual(await dir.findKey(id), {
      id,
      role: 'root',
      gun: undefined,
      path: join(dir.path, 'private', `${id}.key`),
    });
  });

  it('encrypts with PBKDF2 at 100 000 rounds', async () => {
    const dir = new TrustDirectory(fresh());
    const id = await dir.saveKey(generateEcdsaKey(), 'targets', GUN, scripted(['pw']));
    const block = parsePem(await readFile(join(dir.path, 'private', `${id}.key`), 'utf8'));
    assert.ok(block);
    assert.equal(block.type, 'ENCRYPTED PRIVATE KEY');
    assert.equal(pbkdf2Rounds(block.der), 100_000);
  });

  it('loads an unencrypted PKCS#8 key file without asking for a passphrase', async () => {
    const dir = new TrustDirectory(fresh());
    const key = generateEcdsaKey();
    const id = privateKeyIdOf(key);
    await mkdir(join(dir.path, 'private'), { recursive: true });
    const pem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
    await writeFile(
      join(dir.path, 'private', `${id}.key`),
      pem.replace('-----\n', '-----\nrole: targets\n\n'),
    );
    const log: PassphraseRequest[] = [];
    const file = await dir.findKey(id);
    assert.ok(file);
    samePrivateKey(await dir.loadKey(file, scripted([], log)), key);
    assert.deepEqual(log, []);
  });
});

describe('passphrases', () => {
  const saved = async (role: string, gun: string | undefined) => {
    const dir = new TrustDirectory(fresh());
    const key = generateEcdsaKey();
    const id = await dir.saveKey(key, role, gun, scripted(['right one']));
    const file = await dir.findKey(id);
    assert.ok(file);
    return { dir, key, id, file };
  };

  it('a wrong passphrase is asked again; PASSPHRASE when the source gives up', async () => {
    const { dir, id, file } = await saved('targets', GUN);
    const log: PassphraseRequest[] = [];
    await assert.rejects(dir.loadKey(file, scripted(['wrong one', undefined], log)), (err) => {
      assert.ok(hasCode(err, 'PASSPHRASE'));
      assert.equal(err.message, `wrong passphrase for the targets key of ${GUN} (${id.slice(0, 7)})`);
      assert.match(err.hint ?? '', /SIGNY_TARGETS_PASSPHRASE/);
      assert.doesNotMatch(`${err.message} ${err.hint}`, /wrong one/);
      return true;
    });
    assert.deepEqual(
      log.map((r) => [r.attempt, r.create, r.role, r.gun, r.keyId]),
      [
        [1, false, 'targets', GUN, id],
        [2, false, 'targets', GUN, id],
      ],
    );
  });

  it('a right passphrase on the second attempt loads the key', async () => {
    const { dir, key, file } = await saved('targets', GUN);
    const log: PassphraseRequest[] = [];
    samePrivateKey(await dir.loadKey(file, scripted(['wrong one', 'right one'], log)), key);
    assert.deepEqual(
      log.map((r) => r.attempt),
      [1, 2],
    );
  });

  it('gives up after three wrong passphrases', async () => {
    const { dir, file } = await saved('snapshot', GUN);
    let asked = 0;
    await assert.rejects(
      dir.loadKey(file, async () => {
        asked++;
        return 'always wrong';
      }),
      (err) => hasCode(err, 'PASSPHRASE') && /snapshot key/.test(err.message),
    );
    assert.equal(asked, 3);
  });

  it('a source that gives nothing at once is PASSPHRASE; the hint names the role variable', async () => {
    const root = await saved('root', undefined);
    await assert.rejects(
      root.dir.loadKey(root.file, scripted([])),
      (err) =>
        hasCode(err, 'PASSPHRASE') &&
        err.message === `wrong passphrase for the root key (${root.id.slice(0, 7)})` &&
        /SIGNY_ROOT_PASSPHRASE/.test(err.hint ?? ''),
    );
    const delegation = await saved('targets/releases', GUN);
    await assert.rejects(
      delegation.dir.loadKey(delegation.file, scripted([])),
      (err) => hasCode(err, 'PASSPHRASE') && /SIGNY_DELEGATION_PASSPHRASE/.test(err.hint ?? ''),
    );
  });

  it('saving a key without a passphrase (undefined or empty) is PASSPHRASE and writes nothing', async () => {
    for (const answer of [undefined, '']) {
      const dir = new TrustDirectory(fresh());
      const log: PassphraseRequest[] = [];
      await assert.rejects(
        dir.saveKey(generateEcdsaKey(), 'snapshot', GUN, scripted([answer], log)),
        (err) =>
          hasCode(err, 'PASSPHRASE') &&
          err.message === 'no passphrase for the new snapshot key' &&
          /SIGNY_SNAPSHOT_PASSPHRASE/.test(err.hint ?? ''),
      );
      assert.equal(log.length, 1);
      assert.equal(log[0]?.create, true);
      assert.deepEqual(await dir.listKeys(), []);
      assert.equal(existsSync(dir.path), false);
    }
  });

  it('names the environment variable part of each role', () => {
    assert.equal(passphraseVariable('root'), 'ROOT');
    assert.equal(passphraseVariable('targets'), 'TARGETS');
    assert.equal(passphraseVariable('snapshot'), 'SNAPSHOT');
    assert.equal(passphraseVariable('targets/releases'), 'DELEGATION');
    assert.equal(passphraseVariable('targets/qa/nightly'), 'DELEGATION');
  });
});

describe('key files that are not what they say', () => {
  it('a file whose name is not the ID of the key it holds is SIGNING_KEY, even with the right passphrase', async () => {
    const dir = new TrustDirectory(fresh());
    const a = await dir.saveKey(generateEcdsaKey(), 'targets', GUN, scripted(['pw']));
    const b = await dir.saveKey(generateEcdsaKey(), 'targets', GUN, scripted(['pw']));
    await copyFile(join(dir.path, 'private', `${b}.key`), join(dir.path, 'private', `${a}.key`));
    const file = await dir.findKey(a);
    assert.ok(file);
    await assert.rejects(
      dir.loadKey(file, scripted(['pw'])),
      (err) => hasCode(err, 'SIGNING_KEY') && /does not hold the key its name says/.test(err.message),
    );
  });

  it('a file that is not PEM, or holds no private key, is SIGNING_KEY', async () => {
    const dir = new TrustDirectory(fresh());
    await mkdir(join(dir.path, 'private'), { recursive: true });
    const id = 'a'.repeat(64);
    const path = join(dir.path, 'private', `${id}.key`);
    const file = { id, role: 'targets', gun: GUN, path };
    await writeFile(path, 'just text');
    await assert.rejects(
      dir.loadKey(file, scripted(['pw'])),
      (err) => hasCode(err, 'SIGNING_KEY') && /not a PEM key file/.test(err.message),
    );
    await writeFile(path, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    await assert.rejects(
      dir.loadKey(file, scripted(['pw'])),
      (err) => hasCode(err, 'SIGNING_KEY') && /holds a CERTIFICATE, not a private key/.test(err.message),
    );
  });

  it('an unencrypted key file whose name is not its key ID is refused too', async () => {
    const dir = new TrustDirectory(fresh());
    await mkdir(join(dir.path, 'private'), { recursive: true });
    const id = privateKeyIdOf(generateEcdsaKey());
    const other = generateEcdsaKey();
    await writeFile(join(dir.path, 'private', `${id}.key`), other.export({ type: 'pkcs8', format: 'pem' }));
    const file = await dir.findKey(id);
    assert.ok(file);
    await assert.rejects(dir.loadKey(file, scripted([])), (err) => hasCode(err, 'SIGNING_KEY'));
  });
});

describe('listing keys', () => {
  it('lists nothing for a trust directory that does not exist', async () => {
    const dir = new TrustDirectory(fresh());
    assert.deepEqual(await dir.listKeys(), []);
    assert.equal(await dir.findKey('0'.repeat(64)), undefined);
  });

  it('lists .key files holding PEM, sorted by name, with their headers; ignores the rest', async () => {
    const dir = new TrustDirectory(fresh());
    const ids = [
      await dir.saveKey(generateEcdsaKey(), 'root', undefined, scripted(['pw'])),
      await dir.saveKey(generateEcdsaKey(), 'targets', GUN, scripted(['pw'])),
      await dir.saveKey(generateEcdsaKey(), 'targets/releases', 'other.example/x', scripted(['pw'])),
    ];
    const priv = join(dir.path, 'private');
    await writeFile(
      join(priv, 'notes.txt'),
      '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
    );
    await copyFile(join(priv, `${ids[0]}.key`), join(priv, `${ids[0]}.key.bak`));
    await writeFile(join(priv, `${'f'.repeat(64)}.key`), 'not PEM at all');
    await mkdir(join(priv, 'root_keys'));
    const keys = await dir.listKeys();
    assert.deepEqual(
      keys.map((k) => k.id),
      [...ids].sort(),
    );
    const byId = new Map(keys.map((k) => [k.id, k]));
    assert.deepEqual(byId.get(ids[0] as string), {
      id: ids[0],
      role: 'root',
      gun: undefined,
      path: join(priv, `${ids[0]}.key`),
    });
    assert.equal(byId.get(ids[1] as string)?.gun, GUN);
    assert.equal(byId.get(ids[2] as string)?.role, 'targets/releases');
    assert.equal(byId.get(ids[2] as string)?.gun, 'other.example/x');
  });

  it('finds keys only by their exact lower-case hex ID', async () => {
    const dir = new TrustDirectory(fresh());
    const id = await dir.saveKey(generateEcdsaKey(), 'targets', GUN, scripted(['pw']));
    assert.equal((await dir.findKey(id))?.id, id);
    assert.equal(await dir.findKey(id.toUpperCase()), undefined);
    assert.equal(await dir.findKey(id.slice(0, 63)), undefined);
    assert.equal(await dir.findKey(`../${id}`), undefined);
    assert.equal(await dir.findKey('0'.repeat(64)), undefined);
  });
});

describe('encrypted PKCS#8', () => {
  const key = generateEcdsaKey();

  it('is PBES2 with PBKDF2 (HMAC-SHA1 by default), AES-256-CBC, an 8-byte salt and a 16-byte IV', () => {
    const der = encryptPkcs8(key, 'pw');
    const outer = readTlv(der);
    assert.equal(outer.tag, 0x30);
    assert.equal(outer.end, der.length);
    const algorithm = readTlv(outer.content);
    const encrypted = readTlv(outer.content, algorithm.end);
    assert.equal(encrypted.tag, 0x04);
    assert.equal(encrypted.content.length % 16, 0);
    const pbes2 = readTlv(algorithm.content);
    assert.equal(pbes2.content.toString('hex'), '2a864886f70d01050d');
    const params = readTlv(algorithm.content, pbes2.end);
    const kdf = readTlv(params.content);
    const cipher = readTlv(params.content, kdf.end);
    const kdfOid = readTlv(kdf.content);
    assert.equal(kdfOid.content.toString('hex'), '2a864886f70d01050c');
    const kdfParams = readTlv(kdf.content, kdfOid.end);
    const salt = readTlv(kdfParams.content);
    const rounds = readTlv(kdfParams.content, salt.end);
    assert.equal(salt.content.length, 8);
    assert.equal(rounds.content.toString('hex'), '0186a0');
    assert.equal(rounds.end, kdfParams.content.length, 'no PRF given: HMAC-SHA1');
    const cipherOid = readTlv(cipher.content);
    assert.equal(cipherOid.content.toString('hex'), '60864801650304012a');
    const iv = readTlv(cipher.content, cipherOid.end);
    assert.equal(iv.content.length, 16);
    assert.equal(pbkdf2Rounds(der), 100_000);
  });

  it('decrypts with node:crypto with the passphrase, and only with it', () => {
    const der = encryptPkcs8(key, 'pässwörd');
    samePrivateKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8', passphrase: 'pässwörd' }), key);
    assert.throws(() => createPrivateKey({ key: der, format: 'der', type: 'pkcs8', passphrase: 'password' }));
  });

  it('uses a fresh salt and IV each time', () => {
    assert.notDeepEqual(encryptPkcs8(key, 'pw'), encryptPkcs8(key, 'pw'));
  });

  it('encrypts Ed25519 and RSA keys too', () => {
    for (const other of [
      generateKeyPairSync('ed25519').privateKey,
      generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey,
    ]) {
      const der = encryptPkcs8(other, 'pw');
      samePrivateKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8', passphrase: 'pw' }), other);
    }
  });
});

describe('interoperability with openssl', { skip: !hasOpenssl && 'no openssl' }, () => {
  it('openssl pkcs8 decrypts a saved key file (headers stripped) with its passphrase', async () => {
    const dir = new TrustDirectory(fresh());
    const key = generateEcdsaKey();
    const id = await dir.saveKey(key, 'targets', GUN, scripted(['openssl reads this']));
    const text = await readFile(join(dir.path, 'private', `${id}.key`), 'utf8');
    const bare = join(work, `bare${n++}.pem`);
    await writeFile(bare, withoutHeaders(text));
    const plain = execFileSync(OPENSSL, [
      'pkcs8',
      '-in',
      bare,
      '-passin',
      'pass:openssl reads this',
    ]).toString();
    assert.match(plain, /^-----BEGIN PRIVATE KEY-----\n/);
    samePrivateKey(createPrivateKey(plain), key);
    assert.throws(() =>
      execFileSync(OPENSSL, ['pkcs8', '-in', bare, '-passin', 'pass:not it'], { stdio: 'pipe' }),
    );
    const parsed = execFileSync(OPENSSL, ['asn1parse', '-in', bare]).toString();
    assert.match(parsed, /PBES2/);
    assert.match(parsed, /PBKDF2/);
    assert.match(parsed, /aes-256-cbc/);
    assert.doesNotMatch(parsed, /hmacWithSHA256/);
  });

  it('loads a key openssl encrypted as Notary does (PBKDF2-SHA1, 2048 rounds)', async () => {
    const dir = new TrustDirectory(fresh());
    const key = generateEcdsaKey();
    const id = privateKeyIdOf(key);
    const plain = join(work, `plain${n++}.pem`);
    await writeFile(plain, key.export({ type: 'pkcs8', format: 'pem' }));
    const encrypted = execFileSync(OPENSSL, [
      'pkcs8',
      '-topk8',
      '-in',
      plain,
      '-v2',
      'aes-256-cbc',
      '-v2prf',
      'hmacWithSHA1',
      '-iter',
      '2048',
      '-passout',
      'pass:from openssl',
    ]).toString();
    await mkdir(join(dir.path, 'private'), { recursive: true });
    await writeFile(
      join(dir.path, 'private', `${id}.key`),
      encrypted.replace('-----\n', `-----\ngun: ${GUN}\nrole: snapshot\n\n`),
    );
    const file = await dir.findKey(id);
    assert.deepEqual([file?.role, file?.gun], ['snapshot', GUN]);
    assert.ok(file);
    const block = parsePem(await readFile(file.path, 'utf8'));
    assert.ok(block);
    assert.equal(pbkdf2Rounds(block.der), 2048);
    samePrivateKey(await dir.loadKey(file, scripted(['from openssl'])), key);
  });
});

describe('parsePem', () => {
  it('reads the type, the headers before the body, and the body', () => {
    const der = Buffer.from('hello DER bytes');
    const block = parsePem(
      `junk before\n-----BEGIN TEST BLOCK-----\ngun: a/b:c\nrole: targets\n\n${der.toString('base64')}\n-----END TEST BLOCK-----\ntrailer`,
    );
    assert.ok(block);
    assert.equal(block.type, 'TEST BLOCK');
    assert.deepEqual(block.headers, { gun: 'a/b:c', role: 'targets' });
    assert.ok(block.der.equals(der));
  });

  it('reads CRLF line ends and bodies over several lines', () => {
    const der = Buffer.alloc(100, 0xab);
    const b64 = der.toString('base64');
    const block = parsePem(
      `-----BEGIN PRIVATE KEY-----\r\nrole: root\r\n\r\n${b64.slice(0, 64)}\r\n${b64.slice(64)}\r\n-----END PRIVATE KEY-----\r\n`,
    );
    assert.deepEqual(block?.headers, { role: 'root' });
    assert.ok(block?.der.equals(der));
  });

  it('finds nothing without matching BEGIN and END lines', () => {
    assert.equal(parsePem(''), undefined);
    assert.equal(parsePem('-----BEGIN PRIVATE KEY-----\nAAAA\n'), undefined);
    assert.equal(parsePem('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END CERTIFICATE-----\n'), undefined);
  });
});

describe('cached metadata', () => {
  it('is undefined before it is written, then reads back byte for byte', async () => {
    const dir = new TrustDirectory(fresh());
    assert.equal(await dir.readMetadata(GUN, 'root'), undefined);
    const bytes = Buffer.from('{"signed":{"version":1},"signatures":[]}');
    await dir.writeMetadata(GUN, 'root', bytes);
    assert.deepEqual(await dir.readMetadata(GUN, 'root'), bytes);
    const newer = Buffer.from('{"signed":{"version":2},"signatures":[]}');
    await dir.writeMetadata(GUN, 'root', newer);
    assert.deepEqual(await dir.readMetadata(GUN, 'root'), newer);
  });

  it('files a delegation of a GUN with a port in Notary layout, 0600 in 0700 directories', async () => {
    const root = fresh();
    const dir = new TrustDirectory(root);
    const gun = '127.0.0.1:5000/a/b';
    await dir.writeMetadata(gun, 'targets', Buffer.from('targets'));
    await dir.writeMetadata(gun, 'targets/releases', Buffer.from('releases'));
    assert.equal((await dir.readMetadata(gun, 'targets'))?.toString(), 'targets');
    assert.equal((await dir.readMetadata(gun, 'targets/releases'))?.toString(), 'releases');
    const metadata = join(root, 'tuf', '127.0.0.1:5000', 'a', 'b', 'metadata');
    assert.equal(await readFile(join(metadata, 'targets.json'), 'utf8'), 'targets');
    assert.equal(await readFile(join(metadata, 'targets', 'releases.json'), 'utf8'), 'releases');
    assert.equal(await mode(join(metadata, 'targets', 'releases.json')), 0o600);
    assert.equal(await mode(join(metadata, 'targets.json')), 0o600);
    for (const d of [
      'tuf',
      'tuf/127.0.0.1:5000',
      'tuf/127.0.0.1:5000/a/b',
      'tuf/127.0.0.1:5000/a/b/metadata/targets',
    ]) {
      assert.equal(await mode(join(root, d)), 0o700, d);
    }
    assert.deepEqual((await readdir(metadata)).sort(), ['targets', 'targets.json']);
  });

  it('keeps collections apart', async () => {
    const dir = new TrustDirectory(fresh());
    await dir.writeMetadata('127.0.0.1:5000/a/b', 'root', Buffer.from('ab'));
    await dir.writeMetadata('127.0.0.1:5000/a', 'root', Buffer.from('a'));
    assert.equal((await dir.readMetadata('127.0.0.1:5000/a/b', 'root'))?.toString(), 'ab');
    assert.equal((await dir.readMetadata('127.0.0.1:5000/a', 'root'))?.toString(), 'a');
    assert.equal(await dir.readMetadata('127.0.0.1:5001/a', 'root'), undefined);
  });

  it('a cache entry that cannot be read is a FILE error', async () => {
    const dir = new TrustDirectory(fresh());
    await mkdir(join(dir.path, 'tuf', 'x', 'metadata', 'root.json'), { recursive: true });
    await assert.rejects(dir.readMetadata('x', 'root'), (err) => hasCode(err, 'FILE'));
  });

  it('a trust directory that cannot be created is a FILE error', async () => {
    const blocker = join(work, `blocker${n++}`);
    await writeFile(blocker, 'a file where the trust directory should be');
    const dir = new TrustDirectory(join(blocker, 'trust'));
    await assert.rejects(dir.writeMetadata(GUN, 'root', Buffer.from('x')), (err) => hasCode(err, 'FILE'));
  });
});
