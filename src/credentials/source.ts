import type { Credential, CredentialSource } from '../auth/authorizer.js';
import {
  type ConfigLocation,
  credentialKey,
  decodeEntry,
  dockerConfigPath,
  findAuthEntry,
  helperFor,
  podmanAuthPaths,
  readConfig,
} from './config.js';
import { type HelperRunner, helperGet, runHelper } from './helper.js';

export interface DockerCredentialOptions extends ConfigLocation {
  /** Explicit credentials (`-u` with `--password-stdin`/`-p`): used for every registry asked about. */
  username?: string | undefined;
  password?: string | undefined;
  /** Runs credential helpers; the default spawns `docker-credential-<name>`. */
  runHelper?: HelperRunner | undefined;
}

/**
 * Credentials as Docker finds them: explicit flags first; then the registry's `credHelpers` entry or the
 * `credsStore`; then an `auths` entry of Docker's config; then podman's auth file when Docker's config
 * has nothing for the registry. A helper that fails throws (code CREDENTIALS): the authorizer then goes
 * on anonymously and reports the reason only if the registry refuses.
 */
export function dockerCredentials(options: DockerCredentialOptions): CredentialSource {
  const run = options.runHelper ?? runHelper;
  let docker: ReturnType<typeof readConfig> | undefined;
  return async (registry: string): Promise<Credential | undefined> => {
    if (options.username !== undefined || options.password !== undefined) {
      return { username: options.username ?? '', password: options.password ?? '' };
    }
    docker ??= readConfig(dockerConfigPath(options));
    const config = await docker;
    const helper = helperFor(config, registry);
    if (helper) {
      const fromHelper = await helperGet(run, helper, credentialKey(registry));
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
