import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { secretbox } from '@noble/ciphers/salsa.js';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { WasmOciError } from '../../errors.js';
import { type GoJson, goStruct } from '../../oci/gojson.js';
import { parsePem, pem } from '../pem.js';
import { isRecord, jsonObject } from './json.js';

/**
 * cosign's key files. The private key is PKCS #8 DER sealed with NaCl secretbox (XSalsa20-Poly1305)
 * under a key derived by scrypt from the password, in go-securesystemslib's `encrypted` JSON:
 * `{"kdf":{"name":"scrypt","params":{"N":…,"r":8,"p":1},"salt":"<b64>"},"cipher":{"name":
 * "nacl/secretbox","nonce":"<b64>"},"ciphertext":"<b64>"}` (Go's field order; byte slices as padded
 * base64; the ciphertext is the 16-byte Poly1305 tag, then the encrypted bytes). That JSON is the body
 * of a PEM block `ENCRYPTED SIGSTORE PRIVATE KEY` (what cosign writes today) or `ENCRYPTED COSIGN
 * PRIVATE KEY` (older cosign). The public key is a `PUBLIC KEY` PEM block (SPKI DER).
 */

export const SIGSTORE_KEY_PEM = 'ENCRYPTED SIGSTORE PRIVATE KEY';
export const COSIGN_KEY_PEM = 'ENCRYPTED COSIGN PRIVATE KEY';
export const PUBLIC_KEY_PEM = 'PUBLIC KEY';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/**
 * The scrypt parameters go-securesystemslib accepts (legacy 2^15, standard 2^16, OWASP 2^17, r 8, p 1);
 * any other set is refused before deriving, so a tampered file cannot make us spend unbounded memory.
 */
export const SCRYPT_PARAMS: readonly ScryptParams[] = [
  { N: 32768, r: 8, p: 1 },
  { N: 65536, r: 8, p: 1 },
  { N: 131072, r: 8, p: 1 },
];

/** What we write: the legacy set, which every cosign release reads (1.x accepted only it). */
export const DEFAULT_SCRYPT: ScryptParams = { N: 32768, r: 8, p: 1 };

const SALT_BYTES = 32;
const NONCE_BYTES = 24;
const BOX_KEY_BYTES = 32;
const TAG_BYTES = 16;

