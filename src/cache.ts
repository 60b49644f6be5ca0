import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { OciLayoutStore } from './content/layout.js';

/**
 * The blob cache: an OCI image layout (blobs only) under `$XDG_CACHE_HOME/wasm-to-oci/oci`. Pulled
 * modules are kept there, re-verified before each use, and pruned least-recently-used first when the
 * cache grows over its size bound (a blob's modification time is its last use).
 */

export const DEFAULT_CACHE_BYTES = 2 * 1024 * 1024 * 1024;

export interface BlobCache {
  store: OciLayoutStore;
  /** Prune down to this many bytes after adding to the cache. */
  maxBytes: number;
  /**
   * Told when the cache cannot be filled (an unwritable directory): the operation goes on without it,
   * and the caller may say so once.
   */
  onError?: ((err: unknown) => void) | undefined;
}

export function openCache(
  dir: string,
  maxBytes = DEFAULT_CACHE_BYTES,
  onError?: (err: unknown) => void,
): BlobCache {
  return { store: new OciLayoutStore(dir, { private: true }), maxBytes, onError };
}

export interface CacheEntry {
  digest: string;
  size: number;
  lastUsed: Date;
}

/** Every cached blob, most recently used first. */
export async function cacheEntries(cache: BlobCache): Promise<CacheEntry[]> {
  const entries: CacheEntry[] = [];
  const blobs = join(cache.store.root, 'blobs');
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
export async function pruneCache(
  cache: BlobCache,
  maxBytes = cache.maxBytes,
): Promise<{ removed: number; freedBytes: number; keptBytes: number }> {
  const entries = await cacheEntries(cache);
  let kept = entries.reduce((sum, e) => sum + e.size, 0);
  let removed = 0;
  let freed = 0;
  for (const entry of [...entries].reverse()) {
    if (kept <= maxBytes) break;
    await unlink(cache.store.blobPath(entry.digest)).catch(() => {});
    kept -= entry.size;
    freed += entry.size;
    removed++;
  }
  return { removed, freedBytes: freed, keptBytes: kept };
}
