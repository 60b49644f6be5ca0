import { createPrivateKey, type KeyObject } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeAtomic } from '../../content/atomic.js';
import { hasCode, WasmOciError } from '../../errors.js';
import { parsePem, pem } from '../pem.js';
import { bareKeyId } from './keys.js';
import { encryptPkcs8, isWrongPassphrase, pbkdf2Rounds } from './pbes2.js';

export { parsePem } from '../pem.js';
export { encryptPkcs8, pbkdf2Rounds } from './pbes2.js';

/**
 * The trust directory, in Notary's layout so that the `notary` CLI and the original wasm-to-oci read
 * it too: private keys in `private/<key ID>.key` (PKCS#8 encrypted with the role's passphrase, PEM
 * with `gun:` and `role:` headers), trusted metadata in `tuf/<GUN>/metadata/<role>.json`. Directories
 * are 0700, files 0600. Key material and passphrases are never logged or put in error messages.
 */

export interface PassphraseRequest {
  /** `root`, `targets`, `snapshot` or a delegation role. */
  role: string;
  /** The collection the key belongs to (root keys belong to none). */
  gun?: string | undefined;
  keyId: string;
  /** True when the passphrase will protect a new key (ask twice, say it is new). */
  create: boolean;
  /** 1 for the first ask; more after a wrong passphrase. */
  attempt: number;
}

/** Gives the passphrase for a key, or undefined to give up (after a wrong one, for instance). */
export type PassphraseSource = (request: PassphraseRequest) => Promise<string | undefined>;

export interface KeyFile {
  id: string;
  role: string;
  gun: string | undefined;
  path: string;
}

const MAX_PASSPHRASE_ATTEMPTS = 3;

/** The ID Notary gives a private key: the ID of its bare public key. */
export const privateKeyIdOf: (key: KeyObject) => string = bareKeyId;

export class TrustDirectory {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  private get privateDir(): string {
    return join(this.path, 'private');
  }

  private async ensureDir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }

  /** Writes a file atomically with mode 0600 (its directory, and the trust dir, 0700). */
  private async writePrivateFile(path: string, data: string | Buffer): Promise<void> {
    try {
      await this.ensureDir(this.path);
      await this.ensureDir(dirname(path));
      await writeAtomic(path, data, { mode: 0o600, exact: true });
    } catch (err) {
      throw new WasmOciError('FILE', `cannot write ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The key files of the trust directory, with the role and GUN their headers name. */
  async listKeys(): Promise<KeyFile[]> {
    let names: string[];
    try {
      names = await readdir(this.privateDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new WasmOciError('FILE', `cannot read ${this.privateDir}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const out: KeyFile[] = [];
    for (const name of names.sort()) {
      if (!name.endsWith('.key')) continue;
      const path = join(this.privateDir, name);
      const block = parsePem(await readFile(path, 'utf8').catch(() => ''));
      if (!block) continue;
      out.push({ id: name.slice(0, -4), role: block.headers.role ?? '', gun: block.headers.gun, path });
    }
    return out;
  }

  /** The key file of `id`, if the trust directory holds it. */
  async findKey(id: string): Promise<KeyFile | undefined> {
    if (!/^[0-9a-f]{64}$/.test(id)) return undefined;
    return (await this.listKeys()).find((k) => k.id === id);
  }

  /**
   * Decrypts a key file, asking `passphrases` for its passphrase (again after a wrong one, up to three
   * times, as long as the source answers).
   */
  async loadKey(file: KeyFile, passphrases: PassphraseSource): Promise<KeyObject> {
    const block = parsePem(await readFile(file.path, 'utf8'));
    if (!block) throw new WasmOciError('SIGNING_KEY', `${file.path} is not a PEM key file`);
    if (block.type === 'PRIVATE KEY') {
      const key = createPrivateKey({ key: block.der, format: 'der', type: 'pkcs8' });
      if (privateKeyIdOf(key) !== file.id) {
        throw new WasmOciError('SIGNING_KEY', `${file.path} does not hold the key its name says`);
      }
      return key;
    }
    if (block.type !== 'ENCRYPTED PRIVATE KEY') {
      throw new WasmOciError('SIGNING_KEY', `${file.path} holds a ${block.type}, not a private key`);
    }
    try {
      pbkdf2Rounds(block.der);
    } catch {
      throw new WasmOciError('SIGNING_KEY', `${file.path} is corrupt: not an encrypted PKCS#8 key`);
    }
    const what = `the ${file.role || 'unknown'} key${file.gun ? ` of ${file.gun}` : ''} (${file.id.slice(0, 7)})`;
    for (let attempt = 1; attempt <= MAX_PASSPHRASE_ATTEMPTS; attempt++) {
      const passphrase = await passphrases({
        role: file.role,
        gun: file.gun,
        keyId: file.id,
        create: false,
        attempt,
      });
      if (passphrase === undefined) break;
      try {
        const key = createPrivateKey({ key: block.der, format: 'der', type: 'pkcs8', passphrase });
        if (privateKeyIdOf(key) !== file.id) {
          throw new WasmOciError('SIGNING_KEY', `${file.path} does not hold the key its name says`);
        }
        return key;
      } catch (err) {
        if (hasCode(err) || !isWrongPassphrase(err)) throw err;
      }
    }
    throw new WasmOciError('PASSPHRASE', `wrong passphrase for ${what}`, {
      hint: `check SIGNY_${passphraseVariable(file.role)}_PASSPHRASE or type the passphrase again`,
    });
  }

  /** Encrypts and saves a new key under its ID, asking for a new passphrase; returns the ID. */
  async saveKey(key: KeyObject, role: string, gun: string | undefined, passphrases: PassphraseSource) {
    const id = privateKeyIdOf(key);
    const passphrase = await passphrases({ role, gun, keyId: id, create: true, attempt: 1 });
    if (!passphrase) {
      throw new WasmOciError('PASSPHRASE', `no passphrase for the new ${role} key`, {
        hint: `set SIGNY_${passphraseVariable(role)}_PASSPHRASE or run on a terminal to be asked`,
      });
    }
    const headers: Record<string, string> = gun ? { gun, role } : { role };
    await this.writePrivateFile(
      join(this.privateDir, `${id}.key`),
      pem('ENCRYPTED PRIVATE KEY', headers, encryptPkcs8(key, passphrase)),
    );
    return id;
  }

  /** Where a role's metadata is cached; names that could leave their place in the tree are refused. */
  private metadataPath(gun: string, role: string): string {
    const segments = [...gun.split('/'), ...role.split('/')];
    if (segments.some((s) => s === '' || s === '.' || s === '..' || s.includes('\\') || s.includes('\0'))) {
      throw new WasmOciError(
        'TRUST',
        `refusing to cache metadata under the name ${JSON.stringify(`${gun}/${role}`)}`,
      );
    }
    return join(this.path, 'tuf', ...gun.split('/'), 'metadata', `${role}.json`);
  }

  /** Trusted metadata cached from an earlier verification, or undefined. */
  async readMetadata(gun: string, role: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.metadataPath(gun, role));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new WasmOciError('FILE', `cannot read trust data: ${(err as Error).message}`, { cause: err });
    }
  }

  async writeMetadata(gun: string, role: string, bytes: Buffer): Promise<void> {
    await this.writePrivateFile(this.metadataPath(gun, role), bytes);
  }
}

/** `targets/releases` -> `DELEGATION`: the environment variable part for a role's passphrase. */
export function passphraseVariable(role: string): string {
  return role === 'root' || role === 'targets' || role === 'snapshot' ? role.toUpperCase() : 'DELEGATION';
}