/** The parsed JSON of an encrypted key (validated, not decrypted). */
export interface EncryptedKey {
  params: ScryptParams;
  salt: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function keyError(message: string, hint?: string): WasmOciError {
  return new WasmOciError('SIGNING_KEY', message, hint ? { hint } : {});
}

function bytesField(value: unknown, what: string): Uint8Array {
  if (typeof value !== 'string' || !BASE64.test(value))
    throw keyError(`the encrypted key's ${what} is not base64`);
  return Buffer.from(value, 'base64');
}

/** Parses (and checks) the JSON of an encrypted key: the KDF and cipher names, parameters and sizes. */
export function parseEncryptedKey(json: Uint8Array): EncryptedKey {
  const value = jsonObject(json, 'SIGNING_KEY', 'the encrypted key');
  if (!isRecord(value.kdf) || !isRecord(value.cipher)) {
    throw keyError('the encrypted key has no kdf and cipher');
  }
  const { kdf, cipher } = value;
  if (kdf.name !== 'scrypt') throw keyError('the encrypted key uses an unknown key derivation (not scrypt)');
  if (cipher.name !== 'nacl/secretbox')
    throw keyError('the encrypted key uses an unknown cipher (not nacl/secretbox)');
  const params = isRecord(kdf.params) ? kdf.params : {};
  const known = SCRYPT_PARAMS.find((s) => s.N === params.N && s.r === params.r && s.p === params.p);
  if (!known) throw keyError('the encrypted key has unsupported scrypt parameters');
  const salt = bytesField(kdf.salt, 'salt');
  const nonce = bytesField(cipher.nonce, 'nonce');
  const ciphertext = bytesField(value.ciphertext, 'ciphertext');
  if (nonce.length !== NONCE_BYTES) throw keyError(`the encrypted key's nonce is not ${NONCE_BYTES} bytes`);
  if (ciphertext.length < TAG_BYTES) throw keyError("the encrypted key's ciphertext is too short");
  return { params: known, salt, nonce, ciphertext };
}

async function boxKey(password: string, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  return scryptAsync(Buffer.from(password, 'utf8'), salt, { ...params, dkLen: BOX_KEY_BYTES });
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

/** The encrypted-key JSON of `plaintext` (Go's bytes: fields in struct order, compact). */
export async function encryptKey(
  plaintext: Uint8Array,
  password: string,
  params: ScryptParams = DEFAULT_SCRYPT,
): Promise<Uint8Array> {
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const key = await boxKey(password, salt, params);
  const sealed = secretbox(key, nonce).seal(plaintext);
  const json: GoJson = goStruct([
    [
      'kdf',
      goStruct([
        ['name', 'scrypt'],
        [
          'params',
          goStruct([
            ['N', params.N],
            ['r', params.r],
            ['p', params.p],
          ]),
        ],
        ['salt', b64(salt)],
      ]),
    ],
    [
      'cipher',
      goStruct([
        ['name', 'nacl/secretbox'],
        ['nonce', b64(nonce)],
      ]),
    ],
    ['ciphertext', b64(sealed)],
  ]);
  return Buffer.from(json.json, 'utf8');
}

/** Opens an encrypted key; a wrong password (or a tampered file) fails with PASSPHRASE. */
export async function decryptKey(encrypted: EncryptedKey, password: string): Promise<Uint8Array> {
  const key = await boxKey(password, encrypted.salt, encrypted.params);
  try {
    return secretbox(key, encrypted.nonce).open(encrypted.ciphertext);
  } catch (cause) {
    throw new WasmOciError(
      'PASSPHRASE',
      'wrong password for the cosign private key (or a corrupt key file)',
      {
        cause,
        hint: 'check COSIGN_PASSWORD, or type the password the key was generated with',
      },
    );
  }
}

/** The PEM block of a private key file, checked to be one of cosign's two encrypted types. */
export function parsePrivateKeyFile(text: string): EncryptedKey {
  const block = parsePem(text);
  if (!block) throw keyError('not a PEM key file', 'give the cosign.key file that generate-key-pair wrote');
  if (block.type !== SIGSTORE_KEY_PEM && block.type !== COSIGN_KEY_PEM) {
    throw keyError(
      `the key file holds a ${block.type.slice(0, 60)}, not an encrypted cosign private key`,
      block.type === PUBLIC_KEY_PEM
        ? 'that is the public key: sign with the private key (cosign.key)'
        : undefined,
    );
  }
  return parseEncryptedKey(block.der);
}

/** Decrypts a cosign private key file and checks it holds an ECDSA key. */
export async function readPrivateKey(text: string, password: string): Promise<KeyObject> {
  const der = await decryptKey(parsePrivateKeyFile(text), password);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
  } catch (cause) {
    throw new WasmOciError('SIGNING_KEY', 'the decrypted cosign key is not a PKCS #8 private key', { cause });
  }
  checkEcdsa(key, 'private');
  return key;
}

/** Reads a `PUBLIC KEY` PEM file (SPKI) holding an ECDSA key. */
export function readPublicKey(text: string): KeyObject {
  const block = parsePem(text);
  if (!block)
    throw keyError('not a PEM public key file', 'give the cosign.pub file that generate-key-pair wrote');
  if (block.type !== PUBLIC_KEY_PEM) {
    throw keyError(
      `the key file holds a ${block.type.slice(0, 60)}, not a PUBLIC KEY`,
      block.type === SIGSTORE_KEY_PEM || block.type === COSIGN_KEY_PEM
        ? 'that is the private key: verify with the public key (cosign.pub)'
        : undefined,
    );
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: block.der, format: 'der', type: 'spki' });
  } catch (cause) {
    throw new WasmOciError('SIGNING_KEY', 'the PUBLIC KEY block is not a valid SPKI public key', { cause });
  }
  checkEcdsa(key, 'public');
  return key;
}

/** The hash cosign pairs with each ECDSA curve. */
const CURVE_HASH: Record<string, string> = { prime256v1: 'sha256', secp384r1: 'sha384', secp521r1: 'sha512' };

function checkEcdsa(key: KeyObject, what: string): void {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve === undefined || !(curve in CURVE_HASH)) {
    throw new WasmOciError(
      'UNSUPPORTED',
      `the ${what} key is ${key.asymmetricKeyType ?? 'unknown'}${curve ? ` (${curve})` : ''}: only ECDSA P-256, P-384 and P-521 keys are supported`,
    );
  }
}

/** The hash an ECDSA key signs with (SHA-256 for P-256). */
export function keyHash(key: KeyObject): string {
  return CURVE_HASH[key.asymmetricKeyDetails?.namedCurve ?? ''] ?? 'sha256';
}

/** The SPKI DER of a public key. */
export function spki(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' });
}

/** cosign's key hint: base64 of the SHA-256 of the public key's SPKI DER. */
export function keyHint(publicKey: KeyObject): string {
  return createHash('sha256').update(spki(publicKey)).digest('base64');
}

export interface GeneratedKeyPair {
  /** The `ENCRYPTED SIGSTORE PRIVATE KEY` PEM text (cosign.key). */
  privateKey: string;
  /** The `PUBLIC KEY` PEM text (cosign.pub). */
  publicKey: string;
}

/** A new ECDSA P-256 key pair, the private key encrypted with `password` as cosign does. */
export async function generateKeyPair(
  password: string,
  params: ScryptParams = DEFAULT_SCRYPT,
): Promise<GeneratedKeyPair> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  const sealed = await encryptKey(der, password, params);
  return {
    privateKey: pem(SIGSTORE_KEY_PEM, {}, Buffer.from(sealed)),
    publicKey: pem(PUBLIC_KEY_PEM, {}, spki(publicKey)),
  };
}
