import type { Credential } from '../auth/authorizer.js';
import {
  type ConfigLocation,
  credentialKey,
  dockerConfigPath,
  encodeAuth,
  findAuthEntry,
  helperFor,
  readConfig,
  writeConfig,
} from '../credentials/config.js';
import {
  type HelperRunner,
  helperEnvironment,
  helperErase,
  helperStore,
  runHelper,
} from '../credentials/helper.js';
import { hasCode, WasmOciError } from '../errors.js';
import { parseReference } from '../reference.js';
import { RegistryClient } from '../registry/client.js';
import type { ConnectOptions } from './target.js';

export interface LoginOptions extends Omit<ConnectOptions, 'credentials' | 'env'>, ConfigLocation {
  /** `host[:port]` (a scheme or path is tolerated and dropped, as Docker does). */
  registry: string;
  username: string;
  password: string;
  runHelper?: HelperRunner | undefined;
  signal?: AbortSignal | undefined;
}

export interface LoginResult {
  registry: string;
  /** Where the credentials went: `docker-credential-<name>` or the config file's path. */
  storedIn: string;
}

export type LogoutOptions = Pick<LoginOptions, 'registry' | 'runHelper' | 'env' | 'home' | 'configFile'>;

/** Normalises what a user types after `login`: `https://ghcr.io/v2/` -> `ghcr.io`. */
export function registryHost(input: string): string {
  const host = input
    .trim()
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/\/.*$/, '');
  // Reuse the reference grammar's host check.
  parseReference(`${host}/x`);
  return host;
}

/**
 * Checks the credentials against the registry (`GET /v2/`, answering its challenge with them), then
 * stores them where Docker would: the registry's credential helper or `credsStore`, else the config file
 * (mode 0600). Nothing is stored when the registry refuses them.
 */
export async function login(options: LoginOptions): Promise<LoginResult> {
  const registry = registryHost(options.registry);
  if (!options.username) throw new WasmOciError('USAGE', 'login needs a username');
  const credential: Credential = { username: options.username, password: options.password };
  const client = new RegistryClient(registry, { ...options, credentials: async () => credential });
  try {
    await client.ping(options.signal);
  } catch (err) {
    if (hasCode(err, 'UNAUTHORIZED') || hasCode(err, 'DENIED')) {
      throw new WasmOciError(
        'UNAUTHORIZED',
        `login to ${registry} failed: the registry refused the username or password`,
        {
          cause: err,
          hint: 'check the username and password (or token); nothing was stored',
        },
      );
    }
    throw err;
  } finally {
    client.close();
  }

  const path = dockerConfigPath(options);
  const config = (await readConfig(path)) ?? {};
  const key = credentialKey(registry);
  const helper = helperFor(config, registry);
  const auths = { ...(config.auths ?? {}) };
  const existing = findAuthEntry(config, registry);
  if (existing && existing[0] !== key) delete auths[existing[0]];
  let storedIn: string;
  if (helper) {
    await helperStore(options.runHelper ?? runHelper, helper, key, credential, {
      env: helperEnvironment(options.env),
    });
    // Docker keeps an empty marker entry so `docker` lists the registry as logged in.
    auths[key] = {};
    storedIn = `docker-credential-${helper}`;
  } else {
    auths[key] = { auth: encodeAuth(options.username, options.password) };
    storedIn = path;
  }
  await writeConfig(path, { ...config, auths });
  return { registry, storedIn };
}

/** Removes stored credentials for a registry from its helper and from the config file. */
export async function logout(options: LogoutOptions): Promise<LoginResult> {
  const registry = registryHost(options.registry);
  const path = dockerConfigPath(options);
  const config = await readConfig(path);
  const key = credentialKey(registry);
  const helper = helperFor(config, registry);
  let removedFrom: string | undefined;
  if (
    helper &&
    (await helperErase(options.runHelper ?? runHelper, helper, key, { env: helperEnvironment(options.env) }))
  ) {
    removedFrom = `docker-credential-${helper}`;
  }
  const entry = findAuthEntry(config, registry);
  if (config && entry) {
    const auths = { ...(config.auths ?? {}) };
    delete auths[entry[0]];
    await writeConfig(path, { ...config, auths });
    removedFrom ??= path;
  }
  if (!removedFrom) {
    throw new WasmOciError('NOT_FOUND', `not logged in to ${registry}`, {
      hint: `no credentials for ${registry} in ${path}${helper ? ` or docker-credential-${helper}` : ''}`,
    });
  }
  return { registry, storedIn: removedFrom };
}
