import type { Stats } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeAtomic } from '../content/atomic.js';
import { isDigest } from '../oci/digest.js';

/**
 * Remembers the digest of large files by their identity and change stamps (device, inode, size,
 * modification and change times, as git's index does), so re-pushing an unchanged module can ask the
 * registry "do you have it?" before sending a byte, while a first push still reads the file only once.
 */
export interface DigestCache {
  get(stats: Stats): Promise<string | undefined>;
  set(stats: Stats, digest: string): Promise<void>;
  delete(stats: Stats): Promise<void>;
}

interface Entry {
  size: number;
  mtime: string;
  ctime: string;
  digest: string;
  /** Last use, for pruning. */
  used: number;
}

const MAX_ENTRIES = 512;

function key(stats: Stats): string {
  return `${stats.dev}:${stats.ino}`;
}

/** The change stamps of a file (fractional milliseconds keep the file system's sub-ms resolution). */
function stamp(stats: Stats): Pick<Entry, 'size' | 'mtime' | 'ctime'> {
  return { size: stats.size, mtime: String(stats.mtimeMs), ctime: String(stats.ctimeMs) };
}

function matches(entry: Entry, stats: Stats): boolean {
  const now = stamp(stats);
  return entry.size === now.size && entry.mtime === now.mtime && entry.ctime === now.ctime;
}

/** A DigestCache kept in one small JSON file; a corrupt or missing file is an empty cache. */
export class FileDigestCache implements DigestCache {
  private entries: Map<string, Entry> | undefined;

  /** `onError` is told when the file cannot be written (the push goes on; only speed is lost). */
  constructor(
    private readonly path: string,
    private readonly onError?: (err: unknown) => void,
  ) {}

  private async load(): Promise<Map<string, Entry>> {
    if (this.entries) return this.entries;
    this.entries = new Map();
    try {
      const json = JSON.parse(await readFile(this.path, 'utf8')) as Record<string, Entry>;
      for (const [k, v] of Object.entries(json)) {
        if (v && typeof v.digest === 'string' && isDigest(v.digest)) this.entries.set(k, v);
      }
    } catch {
      // No cache yet, or an unreadable one: start empty.
    }
    return this.entries;
  }

  private async save(): Promise<void> {
    const entries = [...(await this.load()).entries()]
      .sort((a, b) => b[1].used - a[1].used)
      .slice(0, MAX_ENTRIES);
    try {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      await writeAtomic(this.path, JSON.stringify(Object.fromEntries(entries)), { mode: 0o600 });
    } catch (err) {
      // A cache that cannot be written only costs speed.
      this.onError?.(err);
    }
  }

  async get(stats: Stats): Promise<string | undefined> {
    const entry = (await this.load()).get(key(stats));
    return entry && matches(entry, stats) ? entry.digest : undefined;
  }

  async set(stats: Stats, digest: string): Promise<void> {
    (await this.load()).set(key(stats), { ...stamp(stats), digest, used: Date.now() });
    await this.save();
  }

  async delete(stats: Stats): Promise<void> {
    if ((await this.load()).delete(key(stats))) await this.save();
  }
}
