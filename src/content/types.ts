import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { hasCode } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { type FileRange, isFileRange } from './range.js';

/**
 * Buffer size for streaming blobs through files and transforms: large enough that a 256 MiB module
 * moves in a few hundred writes instead of thousands (measured in bench/push-pull.mjs).
 */
export const STREAM_CHUNK = 1024 * 1024;

/** Bytes to store: in memory (manifests, configs, small modules) or streamed (large modules). */
export type Content = Uint8Array | Readable;

export interface OperationOptions {
  signal?: AbortSignal | undefined;
}

/** Options of a blob push: how to read the content again when an upload must start over. */
export interface BlobPushOptions extends OperationOptions {
  /** A fresh stream of the same bytes (a stream sent once cannot be sent again otherwise). */
  reopen?: (() => Promise<Readable>) | undefined;
}

/** Reads a blob or manifest by descriptor. The stream is raw: wrap it with `verified()` before trusting it. */
export interface Fetcher {
  fetch(desc: Descriptor, options?: OperationOptions): Promise<Readable>;
}

/** Stores content under a known descriptor; implementations must reject content that does not match it. */
export interface Pusher {
  push(desc: Descriptor, content: Content, options?: BlobPushOptions): Promise<void>;
}

export interface Storage extends Fetcher, Pusher {
  exists(desc: Descriptor, options?: OperationOptions): Promise<boolean>;
}

/** Turns a tag or digest into the descriptor of the manifest it names. */
export interface Resolver {
  resolve(reference: string, options?: OperationOptions): Promise<Descriptor>;
}

/** What `reference` names, or undefined when nothing is tagged or stored so (other failures throw). */
export async function resolveIfPresent(
  target: Resolver,
  reference: string,
  options: OperationOptions = {},
): Promise<Descriptor | undefined> {
  try {
    return await target.resolve(reference, options);
  } catch (err) {
    if (hasCode(err, 'NOT_FOUND')) return undefined;
    throw err;
  }
}

/** Points a tag at a manifest that is already stored. */
export interface Tagger {
  tag(desc: Descriptor, reference: string, options?: OperationOptions): Promise<void>;
}

export interface ReadOnlyTarget extends Fetcher, Resolver {
  exists(desc: Descriptor, options?: OperationOptions): Promise<boolean>;
}

/** A place artifacts live: a registry repository, a memory store, an image-layout directory. */
export interface Target extends Storage, Resolver, Tagger {}

/**
 * Optional capability: store a manifest and point a tag at it in one step (a registry's
 * `PUT /manifests/<tag>`), so a tag moves only when the manifest is accepted.
 */
export interface ReferencePusher {
  pushReference(
    desc: Descriptor,
    content: Uint8Array,
    reference: string,
    options?: OperationOptions,
  ): Promise<void>;
}

/**
 * Optional capability: store content whose digest is not known yet, hashing it while it is sent, so a
 * large file is read once. Returns the descriptor of what was stored.
 */
export interface Ingester {
  ingest(
    mediaType: string,
    content: IngestSource,
    options?: OperationOptions & IngestOptions,
  ): Promise<Descriptor>;
}

/** What ingest reads: a stream, or a range of an open file (sent without fresh buffers, replayable). */
export type IngestSource = Readable | FileRange;

/** A stream over whatever an ingest source is. */
export function ingestStream(content: IngestSource): Readable {
  if (!isFileRange(content)) return content;
  const stream = createReadStream('', {
    fd: content.fd,
    start: content.start,
    end: content.start + content.length - 1,
    autoClose: false,
    highWaterMark: STREAM_CHUNK,
  });
  const observe = content.observe;
  if (observe) stream.on('data', (chunk) => observe(chunk as Buffer));
  return stream;
}

export interface IngestOptions {
  /** The size, when known: lets the transport send a Content-Length and check the count. */
  size?: number | undefined;
}

/**
 * Receives content chunk by chunk and processes each before returning: the chunk's memory is reused
 * for the next one. This is how a blob moves from socket to file without a fresh allocation per read
 * (fresh memory costs about 1.2 ms per MiB in page faults here, more than hashing it). A sink that
 * returns a promise is full: the source sends nothing more until it settles.
 */
export type ChunkSink = ((chunk: Buffer) => void | Promise<void>) & {
  /** Where the next bytes may be read to (see BodySink in transport/types.ts): no copy for them. */
  region?: (() => Buffer) | undefined;
};

/** Optional source capability: deliver a blob's bytes straight into a synchronous sink. */
export interface ChunkFetcher {
  fetchInto(desc: Descriptor, sink: ChunkSink, options?: OperationOptions): Promise<void>;
}

/** Writes one blob chunk by chunk; nothing is visible until `commit`, and `abort` leaves no trace. */
/**
 * Sees every byte written to an output file and may refuse the file (by throwing from `finish`) before
 * it is renamed into place: extra checks beyond the descriptor's digest, such as a signed target's
 * SHA-512.
 */
