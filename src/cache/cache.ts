import { readdir, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { OciLayoutStore } from '../content/layout.js';
import type { ChunkFetcher, Content, Fetcher, OperationOptions } from '../content/types.js';
import type { Descriptor } from '../oci/descriptor.js';

/**
 * The blob cache: an OCI image layout (blobs only) under `$XDG_CACHE_HOME/wasm-to-oci/oci`. Pulled
 * modules are kept there, re-verified on every use (a copy out of it checks each byte), and pruned
 * least-recently-used first when the cache grows over its size bound (a blob's modification time is
 * its last use). Every cache operation is a method here; the layout store underneath stays a plain
 * layout.
 */

export const DEFAULT_CACHE_BYTES = 2 * 1024 * 1024 * 1024;

export interface CacheEntry {
  digest: string;
  size: number;
  lastUsed: Date;
}

export interface PruneResult {
  removed: number;
  freedBytes: number;
  keptBytes: number;
}

export class BlobCache {
  private readonly store: OciLayoutStore;

  /** `root`: the cache's directory (created with private modes on first write). */
  constructor(
    readonly root: string,
    /** Pruned down to this many bytes after each addition. */
    readonly maxBytes = DEFAULT_CACHE_BYTES,
    /**
     * Told when the cache cannot be filled (an unwritable directory): the operation goes on without it,
     * and the caller may say so once.
     */
    readonly onError?: ((err: unknown) => void) | undefined,
  ) {
    this.store = new OciLayoutStore(root, { private: true, indexReferrers: false });
  }

  /** The cached blobs as a source for `copy()`, which verifies what it reads. */
  get source(): Fetcher & ChunkFetcher {
    return this.store;
  }

  /** Whether the blob is cached (a file of the descriptor's size; its bytes are checked on use). */
  has(desc: Descriptor): Promise<boolean> {
    return this.store.exists(desc);
  }

  /** Marks a blob as used now. */
  async used(desc: Descriptor): Promise<void> {
    const now = new Date();
    await utimes(this.store.blobPath(desc.digest), now, now).catch(() => {});
  }

  /** Adds a blob from a file already verified against `desc` (cloned where the file system can). */
  add(desc: Descriptor, path: string): Promise<void> {
    return this.store.importFile(desc, path);
  }

  /** Adds a blob from bytes or a stream, verified on the way in. */
  push(desc: Descriptor, content: Content, options?: OperationOptions): Promise<void> {
    return this.store.push(desc, content, options);
  }

  /** Drops a blob (a corrupt entry, say). */
  async evict(digest: string): Promise<void> {
    await unlink(this.store.blobPath(digest)).catch(() => {});
  }

  /** Where a blob's file is. */
  blobPath(digest: string): string {
    return this.store.blobPath(digest);
  }

  /** Every cached blob, most recently used first. */
  async entries(): Promise<CacheEntry[]> {
    const entries: CacheEntry[] = [];
    const blobs = join(this.root, 'blobs');
    let algorithms: string[];
    try {
      algorithms = await readdir(blobs);
    } catch {
      return [];
    }
    for (const algorithm of algorithms.filter((a) => !a.startsWith('.'))) {
      for (const hex of await readdir(join(blobs, algorithm)).catch(() => [] as string[])) {
        if (hex.startsWith('.')) continue;
        const info = await stat(join(blobs, algorithm, hex)).catch(() => undefined);
        if (info?.isFile())
          entries.push({ digest: `${algorithm}:${hex}`, size: info.size, lastUsed: info.mtime });
      }
    }
    return entries.sort((a, b) => b.lastUsed.getTime() - a.lastUsed.getTime());
  }

  /** Removes least-recently-used blobs until the cache holds at most `maxBytes` (0 empties it). */
  async prune(maxBytes = this.maxBytes): Promise<PruneResult> {
    const entries = await this.entries();
    let kept = entries.reduce((sum, e) => sum + e.size, 0);
    let removed = 0;
    let freed = 0;
    for (const entry of [...entries].reverse()) {
      if (kept <= maxBytes) break;
      await this.evict(entry.digest);
      kept -= entry.size;
      freed += entry.size;
      removed++;
    }
    return { removed, freedBytes: freed, keptBytes: kept };
  }
}

/** Opens the cache in `dir`. */
export function openCache(
  dir: string,
  maxBytes = DEFAULT_CACHE_BYTES,
  onError?: (err: unknown) => void,
): BlobCache {
  return new BlobCache(dir, maxBytes, onError);
}
