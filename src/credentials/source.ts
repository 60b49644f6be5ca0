import type { Credential, CredentialSource } from '../auth/authorizer.js';
import {
  type ConfigLocation,
  credentialKey,
  decodeEntry,
  dockerConfigPath,
  findAuthEntry,
  helperFor,
  keyHost,
  podmanAuthPaths,
  readConfig,
} from './config.js';
import { type HelperRunner, helperEnvironment, helperGet, runHelper } from './helper.js';

/** Credentials given on the command line, for the one registry they were given for. */
export interface ExplicitCredential {
  /** The registry host they belong to (`host[:port]`, as in the reference). */
  registry: string;
  username: string;
  password: string;
}

export interface DockerCredentialOptions extends ConfigLocation {
  /**
   * Explicit credentials (`-u` with `--password-stdin`/`-p`): used for `explicit.registry` only; every
   * other host (a copy's other side, a trust server) gets what the config holds for it.
   */
  explicit?: ExplicitCredential | undefined;
  /** Runs credential helpers; the default spawns `docker-credential-<name>`. */
  runHelper?: HelperRunner | undefined;
  /** How long a credential helper may take (default 60 s). */
  helperTimeoutMs?: number | undefined;
}

/** True when two registry names are the same host (Docker Hub's aliases included). */
export function sameRegistry(a: string, b: string): boolean {
  return keyHost(a) === keyHost(b);
}

/**
 * Credentials as Docker finds them: explicit flags first, for their registry only; then the registry's
 * `credHelpers` entry or the `credsStore`; then an `auths` entry of Docker's config; then podman's auth
 * file when Docker's config has nothing for the registry. A helper that fails throws (code
 * CREDENTIALS): the authorizer then goes on anonymously and reports the reason only if the registry
 * refuses.
 */
export function dockerCredentials(options: DockerCredentialOptions): CredentialSource {
  const run = options.runHelper ?? runHelper;
  const helperOptions = { env: helperEnvironment(options.env), timeoutMs: options.helperTimeoutMs };
  let docker: ReturnType<typeof readConfig> | undefined;
  return async (registry: string): Promise<Credential | undefined> => {
    const { explicit } = options;
    if (explicit && sameRegistry(explicit.registry, registry)) {
      return { username: explicit.username, password: explicit.password };
    }
    docker ??= readConfig(dockerConfigPath(options));
    const config = await docker;
    const helper = helperFor(config, registry);
    if (helper) {
      const fromHelper = await helperGet(run, helper, credentialKey(registry), helperOptions);
      if (fromHelper) return fromHelper;
    }
    const entry = findAuthEntry(config, registry);
    const fromConfig = entry ? decodeEntry(entry[1], entry[0]) : undefined;
    if (fromConfig) return fromConfig;
    if (options.configFile) return undefined;
    for (const path of podmanAuthPaths(options)) {
      const podman = findAuthEntry(await readConfig(path), registry);
      const found = podman ? decodeEntry(podman[1], podman[0]) : undefined;
      if (found) return found;
    }
    return undefined;
  };
}