export interface OutputWitness {
  update(chunk: Uint8Array): void;
  finish(): void;
}

export interface ChunkWriter {
  write: ChunkSink;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** Optional destination capability: accept a blob through a ChunkWriter. */
export interface ChunkPusher {
  openWriter(desc: Descriptor, options?: OperationOptions): Promise<ChunkWriter>;
}

/** A repository of a registry: which registry (its origin's host) and which repository in it. */
export interface RepositoryLocation {
  readonly registry: string;
  readonly repository: string;
}

/** Optional capability: the target is a repository of a registry. */
export interface Located {
  readonly location: RepositoryLocation;
}

/**
 * Optional destination capability: make a blob of another repository of the same registry available
 * here without copying bytes (`from` names that repository, as oras's `Mount` does); false when the
 * registry would not.
 */
export interface Mounter extends Located {
  mount(desc: Descriptor, from: string, options?: OperationOptions): Promise<boolean>;
}

/** Bounds of a tag listing (defaults: 1000 tags a page, at most 10,000 pages and 64 MiB). */
export interface TagListOptions extends OperationOptions {
  /** Tags asked for per page (`?n=` of a registry). */
  pageSize?: number | undefined;
  maxPages?: number | undefined;
  /** At most this many bytes of tag-list bodies in all. */
  maxBytes?: number | undefined;
}

/** Optional capability: list the tags, page by page as they come (a layout's in one page). */
export interface TagLister {
  tagPages(options?: TagListOptions): AsyncIterable<string[]>;
}

/** Optional capability: the descriptor of a stored blob, by digest. */
export interface BlobStat {
  blobDescriptor(digest: string, options?: OperationOptions): Promise<Descriptor>;
}

/** Optional capability: delete a manifest by digest (its tags go with it). */
export interface ManifestDeleter {
  deleteManifest(digest: string, options?: OperationOptions): Promise<void>;
}

/** What a referrers listing asks for. */
export interface ReferrersQuery {
  /** Only referrers of this artifact type. */
  artifactType?: string | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Optional capability: list a subject's referrers through an API of the target's own (a registry's
 * OCI 1.1 referrers API); `undefined` when the target turns out to have none (then the tag schema is
 * read).
 */
export interface ReferrerLister {
  referrers(subject: Descriptor, query?: ReferrersQuery): Promise<Descriptor[] | undefined>;
}

/**
 * Optional capability: run `fn` while no other writer updates the target's index (a layout's lock
 * file), so a read-modify-write of a tag (the referrers index under `<alg>-<hex>`) cannot be raced.
 * Calls nest: `tag()` inside `fn` does not wait for the lock it is already under.
 */
export interface IndexLock {
  lockIndex<T>(fn: () => Promise<T>): Promise<T>;
}

export function canLockIndex(target: object): target is IndexLock {
  return typeof (target as Partial<IndexLock>).lockIndex === 'function';
}

export function canListReferrers(target: object): target is ReferrerLister {
  return typeof (target as Partial<ReferrerLister>).referrers === 'function';
}

export function isLocated(target: object): target is Located {
  const location = (target as Partial<Located>).location;
  return typeof location?.registry === 'string' && typeof location.repository === 'string';
}

export function canListTags(target: object): target is TagLister {
  return typeof (target as Partial<TagLister>).tagPages === 'function';
}

export function canStatBlob(target: object): target is BlobStat {
  return typeof (target as Partial<BlobStat>).blobDescriptor === 'function';
}

export function canDeleteManifest(target: object): target is ManifestDeleter {
  return typeof (target as Partial<ManifestDeleter>).deleteManifest === 'function';
}

/** Optional capability: forget a cached belief that a blob is present (the target said it is not). */
export interface PresenceMemo {
  forget(digest: string): void;
}

/**
 * Optional source capability: the verified bytes of a blob it holds in memory (a packed push's config
 * and small module). A copy sends them as they are: a body of bytes can go again on a kept-alive
 * connection, where a stream of them could not.
 */
export interface BytesHolder {
  bytesOf(desc: Descriptor): Uint8Array | undefined;
}

export function holdsBytes(target: object): target is BytesHolder {
  return typeof (target as Partial<BytesHolder>).bytesOf === 'function';
}

export function canForget(target: object): target is PresenceMemo {
  return typeof (target as Partial<PresenceMemo>).forget === 'function';
}

export function canMount(target: object): target is Mounter {
  return typeof (target as Partial<Mounter>).mount === 'function' && isLocated(target);
}

export function canFetchInto(target: object): target is ChunkFetcher {
  return typeof (target as Partial<ChunkFetcher>).fetchInto === 'function';
}

export function canOpenWriter(target: object): target is ChunkPusher {
  return typeof (target as Partial<ChunkPusher>).openWriter === 'function';
}

export function canPushReference(target: object): target is ReferencePusher {
  return typeof (target as Partial<ReferencePusher>).pushReference === 'function';
}

export type { FileRange };
