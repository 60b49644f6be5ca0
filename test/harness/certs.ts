import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';

/**
 * A throwaway PKI for tests, made with the `openssl` command line tool (OpenSSL 3): a CA, leaf
 * certificates it signs (server or client, with subjectAltNames) and lone self-signed certificates
 * (the token signer's root bundle). Every openssl call gets its own small generated config file, so
 * nothing depends on the system openssl.cnf. All files land in the directory the caller gives.
 */

export const OPENSSL_BIN = process.env.OPENSSL_BIN ?? '/usr/bin/openssl';

export type KeyType = 'ec' | 'rsa';

export interface CertificateFiles {
  certPath: string;
  keyPath: string;
  /** The certificate, PEM. */
  certPem: string;
  /** The private key, PEM (PKCS#8, unencrypted). */
  keyPem: string;
}

export type CertificateAuthority = CertificateFiles;

export interface LeafOptions {
  /**
   * subjectAltName entries: `127.0.0.1` and `::1` become `IP:` entries, anything else a `DNS:` entry;
   * an entry that already has a `IP:`, `DNS:`, `URI:` or `email:` prefix is kept as it is.
   */
  sans: string[];
  /** A client certificate (extendedKeyUsage clientAuth) rather than a server one (serverAuth). */
  client?: boolean;
  keyType?: KeyType;
  /** Validity in days (default 2). */
  days?: number;
}

function openssl(args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      OPENSSL_BIN,
      args,
      { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`openssl ${args.join(' ')} failed: ${err.message}\n${stderr}`));
          return;
        }
        resolve(stdout);
      },
    );
  });
}

/** Safe for file names and for a config-file CN value. */
function slug(name: string): string {
  const s = name.replace(/[^A-Za-z0-9._-]/g, '_');
  if (s === '' || s.startsWith('.')) throw new Error(`unusable certificate name ${JSON.stringify(name)}`);
  return s;
}

function newKeyArgs(keyType: KeyType): string[] {
  return keyType === 'rsa'
    ? ['-newkey', 'rsa:2048']
    : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
}

function sanEntry(san: string): string {
  if (/^(IP|DNS|URI|email):/.test(san)) return san;
  return isIP(san) !== 0 ? `IP:${san}` : `DNS:${san}`;
}

/** A random positive serial number, as openssl's `-set_serial` wants it. */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return `0x${bytes.toString('hex')}`;
}

async function readPair(certPath: string, keyPath: string): Promise<CertificateFiles> {
  const [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
  return { certPath, keyPath, certPem, keyPem };
}

/** Writes an openssl config and makes a self-signed certificate with the extensions in `extension`. */
async function selfSigned(
  dir: string,
  base: string,
  cn: string,
  extension: string[],
  keyType: KeyType,
  days: number,
): Promise<CertificateFiles> {
  const certPath = join(dir, `${base}.crt`);
  const keyPath = join(dir, `${base}.key`);
  const config = join(dir, `${base}.cnf`);
  await writeFile(
    config,
    [
      '[req]',
      'prompt = no',
      'distinguished_name = dn',
      'x509_extensions = ext',
      '[dn]',
      `CN = ${cn}`,
      'O = wasm-to-oci tests',
      '[ext]',
      ...extension,
      '',
    ].join('\n'),
  );
  await openssl(
    [
      'req',
      '-x509',
      '-new',
      ...newKeyArgs(keyType),
      '-nodes',
      '-sha256',
      '-days',
      String(days),
      '-set_serial',
      serial(),
      '-config',
      config,
      '-keyout',
      keyPath,
      '-out',
      certPath,
    ],
    dir,
  );
  return readPair(certPath, keyPath);
}

/** A self-signed certificate authority (EC P-256 by default) named `wasm-to-oci test CA`. */
export function makeCa(
  dir: string,
  options: { keyType?: KeyType; days?: number } = {},
): Promise<CertificateAuthority> {
  return selfSigned(
    dir,
    'ca',
    'wasm-to-oci test CA',
    [
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
    ],
    options.keyType ?? 'ec',
    options.days ?? 2,
  );
}

/** A leaf certificate signed by `ca`, written as `<name>.crt` and `<name>.key` in `dir`. */
export async function makeCert(
  ca: Pick<CertificateFiles, 'certPath' | 'keyPath'>,
  dir: string,
  name: string,
  options: LeafOptions,
): Promise<CertificateFiles> {
  const base = slug(name);
  const certPath = join(dir, `${base}.crt`);
  const keyPath = join(dir, `${base}.key`);
  const csrPath = join(dir, `${base}.csr`);
  const config = join(dir, `${base}.cnf`);
  const keyType = options.keyType ?? 'ec';
  const keyUsage = keyType === 'rsa' ? 'digitalSignature, keyEncipherment' : 'digitalSignature';
  const sans = options.sans.map(sanEntry);
  await writeFile(
    config,
    [
      '[req]',
      'prompt = no',
      'distinguished_name = dn',
      '[dn]',
      `CN = ${base}`,
      'O = wasm-to-oci tests',
      '[leaf_ext]',
      'basicConstraints = critical, CA:FALSE',
      `keyUsage = critical, ${keyUsage}`,
      `extendedKeyUsage = ${options.client ? 'clientAuth' : 'serverAuth'}`,
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid, issuer',
      ...(sans.length > 0 ? [`subjectAltName = ${sans.join(', ')}`] : []),
      '',
    ].join('\n'),
  );
  // 1. a key and a certificate request for it
  await openssl(
    ['req', '-new', ...newKeyArgs(keyType), '-nodes', '-config', config, '-keyout', keyPath, '-out', csrPath],
    dir,
  );
  // 2. the CA signs it, with the extensions spelled out in the config (not copied from the request)
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      csrPath,
      '-CA',
      ca.certPath,
      '-CAkey',
      ca.keyPath,
      '-set_serial',
      serial(),
      '-sha256',
      '-days',
      String(options.days ?? 2),
      '-extfile',
      config,
      '-extensions',
      'leaf_ext',
      '-out',
      certPath,
    ],
    dir,
  );
  return readPair(certPath, keyPath);
}

/**
 * A lone self-signed certificate and its key (RSA 2048 by default), written as `<name>.crt` and
 * `<name>.key` in `dir`: what a token issuer signs with and a registry lists in its rootcertbundle.
 */
export function makeSelfSigned(
  dir: string,
  name: string,
  options: { keyType?: KeyType; days?: number } = {},
): Promise<CertificateFiles> {
  const base = slug(name);
  return selfSigned(
    dir,
    base,
    base,
    [
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, digitalSignature, keyCertSign',
      'subjectKeyIdentifier = hash',
    ],
    options.keyType ?? 'rsa',
    options.days ?? 2,
  );
}

/** A test CA and a certificate for a registry on loopback (127.0.0.1, localhost), signed by it. */
export interface RegistryCertificates {
  /** The CA's certificate file: what a client trusts (SSL_CERT_FILE). */
  caFile: string;
  caPem: string;
  server: CertificateFiles;
  /** `startRegistry({ tls })`. */
  tls: { certificate: string; key: string };
}

export async function registryCertificates(dir: string): Promise<RegistryCertificates> {
  const ca = await makeCa(dir);
  const server = await makeCert(ca, dir, 'registry', { sans: ['127.0.0.1', 'localhost'] });
  const { readFile } = await import('node:fs/promises');
  return {
    caFile: ca.certPath,
    caPem: await readFile(ca.certPath, 'utf8'),
    server,
    tls: { certificate: server.certPath, key: server.keyPath },
  };
}
