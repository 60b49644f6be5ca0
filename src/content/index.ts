/**
 * `wasm-to-oci/content`: what an artifact is made of and where it is kept. Descriptors, manifests and
 * digests (the OCI model), the target interfaces and their optional capabilities with predicates, the
 * stores (memory, file-backed, OCI image layouts, verified output files), verification, and `copy()`,
 * the one mover of bytes between targets.
 */
export {
  type CopyGraphOptions,
  type CopyOptions,
  CopySession,
  copy,
  copyGraph,
  fetchManifest,
  ingest,
  type ProgressEvent,
} from '../copy.js';
export type { Annotations, Descriptor, Platform } from '../oci/descriptor.js';
export {
  type DigestAlgorithm,
  Digester,
  digestOf,
  isDigest,
  type ParsedDigest,
  parseDigest,
  referrersTag,
} from '../oci/digest.js';
export {
  type ImageIndex,
  type ImageManifest,
  MAX_MANIFEST_BYTES,
  type ParsedManifest,
  parseManifest,
  serializeIndex,
  serializeManifest,
  successors,
} from '../oci/manifest.js';
export { isManifestMediaType, MediaType } from '../oci/mediatypes.js';
export { FileBackedStore, FileOutputStore } from './file.js';
export { type LayoutOptions, OciLayoutStore } from './layout.js';
export { MemoryStore } from './memory.js';
export type { OutputPlan } from './output.js';
export { type FileRange, isFileRange } from './range.js';
export {
  addReferrer,
  listReferrers,
  type ReferrersIndexOptions,
  referrerEntry,
  referrerOf,
  referrersFromTagSchema,
  removeReferrer,
} from './referrers.js';
export {
  type BlobPushOptions,
  type BlobStat,
  type BytesHolder,
  type ChunkFetcher,
  type ChunkPusher,
  type ChunkSink,
  type ChunkWriter,
  type Content,
  canDeleteManifest,
  canFetchInto,
  canForget,
  canListReferrers,
  canListTags,
  canLockIndex,
  canMount,
  canOpenWriter,
  canPushReference,
  canStatBlob,
  type Fetcher,
  holdsBytes,
  type IndexLock,
  type Ingester,
  type IngestOptions,
  type IngestSource,
  isLocated,
  type Located,
  type ManifestDeleter,
  type Mounter,
  type OperationOptions,
  type OutputWitness,
  type PresenceMemo,
  type Pusher,
  type ReadOnlyTarget,
  type ReferencePusher,
  type ReferrerLister,
  type ReferrersQuery,
  type RepositoryLocation,
  type Resolver,
  type Storage,
  type Tagger,
  type TagLister,
  type TagListOptions,
  type Target,
} from './types.js';
export { readVerified, Verifier, verified, verifyBytes } from './verify.js';
