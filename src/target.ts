import type { CredentialSource } from './auth/authorizer.js';
import type { Reference } from './reference.js';
import { RegistryClient, type RegistryOptions } from './registry/client.js';
import { RemoteRepository } from './registry/repository.js';

/** How to reach a registry: shared by every command that talks to one. */
export interface ConnectOptions extends Omit<RegistryOptions, 'credentials'> {
  /** Where credentials come from; anonymous (and anonymous bearer tokens) when absent. */
  credentials?: CredentialSource | undefined;
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
