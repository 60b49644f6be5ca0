import { lstat, mkdir, readFile, readlink } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import type { Credential } from '../auth/authorizer.js';
import { writeAtomic } from '../content/atomic.js';
import { WasmOciError } from '../errors.js';

/**
 * Docker's config file, read and written exactly as `docker login` leaves it: `auths` entries keyed by
 * registry (with or without scheme; Docker Hub as `https://index.docker.io/v1/`), `credsStore` and
 * `credHelpers`. Podman's auth.json has the same `auths` shape.
 */

export interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
  email?: string;
}

export interface DockerConfig {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [other: string]: unknown;
}

export const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';
const DOCKER_HUB_HOSTS = new Set([
  'docker.io',
  'index.docker.io',
  'registry-1.docker.io',
  'registry.hub.docker.com',
]);

export interface ConfigLocation {
  /** Environment (`DOCKER_CONFIG`, `REGISTRY_AUTH_FILE`, `XDG_RUNTIME_DIR`). */
  env: Readonly<Record<string, string | undefined>>;
  /** The user's home directory. */
  home: string;
  /** An explicit config file (`--registry-config`), which wins over everything. */
  configFile?: string | undefined;
}

/** `--registry-config`, else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(location: ConfigLocation): string {
  if (location.configFile) return location.configFile;
  if (location.env.DOCKER_CONFIG) return join(location.env.DOCKER_CONFIG, 'config.json');
  return join(location.home, '.docker', 'config.json');
}

/** Podman's auth files, in the order podman reads them. */
export function podmanAuthPaths(location: ConfigLocation): string[] {
  const paths: string[] = [];
  if (location.env.REGISTRY_AUTH_FILE) paths.push(location.env.REGISTRY_AUTH_FILE);
  if (location.env.XDG_RUNTIME_DIR) paths.push(join(location.env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  return paths;
}

/** Reads a config file; a missing file is `undefined`, a malformed one an error naming it and the field. */
export async function readConfig(path: string): Promise<DockerConfig | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WasmOciError('FILE', `cannot read ${path}: ${fileReason(err as NodeJS.ErrnoException)}`, {
      cause: err,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new WasmOciError('FILE', `${path} is not a valid Docker config file: it is not JSON`, {
      cause,
      hint: 'fix or remove the file, or point the `configFile` option at another one',
    });
  }
  return checkConfig(json, path);
}

function fileReason(err: NodeJS.ErrnoException): string {
  if (err.code === 'EACCES' || err.code === 'EPERM') return 'permission denied';
  if (err.code === 'EISDIR') return 'it is a directory';
  return (err.message ?? String(err)).split('\n')[0] ?? String(err);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const ENTRY_FIELDS = ['auth', 'username', 'password', 'identitytoken', 'registrytoken', 'email'] as const;

/** Checks the fields we read (other fields are kept as they are, for writing back). */
export function checkConfig(json: unknown, path: string): DockerConfig {
  const bad = (what: string) =>
    new WasmOciError('FILE', `${path} is not a valid Docker config file: ${what}`, {
      hint: 'fix or remove the file, or point the `configFile` option at another one',
    });
  if (!isObject(json)) throw bad('it is not a JSON object');
  const { auths, credsStore, credHelpers } = json;
  if (auths !== undefined && auths !== null) {
    if (!isObject(auths)) throw bad('"auths" is not an object');
    for (const [key, entry] of Object.entries(auths)) {
      if (entry === null) continue;
      if (!isObject(entry))
        throw bad(`the "auths" entry ${JSON.stringify(key.slice(0, 80))} is not an object`);
      for (const field of ENTRY_FIELDS) {
        const value = entry[field];
        if (value !== undefined && value !== null && typeof value !== 'string') {
          throw bad(`"${field}" of the "auths" entry ${JSON.stringify(key.slice(0, 80))} is not a string`);
        }
      }
    }
  }
  if (credsStore !== undefined && credsStore !== null && typeof credsStore !== 'string')
    throw bad('"credsStore" is not a string');
  if (credHelpers !== undefined && credHelpers !== null) {
    if (!isObject(credHelpers) || Object.values(credHelpers).some((v) => typeof v !== 'string'))
      throw bad('"credHelpers" does not map registries to helper names');
  }
  return json as DockerConfig;
}

/**
 * Writes a config file atomically, mode 0600, creating its directory (0700). A symbolic link is
 * written through: the file it leads to is replaced (beside itself), the link stays.
 */
export async function writeConfig(path: string, config: DockerConfig): Promise<void> {
  const target = await linkTarget(path);
  await mkdir(dirname(target), { recursive: true, mode: 0o700 });
  try {
    await writeAtomic(target, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600 });
  } catch (err) {
    throw new WasmOciError('FILE', `cannot write ${path}: ${fileReason(err as NodeJS.ErrnoException)}`, {
      cause: err,
    });
  }
}

/** The file a path finally names, through symbolic links (a dangling link's target included). */
async function linkTarget(path: string): Promise<string> {
  let current = path;
  for (let hops = 0; hops < 40; hops++) {
    const info = await lstat(current).catch(() => undefined);
    if (!info?.isSymbolicLink()) return current;
    const link = await readlink(current);
    current = isAbsolute(link) ? link : join(dirname(current), link);
  }
  throw new WasmOciError('FILE', `${path}: too many symbolic links`);
}

/** The host a config key names: `https://ghcr.io/v2/` -> `ghcr.io`; Docker Hub's aliases -> `docker.io`. */
export function keyHost(key: string): string {
  let host = key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = host.indexOf('/');
  if (slash !== -1) host = host.slice(0, slash);
  host = host.toLowerCase();
  return DOCKER_HUB_HOSTS.has(host) ? 'docker.io' : host;
}

/** The key Docker stores a registry's credentials under. */
export function credentialKey(registry: string): string {
  return keyHost(registry) === 'docker.io' ? DOCKER_HUB_KEY : registry;
}

/** The `auths` entry for a registry, whichever way its key is written. */
export function findAuthEntry(
  config: DockerConfig | undefined,
  registry: string,
): [string, AuthEntry] | undefined {
  const auths = config?.auths;
  if (!auths) return undefined;
  const wanted = keyHost(registry);
  const key = credentialKey(registry);
  const exact = Object.hasOwn(auths, key) ? auths[key] : undefined;
  if (exact) return [key, exact];
  for (const [key, entry] of Object.entries(auths)) {
    if (entry && keyHost(key) === wanted) return [key, entry];
  }
  return undefined;
}

/** The helper configured for a registry: its `credHelpers` entry, else `credsStore`. */
export function helperFor(config: DockerConfig | undefined, registry: string): string | undefined {
  const helpers = config?.credHelpers ?? {};
  const wanted = keyHost(registry);
  for (const [key, helper] of Object.entries(helpers)) if (keyHost(key) === wanted && helper) return helper;
  return config?.credsStore || undefined;
}

/** Decodes an `auths` entry; an entry without secrets (as `docker login` leaves with a store) is none. */
export function decodeEntry(entry: AuthEntry, where: string): Credential | undefined {
  // A registry token is the bearer token itself; Docker prefers it to everything else in the entry.
  if (entry.registrytoken) return { registryToken: entry.registrytoken };
  if (entry.identitytoken) {
    return {
      username: entry.username || decodeAuth(entry.auth, where)?.username,
      identityToken: entry.identitytoken,
    };
  }
  if (entry.auth) return decodeAuth(entry.auth, where);
  // The config check lets `null` through as "not set": only a string is a password.
  if (entry.username && typeof entry.password === 'string')
    return { username: entry.username, password: entry.password };
  return undefined;
}

function decodeAuth(auth: string | undefined, where: string): Credential | undefined {
  if (!auth) return undefined;
  if (!/^[A-Za-z0-9+/=_-]+$/.test(auth.trim())) {
    throw new WasmOciError('CREDENTIALS', `the "auth" entry for ${where} is not base64 of user:password`, {
      hint: 'log in again to rewrite it',
    });
  }
  const text = Buffer.from(auth.trim(), 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) {
    throw new WasmOciError('CREDENTIALS', `the "auth" entry for ${where} is not base64 of user:password`, {
      hint: 'log in again to rewrite it',
    });
  }
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

export function encodeAuth(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`).toString('base64');
}
