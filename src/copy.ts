import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { DEFAULT_CONCURRENCY } from './content/defaults.js';
import { isFileRange } from './content/range.js';
import type {
  ChunkFetcher,
  ChunkPusher,
  ChunkSink,
  Content,
  Fetcher,
  Ingester,
  IngestSource,
  ReadOnlyTarget,
  Storage,
  Target,
} from './content/types.js';
import {
  canFetchInto,
  canForget,
  canMount,
  canOpenWriter,
  canPushReference,
  holdsBytes,
  isLocated,
  STREAM_CHUNK,
} from './content/types.js';
import { isVerifiedFor, readVerified, VERIFIED, Verifier, verified, verifyBytes } from './content/verify.js';
import { throwIfAborted, WasmOciError } from './errors.js';
import type { Descriptor } from './oci/descriptor.js';
import { MAX_MANIFEST_BYTES, type ParsedManifest, parseManifest, successors } from './oci/manifest.js';
import { isManifestMediaType } from './oci/mediatypes.js';

/**
 * The only code that moves bytes between targets. An artifact is a graph of descriptors (index ->
 * manifests -> config and layers); copying it means copying every node the destination lacks, children
 * before parents, so a registry never sees a manifest whose blobs are missing and a tag only moves once
 * everything it points at is in place.
 */

export type ProgressEvent =
  /** A transfer of `desc` begins. */
  | { type: 'start'; desc: Descriptor }
  /** `bytes` of `desc` have gone through so far. */
  | { type: 'progress'; desc: Descriptor; bytes: number }
  /** The destination already had `desc`: nothing was sent. */
  | { type: 'skip'; desc: Descriptor }
  /** `desc` was mounted from the source repository of the same registry: nothing was sent. */
  | { type: 'mount'; desc: Descriptor }
  /** `desc` is stored at the destination. */
  | { type: 'done'; desc: Descriptor }
  /** `desc` comes from the local blob cache, not the registry (a pull; its `done` follows). */
  | { type: 'cached'; desc: Descriptor };

export interface CopyGraphOptions {
  /**
   * Requests running at once against either target (default `DEFAULT_CONCURRENCY`): checks, fetches,
   * mounts, transfers.
   */
  concurrency?: number;
  signal?: AbortSignal | undefined;
  onProgress?: ((event: ProgressEvent) => void) | undefined;
  /**
   * Which children of a manifest to copy (default: all of them). Pull uses it to fetch only the wasm
   * layer of a manifest.
   */
  findSuccessors?: (desc: Descriptor, parsed: ParsedManifest) => Descriptor[];
  /**
   * Shared with other copies into the same destination: each node is copied once across all of them
   * and all their requests share the session's limit (its `concurrency` wins over this one's).
   */
  session?: CopySession | undefined;
}

export interface CopyOptions extends CopyGraphOptions {
  /** Extra tags to point at the root after the first one. */
  tags?: readonly string[];
}

/** Limits how many async jobs run at once. */
class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await job();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/**
 * What several copies into one destination share (`copyAllTags` copies each tag with one): the nodes
 * copied or being copied, by digest, so a blob two tags share is sent once, and one limit on the
 * requests of them all. A node whose copy failed is forgotten, so another copy tries it again.
 */
export class CopySession {
  constructor(concurrency: number = DEFAULT_CONCURRENCY) {
    sessionState.set(this, { nodes: new Map(), requests: new Semaphore(Math.max(1, concurrency)) });
  }

  /** Runs one request of the caller's own (a check, a listing) within the session's limit. */
  run<T>(job: () => Promise<T>): Promise<T> {
    return stateOf(this).requests.run(job);
  }
}

interface SessionState {
  nodes: Map<string, Promise<void>>;
  requests: Semaphore;
}

/** Kept beside the class, so the public type shows none of it. */
const sessionState = new WeakMap<CopySession, SessionState>();

function stateOf(session: CopySession): SessionState {
  return sessionState.get(session) as SessionState;
}

/** Counts bytes flowing through and reports them. */
class ProgressStream extends Transform {
  private bytes = 0;
  constructor(
    private readonly desc: Descriptor,
    private readonly report: (event: ProgressEvent) => void,
  ) {
    super({ highWaterMark: STREAM_CHUNK });
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.report({ type: 'progress', desc: this.desc, bytes: this.bytes });
    callback(null, chunk);
  }
}

function withProgress(stream: Readable, desc: Descriptor, report?: (event: ProgressEvent) => void): Readable {
  if (!report) return stream;
  const counter = new ProgressStream(desc, report);
  // A verified source stays verified through the counter.
  const mark = (stream as Readable & { [VERIFIED]?: string })[VERIFIED];
  if (mark !== undefined) Object.assign(counter, { [VERIFIED]: mark });
  stream.on('error', (err) => counter.destroy(err));
  return stream.pipe(counter);
}

