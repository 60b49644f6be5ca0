/** wasm-to-oci: store WebAssembly modules and components in OCI registries and get them back. */
export type { Credential, CredentialSource } from './auth/authorizer.js';
export {
  BlobCache,
  type CacheEntry,
  DEFAULT_CACHE_BYTES,
  openCache,
  type PruneResult,
} from './cache/cache.js';
export { type DigestCache, FileDigestCache } from './cache/digest-cache.js';
export { FileBackedStore, FileOutputStore } from './content/file.js';
export { OciLayoutStore } from './content/layout.js';
export { MemoryStore } from './content/memory.js';
export type {
  Content,
  Fetcher,
  Ingester,
  OperationOptions,
  Pusher,
  ReadOnlyTarget,
  Resolver,
  Storage,
  Tagger,
  Target,
} from './content/types.js';
export { readVerified, verified, verifyBytes } from './content/verify.js';
export { type CopyGraphOptions, type CopyOptions, copy, copyGraph, type ProgressEvent } from './copy.js';
export { type ConfigLocation, type DockerConfig } from './credentials/config.js';
export { type HelperRunner, runHelper } from './credentials/helper.js';
export { type DockerCredentialOptions, dockerCredentials } from './credentials/source.js';
export { type ErrorCode, hasCode, WasmOciError } from './errors.js';
export type { Annotations, Descriptor, Platform } from './oci/descriptor.js';
export { digestOf } from './oci/digest.js';
export { type ImageIndex, type ImageManifest, parseManifest, serializeManifest } from './oci/manifest.js';
export { MediaType } from './oci/mediatypes.js';
export { type CopyArtifactOptions, type CopyArtifactResult, copyArtifact, splitTags } from './ops/copy.js';
export {
  type ArtifactFormat,
  type ArtifactReport,
  detectFormat,
  type FileReport,
  type InspectOptions,
  inspectArtifact,
  inspectFile,
} from './ops/inspect.js';
export { type LoginOptions, type LoginResult, type LogoutOptions, login, logout } from './ops/login.js';
export { type PullOptions, type PullResult, pull } from './ops/pull.js';
export { type PackFormat, type PushOptions, type PushResult, push, type SignResult } from './ops/push.js';
export {
  deleteManifest,
  getBlob,
  getManifest,
  listTags,
  resolveReference,
  tagReference,
} from './ops/repository.js';
export { type RunOptions, runWasm } from './ops/run.js';
export {
  type ConnectOptions,
  formatTarget,
  openRepository,
  openTarget,
  parseTarget,
  type TargetSpec,
} from './ops/target.js';
export {
  formatReference,
  type ParsedReference,
  parseReference,
  type Reference,
} from './reference.js';
export { RegistryClient, type RegistryOptions } from './registry/client.js';
export { RemoteRepository } from './registry/repository.js';
export {
  DEFAULT_TRUST_SERVER,
  defaultTrustDir,
  type PassphraseRequest,
  type PassphraseSource,
  type TrustedTarget,
  type TrustOptions,
  trustCollection,
} from './sign/index.js';
export { NodeHttpEngine } from './transport/engine.js';
export type { RetryPolicy } from './transport/retry.js';
export type { HttpEngine, HttpRequest, HttpResponse, Timeouts } from './transport/types.js';
export { VERSION } from './version.js';
export { packClassic } from './wasm/classic.js';
export { type CncfConfig, type CncfOptions, cncfConfig, creationTime, packCncf } from './wasm/cncf.js';
export { detectWasm, type WasmKind } from './wasm/detect.js';
export {
  importsByModule,
  inspectWasm,
  type WasmExport,
  type WasmImport,
  type WasmInfo,
} from './wasm/inspect.js';
export { WasmMediaType } from './wasm/mediatypes.js';
export { selectIndexEntry, selectWasmLayer } from './wasm/select.js';
