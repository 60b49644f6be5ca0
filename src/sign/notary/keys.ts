import {
  createHash,
  createPublicKey,
  constants as cryptoConstants,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  verify,
  X509Certificate,
} from 'node:crypto';
import { WasmOciError } from '../../errors.js';
import { canonicalJson } from './canonical.js';
import {
  bitString,
  boolean,
  explicit,
  integer,
  objectIdentifier,
  octetString,
  printableString,
  readTlv,
  sequence,
  set,
  time,
  utf8String,
} from './der.js';

/**
 * TUF keys as Notary writes them: `{"keytype": ..., "keyval": {"private": null, "public": <base64>}}`
 * where the public part is a PKIX (SPKI) DER key for `ecdsa` and `rsa`, the 32 raw bytes for `ed25519`,
 * and a PEM certificate for `ecdsa-x509` / `rsa-x509` (root keys). A key's ID is the SHA-256 of its
 * canonical JSON.
 */
export interface TufKey {
  keytype: string;
  keyval: { private?: string | null; public: string };
}

export type SignatureMethod = 'ecdsa' | 'eddsa' | 'rsapss' | 'rsapkcs1v15';

export interface Signature {
  keyid: string;
  method: string;
  sig: string;
}

/** The key ID: hex SHA-256 of the canonical public key. */
export function keyId(key: TufKey): string {
  const pub = { keytype: key.keytype, keyval: { private: null, public: key.keyval.public } };
  return createHash('sha256').update(canonicalJson(pub)).digest('hex');
}

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** The TUF form of a bare public key (`ecdsa`, `rsa` or `ed25519`). */
export function tufPublicKey(key: KeyObject): TufKey {
  const type = key.asymmetricKeyType;
  const spki = key.export({ type: 'spki', format: 'der' });
  if (type === 'ec') return { keytype: 'ecdsa', keyval: { private: null, public: spki.toString('base64') } };
  if (type === 'rsa') return { keytype: 'rsa', keyval: { private: null, public: spki.toString('base64') } };
  if (type === 'ed25519') {
    return { keytype: 'ed25519', keyval: { private: null, public: spki.subarray(12).toString('base64') } };
  }
  throw new WasmOciError('UNSUPPORTED', `keys of type ${type} are not supported`);
}

const PEM_BEGIN = '-----BEGIN CERTIFICATE-----';
const PEM_END = '-----END CERTIFICATE-----';

/** The certificate of an `*-x509` key (its public part is a base64 PEM, possibly with intermediates). */
export function keyCertificate(key: TufKey): X509Certificate | undefined {
  if (!key.keytype.endsWith('-x509')) return undefined;
  const pem = Buffer.from(key.keyval.public, 'base64').toString('utf8');
  // Found with indexOf: a lazy regex rescanned the rest from every BEGIN line (a key of repeated BEGIN
  // lines in a root file took minutes).
  const begin = pem.indexOf(PEM_BEGIN);
  const end = begin === -1 ? -1 : pem.indexOf(PEM_END, begin + PEM_BEGIN.length + 1);
  if (end === -1) throw new Error('no certificate in an x509 key');
  return new X509Certificate(pem.slice(begin, end + PEM_END.length));
}

/** The Node key of a TUF public key; throws on malformed keys. */
export function publicKeyObject(key: TufKey): KeyObject {
  const raw = Buffer.from(key.keyval.public, 'base64');
  switch (key.keytype) {
    case 'ecdsa':
    case 'rsa':
      return createPublicKey({ key: raw, format: 'der', type: 'spki' });
    case 'ed25519':
      if (raw.length !== 32) throw new Error('an ed25519 key has 32 bytes');
      return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    case 'ecdsa-x509':
    case 'rsa-x509':
      return (keyCertificate(key) as X509Certificate).publicKey;
    default:
      throw new Error(`unknown key type ${key.keytype}`);
  }
}

/** The ID of a key's bare public key (a private key's public half): what Notary names key files by. */
export function bareKeyId(key: KeyObject): string {
  return keyId(tufPublicKey(key.type === 'private' ? createPublicKey(key) : key));
}

/** The ID Notary files the private half under: the ID of the bare public key (for a cert, its key). */
export function privateKeyId(key: TufKey): string {
  return bareKeyId(publicKeyObject(key));
}

/**
 * Checks one signature over `message`; false for a bad signature or a method that does not fit the
 * key, as Notary's verifiers do (ECDSA signatures are raw r||s, RSA keys need 2048 bits).
 */
