/**
 * `wasm-to-oci/registry`: a registry as a target. `RemoteRepository` (manifests, blobs, uploads,
 * mounts, tags), the `RegistryClient` under it (auth, redirects, retries, what is learnt about a
 * registry), and the HTTP engine it talks through (`NodeHttpEngine`, or any `HttpEngine`).
 */

export { NodeHttpEngine, type NodeHttpOptions } from '../transport/engine.js';
export { DEFAULT_RETRY, RetryBudget, type RetryClock, type RetryPolicy } from '../transport/retry.js';
export {
  type BodySink,
  DEFAULT_TIMEOUTS,
  type HttpBody,
  type HttpEngine,
  type HttpRequest,
  type HttpResponse,
  type Timeouts,
} from '../transport/types.js';
export {
  RegistryClient,
  type RegistryMemory,
  type RegistryOptions,
  registryMemory,
  type SendRequest,
  type UploadScheme,
} from './client.js';
export { RemoteRepository, type RepositoryOptions } from './repository.js';
