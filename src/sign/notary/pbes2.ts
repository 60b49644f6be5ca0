import { createCipheriv, type KeyObject, pbkdf2Sync, randomBytes } from 'node:crypto';
import { integer, objectIdentifier, octetString, readTlv, sequence } from './der.js';

/** PBES2 (RFC 8018) as Notary's key files use it: writing encrypted PKCS#8, reading its parameters. */

const PBES2 = '1.2.840.113549.1.5.13';
const PBKDF2 = '1.2.840.113549.1.5.12';
const AES256_CBC = '2.16.840.1.101.3.4.1.42';
/**
 * PBKDF2 rounds for new key files. Notary writes 2048 and reads whatever the file says; 100 000 costs
 * about 36 ms per key here and makes guessing a passphrase from a stolen file that much slower.
 */
const PBKDF2_ROUNDS = 100_000;

/**
 * Encrypted PKCS#8 as Notary reads it: PBES2 with PBKDF2 (HMAC-SHA1, the only PRF Notary knows) and
 * AES-256-CBC. Node writes PBKDF2 with HMAC-SHA256, which Notary would decrypt to garbage.
 */
export function encryptPkcs8(key: KeyObject, passphrase: string): Buffer {
  const plain = key.export({ type: 'pkcs8', format: 'der' });
  const salt = randomBytes(8);
  const iv = randomBytes(16);
  const derived = pbkdf2Sync(Buffer.from(passphrase, 'utf8'), salt, PBKDF2_ROUNDS, 32, 'sha1');
  const cipher = createCipheriv('aes-256-cbc', derived, iv);
  const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
  derived.fill(0);
  return sequence(
    sequence(
      objectIdentifier(PBES2),
      sequence(
        sequence(objectIdentifier(PBKDF2), sequence(octetString(salt), integer(PBKDF2_ROUNDS))),
        sequence(objectIdentifier(AES256_CBC), octetString(iv)),
      ),
    ),
    octetString(encrypted),
  );
}

/** True when a key failed to decrypt the way a wrong passphrase makes it fail. */
export function isWrongPassphrase(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    /BAD_DECRYPT|bad decrypt|WRONG_FINAL_BLOCK|ASN1|DECODER|unsupported/i.test(`${e.code} ${e.message}`) ||
    e.code === 'ERR_MISSING_PASSPHRASE'
  );
}

/** For tests and tools: the PBKDF2 rounds of an encrypted key file's DER. */
export function pbkdf2Rounds(der: Buffer): number {
  const outer = readTlv(der);
  const algorithm = readTlv(outer.content);
  const params = readTlv(algorithm.content, readTlv(algorithm.content).end);
  const kdf = readTlv(params.content);
  const kdfParams = readTlv(kdf.content, readTlv(kdf.content).end);
  const salt = readTlv(kdfParams.content);
  const rounds = readTlv(kdfParams.content, salt.end);
  return rounds.content.reduce((n, b) => n * 256 + b, 0);
}
