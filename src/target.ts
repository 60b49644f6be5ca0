import type { CredentialSource } from './auth/authorizer.js';
import type { HttpEngine } from './http.js';
import type { Reference } from './reference.js';
import { RegistryClient } from './registry/client.js';
import { RemoteRepository } from './registry/repository.js';

/** How to reach a registry: shared by every command that talks to one. */
export interface ConnectOptions {
  /** Use plain HTTP (loopback registries use it without asking). */
  plainHttp?: boolean | undefined;
  /** Skip TLS certificate verification. */
  insecure?: boolean | undefined;
  /** Where credentials come from; anonymous (and anonymous bearer tokens) when absent. */
  credentials?: CredentialSource | undefined;
  /** A custom HTTP engine (tests, proxies). */
  engine?: HttpEngine | undefined;
  /** Debug log sink; never receives secrets. */
  log?: ((line: string) => void) | undefined;
  userAgent?: string | undefined;
}

/** Opens the repository a reference names, for reading or for pushing. The caller closes its client. */
export function openRepository(
  ref: Reference,
  access: 'pull' | 'push',
  options: ConnectOptions = {},
): RemoteRepository {
  const client = new RegistryClient(ref.registry, options);
  return new RemoteRepository(client, ref.repository, { access });
}
