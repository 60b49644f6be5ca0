/**
 * wasm-to-oci: store WebAssembly modules and components in OCI registries and get them back.
 *
 * The package root holds the operations, their option and result types and the error type. Building
 * blocks have their own entry points: `wasm-to-oci/content` (targets, stores, copy, descriptors),
 * `wasm-to-oci/registry` (the registry client and repository, the HTTP engine) and `wasm-to-oci/wasm`
 * (the wasm parser, detection, packing). api/wasm-to-oci.api.md lists every exported name.
 */
export type { Credential, CredentialSource } from './auth/authorizer.js';
export {
  BlobCache,
  type CacheEntry,
  DEFAULT_CACHE_BYTES,
  openCache,
  type PruneResult,
} from './cache/cache.js';
export { type DigestCache, FileDigestCache } from './cache/digest-cache.js';
export type { ProgressEvent } from './copy.js';
export type { ConfigLocation } from './credentials/config.js';
export type { HelperResult, HelperRunner, HelperRunOptions } from './credentials/helper.js';
export {
  type DockerCredentialOptions,
  dockerCredentials,
  type ExplicitCredential,
} from './credentials/source.js';
export { type ErrorCode, hasCode, WasmOciError, type WasmOciErrorOptions } from './errors.js';
export { type Annotations, type Descriptor, EMPTY_DESCRIPTOR, type Platform } from './oci/descriptor.js';
export {
  type AttachFile,
  type AttachOptions,
  type AttachResult,
  attach,
  type DetachOptions,
  type DetachResult,
  detach,
  parseAttachFile,
} from './ops/attach.js';
export {
  type CopiedTag,
  type CopyAllTagsOptions,
  type CopyAllTagsResult,
  type CopyArtifactOptions,
  type CopyArtifactResult,
  copyAllTags,
  copyArtifact,
  type FailedTag,
  splitTags,
  type TagOutcome,
} from './ops/copy.js';
export {
  type CosignSignOptions,
  type CosignSignResult,
  type CosignVerifyOptions,
  type CosignVerifyResult,
  cosignSign,
  cosignVerify,
  type GenerateKeyPairOptions,
  type GenerateKeyPairResult,
  generateCosignKeyPair,
  type PasswordSource,
  type SignatureFound,
  type SignatureWritten,
  type Signer,
  type SignOptions,
  type VerificationMaterial,
  type Verifier,
} from './ops/cosign.js';
export { type DiscoverOptions, type DiscoverResult, discover, type ReferrerNode } from './ops/discover.js';
export {
  type ArtifactFormat,
  type ArtifactReport,
  type FileReport,
  type InspectOptions,
  inspectArtifact,
  inspectFile,
  type WasmReport,
} from './ops/inspect.js';
export { type LoginOptions, type LoginResult, type LogoutOptions, login, logout } from './ops/login.js';
export { type PullOptions, type PullResult, pull } from './ops/pull.js';
export { type PackFormat, type PushOptions, type PushResult, push } from './ops/push.js';
export {
  deleteManifest,
  getBlob,
  getManifest,
  listTags,
  resolveReference,
  type TagListBounds,
  type TargetOptions,
  tagPages,
  tagReference,
} from './ops/repository.js';
export { type RunOptions, runWasm } from './ops/run.js';
export type { TagSelection } from './ops/tag-glob.js';
export {
  type ConnectOptions,
  formatTarget,
  LAYOUT_PREFIX,
  type OpenTarget,
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
export type { RegistryMemory } from './registry/client.js';
export {
  DEFAULT_TRUST_SERVER,
  defaultTrustDir,
  type PassphraseRequest,
  type PassphraseSource,
  type PullVerifier,
  type PushSigner,
  type SignResult,
  type TrustedTarget,
  type TrustOptions,
  trustCollection,
} from './sign/index.js';
export type { FileMeta } from './sign/notary/metadata.js';
export type { RetryClock, RetryPolicy } from './transport/retry.js';
export type { Timeouts } from './transport/types.js';
export { VERSION } from './version.js';
export type { WasmKind } from './wasm/detect.js';
export type { WasmExport, WasmImport, WasmInfo } from './wasm/inspect.js';