/** Fetches a manifest's bytes, verified against its descriptor and capped. */
export async function fetchManifest(src: Fetcher, desc: Descriptor, signal?: AbortSignal): Promise<Buffer> {
  // Bytes the source already holds (a manifest it resolved): checked again here, hashing a few hundred
  // bytes, instead of being streamed through a verifier.
  const held = holdsBytes(src) ? src.bytesOf(desc) : undefined;
  if (held !== undefined && held.byteLength <= MAX_MANIFEST_BYTES) {
    verifyBytes(held, desc);
    return Buffer.from(held.buffer, held.byteOffset, held.byteLength);
  }
  return readVerified(await src.fetch(desc, { signal }), desc, MAX_MANIFEST_BYTES);
}

/** A manifest the destination refused because it misses content it just confirmed having. */
function missingContent(err: unknown): boolean {
  return err instanceof WasmOciError && err.details?.missingContent === true;
}

/** How often a manifest refused for missing content is retried after its children are checked again. */
const MISSING_CONTENT_RETRIES = 3;

class GraphCopier {
  private readonly done: Map<string, Promise<void>>;
  /** Every request to either target runs inside this limit: checks, fetches, mounts and transfers. */
  private readonly requests: Semaphore;

  constructor(
    private readonly src: Fetcher,
    private readonly dst: Storage,
    private readonly options: CopyGraphOptions,
  ) {
    const state = stateOf(options.session ?? new CopySession(options.concurrency));
    this.done = state.nodes;
    this.requests = state.requests;
  }

  /** Runs one request within the concurrency limit (a slot is never held while children are copied). */
  limit<T>(job: () => Promise<T>): Promise<T> {
    return this.requests.run(async () => {
      throwIfAborted(this.options.signal);
      return job();
    });
  }

  /** Copies a node once, however many parents share it. */
  copyNode(desc: Descriptor): Promise<void> {
    let pending = this.done.get(desc.digest);
    if (!pending) {
      const started = this.copyNodeOnce(desc);
      this.done.set(desc.digest, started);
      // A failure is not remembered: a later copy sharing the session tries the node again.
      started.catch(() => {
        if (this.done.get(desc.digest) === started) this.done.delete(desc.digest);
      });
      pending = started;
    }
    return pending;
  }

  private children(desc: Descriptor, bytes: Uint8Array): Descriptor[] {
    const parsed = parseManifest(bytes, desc.mediaType);
    return this.options.findSuccessors?.(desc, parsed) ?? successors(parsed);
  }