export function verifySignature(
  method: string,
  signature: string,
  message: Uint8Array,
  key: TufKey,
): boolean {
  let pub: KeyObject;
  try {
    pub = publicKeyObject(key);
  } catch {
    return false;
  }
  const sig = Buffer.from(signature, 'base64');
  const type = pub.asymmetricKeyType;
  try {
    // Notary lower-cases the method when it reads a signature.
    const lower = method.toLowerCase();
    switch (lower) {
      case 'ecdsa': {
        if (type !== 'ec') return false;
        const curve = pub.asymmetricKeyDetails?.namedCurve;
        const size =
          curve === 'prime256v1' ? 32 : curve === 'secp384r1' ? 48 : curve === 'secp521r1' ? 66 : 0;
        if (size === 0 || sig.length !== 2 * size) return false;
        return verify('sha256', message, { key: pub, dsaEncoding: 'ieee-p1363' }, sig);
      }
      case 'eddsa':
        return type === 'ed25519' && sig.length === 64 && verify(null, message, pub, sig);
      case 'rsapss':
      case 'rsapkcs1v15': {
        if (type !== 'rsa' || (pub.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) return false;
        const padding =
          lower === 'rsapss' ? cryptoConstants.RSA_PKCS1_PSS_PADDING : cryptoConstants.RSA_PKCS1_PADDING;
        return verify('sha256', message, { key: pub, padding, saltLength: 32 }, sig);
      }
      default:
        return false;
    }
  } catch {
    return false;
  }
}

/** An ECDSA P-256 signature in Notary's form (raw r||s, base64). */
export function signEcdsa(message: Uint8Array, key: KeyObject): string {
  return sign('sha256', message, { key, dsaEncoding: 'ieee-p1363' }).toString('base64');
}

export function generateEcdsaKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  basicConstraints: '2.5.29.19',
  codeSigning: '1.3.6.1.5.5.7.3.3',
};

function name(commonName: string): Buffer {
  const printable = /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(commonName);
  const value = printable ? printableString(commonName) : utf8String(commonName);
  return sequence(set(sequence(objectIdentifier(OID.commonName), value)));
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return sequence(objectIdentifier(oid), ...(critical ? [boolean(true)] : []), octetString(value));
}

/**
 * The self-signed certificate Notary puts in `root.json` for a root key: CN = the GUN, valid for
 * `years` from now, digital signature and key encipherment, code signing, not a CA.
 */
export function rootCertificate(
  gun: string,
  key: KeyObject,
  options: { years?: number; now?: Date } = {},
): string {
  const notBefore = options.now ?? new Date();
  const notAfter = new Date(notBefore);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + (options.years ?? 10));
  const algorithm = sequence(objectIdentifier(OID.ecdsaWithSha256));
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f;
  const tbs = sequence(
    explicit(0, integer(2)),
    integer(serial),
    algorithm,
    name(gun),
    sequence(time(notBefore), time(notAfter)),
    name(gun),
    createPublicKey(key).export({ type: 'spki', format: 'der' }),
    explicit(
      3,
      sequence(
        // digitalSignature (bit 0) and keyEncipherment (bit 2): 1010 0000, 5 unused bits.
        extension(OID.keyUsage, true, bitString(Buffer.from([0xa0]), 5)),
        extension(OID.extKeyUsage, false, sequence(objectIdentifier(OID.codeSigning))),
        extension(OID.basicConstraints, true, sequence()),
      ),
    ),
  );
  const signature = sign('sha256', tbs, key);
  const der = sequence(tbs, algorithm, bitString(signature));
  const body = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${body.replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

/** The `ecdsa-x509` TUF key of a root certificate. */
export function certificateKey(pem: string): TufKey {
  return {
    keytype: 'ecdsa-x509',
    keyval: { private: null, public: Buffer.from(pem, 'utf8').toString('base64') },
  };
}

const SHA1_SIGNATURES = ['1.2.840.113549.1.1.5', '1.2.840.10045.4.1', '1.2.840.10040.4.3'].map((oid) =>
  objectIdentifier(oid),
);

/** True when the certificate's own signature algorithm is SHA-1 based. */
function usesSha1(cert: X509Certificate): boolean {
  try {
    const outer = readTlv(cert.raw);
    const tbs = readTlv(outer.content);
    const algorithm = readTlv(outer.content, tbs.end);
    const oid = readTlv(algorithm.content);
    return SHA1_SIGNATURES.some((s) => s.subarray(2).equals(oid.content));
  } catch {
    return true;
  }
}

/** The common name of a certificate's subject. */
export function commonName(cert: X509Certificate): string | undefined {
  for (const line of cert.subject.split('\n')) if (line.startsWith('CN=')) return line.slice(3);
  return undefined;
}

/**
 * Why a root certificate cannot vouch for `gun`, or undefined when it can: the CN must name the GUN
 * (a trailing `*` matches a prefix), it must not be a CA, not use SHA-1, RSA keys need 2048 bits, and
 * with `checkExpiry` it must be valid now (one day of leeway for a clock behind the signer's).
 */
export function rootCertificateProblem(
  cert: X509Certificate,
  gun: string,
  options: { checkExpiry: boolean; now: Date },
): string | undefined {
  const cn = commonName(cert) ?? '';
  // The trailing stars are counted, not matched: /\*+$/ backtracked quadratically over a CN of stars.
  let stars = cn.length;
  while (stars > 0 && cn[stars - 1] === '*') stars--;
  const matches = stars < cn.length ? gun.startsWith(cn.slice(0, stars)) : cn === gun;
  if (!matches) return `its certificate is for "${cn}", not "${gun}"`;
  if (cert.ca) return 'its certificate is a CA certificate';
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (from > to) return 'its certificate has an empty validity window';
  if (usesSha1(cert)) return 'its certificate is signed with SHA-1';
  const pub = cert.publicKey;
  if (pub.asymmetricKeyType === 'rsa' && (pub.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    return 'its RSA key is shorter than 2048 bits';
  }
  if (options.checkExpiry) {
    const tomorrow = new Date(options.now.getTime() + 86_400_000);
    if (from > tomorrow) return `its certificate is not valid before ${from.toISOString()}`;
    if (options.now > to) return `its certificate expired on ${to.toISOString()}`;
  }
  return undefined;
}