  /**
   * Copies the children of a manifest whose bytes are already in hand, the largest first: it takes the
   * longest, so it goes first to the registry and first through the concurrency limit (a push's module
   * starts its requests before the 2-byte config's; measured with bench/phases.mjs). When one fails,
   * the others are let finish or fail before the first failure is thrown, so that none is still
   * writing (a temporary file in a layout, say) when the caller cleans up or the process exits.
   */
  async copyChildren(desc: Descriptor, bytes: Uint8Array): Promise<void> {
    const children = [...this.children(desc, bytes)].sort((a, b) => b.size - a.size);
    const results = await Promise.allSettled(children.map((child) => this.copyNode(child)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * Stores a manifest once its children are in place. A registry that refuses it for a blob it just
   * confirmed (Distribution races on a blob that concurrent pushes share) gets its children checked
   * again, what is missing sent again, and the manifest once more (bounded).
   */
  async pushManifest(desc: Descriptor, bytes: Uint8Array, push: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.limit(push);
        return;
      } catch (err) {
        if (attempt > MISSING_CONTENT_RETRIES || !missingContent(err)) throw err;
        for (const child of this.children(desc, bytes)) {
          this.done.delete(child.digest);
          if (canForget(this.dst)) this.dst.forget(child.digest);
        }
        await this.copyChildren(desc, bytes);
      }
    }
  }

  /**
   * The allocation-free path: the source hands each chunk to the destination's writer while it is
   * hashed, in one synchronous step per chunk; the writer commits only after the digest matched.
   */
  private async copyChunks(desc: Descriptor, src: ChunkFetcher, dst: ChunkPusher): Promise<void> {
    const { signal, onProgress } = this.options;
    const writer = await dst.openWriter(desc, { signal });
    const verifier = new Verifier(desc);
    let bytes = 0;
    const sink: ChunkSink = (chunk) => {
      verifier.update(chunk);
      const full = writer.write(chunk);
      bytes += chunk.length;
      onProgress?.({ type: 'progress', desc, bytes });
      return full;
    };
    // The source may read straight into the writer's memory.
    sink.region = writer.write.region;
    try {
      await src.fetchInto(desc, sink, { signal });
      verifier.finish();
      await writer.commit();
    } catch (err) {
      await writer.abort();
      throw err;
    }
  }

  /** A verified stream of a blob from the source (verified once: by the source when it checks its reads). */
  private async sourceStream(desc: Descriptor): Promise<Readable> {
    const { signal, onProgress } = this.options;
    const counted = withProgress(await this.src.fetch(desc, { signal }), desc, onProgress);
    return isVerifiedFor(counted, desc) ? counted : verified(counted, desc);
  }

  private async copyNodeOnce(desc: Descriptor): Promise<void> {
    const { signal, onProgress } = this.options;
    throwIfAborted(signal);
    if (await this.limit(() => this.dst.exists(desc, { signal }))) {
      onProgress?.({ type: 'skip', desc });
      return;
    }
    if (isManifestMediaType(desc.mediaType)) {
      const bytes = await this.limit(() => fetchManifest(this.src, desc, signal));
      await this.copyChildren(desc, bytes);
      await this.pushManifest(desc, bytes, () => this.dst.push(desc, bytes, { signal }));
      onProgress?.({ type: 'done', desc });
      return;
    }
    await this.limit(async () => {
      const { dst, src } = this;
      if (
        canMount(dst) &&
        isLocated(src) &&
        src.location.registry === dst.location.registry &&
        (await dst.mount(desc, src.location.repository, { signal }))
      ) {
        onProgress?.({ type: 'mount', desc });
        return;
      }
      onProgress?.({ type: 'start', desc });
      if (canFetchInto(src) && canOpenWriter(dst)) {
        await this.copyChunks(desc, src, dst);
        onProgress?.({ type: 'done', desc });
        return;
      }
      const bytes = holdsBytes(this.src) ? this.src.bytesOf(desc) : undefined;
      if (bytes) {
        await this.dst.push(desc, bytes, { signal });
        onProgress?.({ type: 'progress', desc, bytes: bytes.byteLength });
        onProgress?.({ type: 'done', desc });
        return;
      }
      await this.dst.push(desc, await this.sourceStream(desc), {
        signal,
        // An upload that must start over reads the source again.
        reopen: () => this.sourceStream(desc),
      });
      onProgress?.({ type: 'done', desc });
    });
  }
}

/** Copies everything reachable from `root` that `dst` does not have yet. */
export async function copyGraph(
  src: Fetcher,
  dst: Storage,
  root: Descriptor,
  options: CopyGraphOptions = {},
): Promise<void> {
  await new GraphCopier(src, dst, options).copyNode(root);
}

/**
 * Copies the artifact `srcRef` names (a reference, or the descriptor it resolved to) from `src` to
 * `dst`, then points `dstRef` (and `options.tags`) at it (no tag at all when `dstRef` is undefined: a
 * copy by digest). The root manifest is written last, under its tag in one request where the
 * destination can, so a failed copy never moves a tag. Returns the root descriptor.
 */
export async function copy(
  src: ReadOnlyTarget,
  srcRef: string | Descriptor,
  dst: Target,
  dstRef: string | undefined,
  options: CopyOptions = {},
): Promise<Descriptor> {
  const { signal } = options;
  const copier = new GraphCopier(src, dst, options);
  // A descriptor is the root resolved already (by the caller's own check): no request to resolve it again.
  const root =
    typeof srcRef === 'string' ? await copier.limit(() => src.resolve(srcRef, { signal })) : srcRef;
  if (!isManifestMediaType(root.mediaType)) {
    await copier.copyNode(root);
    if (dstRef !== undefined) await dst.tag(root, dstRef, { signal });
  } else {
    const bytes = await copier.limit(() => fetchManifest(src, root, signal));
    await copier.copyChildren(root, bytes);
    await copier.pushManifest(root, bytes, async () => {
      if (dstRef !== undefined && canPushReference(dst))
        await dst.pushReference(root, bytes, dstRef, { signal });
      else {
        await dst.push(root, bytes, { signal });
        if (dstRef !== undefined) await dst.tag(root, dstRef, { signal });
      }
    });
    options.onProgress?.({ type: 'done', desc: root });
  }
  for (const tag of options.tags ?? []) await dst.tag(root, tag, { signal });
  return root;
}

/**
 * Stores content whose digest is not known yet, hashing it as it is sent (single pass over a large
 * file), with progress. `size` is the expected length when known.
 */
export async function ingest(
  dst: Ingester,
  mediaType: string,
  content: IngestSource,
  options: {
    size?: number | undefined;
    signal?: AbortSignal | undefined;
    onProgress?: CopyGraphOptions['onProgress'];
  },
): Promise<Descriptor> {
  const { onProgress } = options;
  const placeholder: Descriptor = { mediaType, digest: '', size: options.size ?? 0 };
  onProgress?.({ type: 'start', desc: placeholder });
  let source = content;
  if (onProgress) {
    if (isFileRange(content)) {
      let bytes = 0;
      const { observe } = content;
      source = {
        ...content,
        observe: (chunk) => {
          observe?.(chunk);
          bytes += chunk.length;
          onProgress({ type: 'progress', desc: placeholder, bytes });
        },
      };
    } else source = withProgress(content, placeholder, onProgress);
  }
  const desc = await dst.ingest(mediaType, source, { size: options.size, signal: options.signal });
  onProgress?.({ type: 'done', desc });
  return desc;
}

export type { Content };
