import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeAtomicSync } from '../content/atomic.js';
import { WasmOciError } from '../errors.js';
import type { RegistryMemory } from '../ops/target.js';
import type { Context } from './common.js';
import { lineSafe } from './output.js';

/**
 * Which loopback registries speak TLS and how registries take uploads, kept between runs in the cache directory so a run does not
 * probe again (a stale answer is corrected by the registry client on the first request). Loaded by the
 * command table for every network command: it imports nothing heavy.
 */

/** The cache directory, as cache-dir.ts finds it (that module loads the blob cache: not here). */
function cacheRoot(env: NodeJS.ProcessEnv): string | undefined {
  const root = env.XDG_CACHE_HOME || (env.HOME ? join(env.HOME, '.cache') : '');
  return root ? join(root, 'wasm-to-oci') : undefined;
}

function memoryFile(env: NodeJS.ProcessEnv): string | undefined {
  const root = cacheRoot(env);
  return root ? join(root, 'registries.json') : undefined;
}

const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a part of the path is not a directory',
  EEXIST: 'a file is in the way',
};

/**
 * The one warning of a run whose cache directory cannot be written (the digest cache, the blob cache,
 * registries.json): the command goes on, but what the cache saves is lost, so the user is told once.
 */
export function cacheWarning(ctx: Context): (err: unknown) => void {
  return (err) => {
    const warned = ctx.warned;
    if (warned?.has('cache')) return;
    warned?.add('cache');
    const code = (err as NodeJS.ErrnoException)?.code;
    const cause = err instanceof WasmOciError ? (err.cause as NodeJS.ErrnoException | undefined) : undefined;
    const why = REASONS[code ?? cause?.code ?? ''] ?? code ?? (err as Error)?.message ?? String(err);
    ctx.io.stderr.write(
      `Warning: cannot write the cache in ${lineSafe(cacheRoot(ctx.env) ?? '?')} (${lineSafe(why)}): ` +
        'nothing is cached this time, so large modules are uploaded again on every push; ' +
        'point XDG_CACHE_HOME at a writable directory, or pass --no-cache\n',
    );
  };
}

type Saved = { schemes?: unknown; uploads?: unknown; noSinglePost?: unknown };

const UPLOAD_SCHEMES: ReadonlySet<unknown> = new Set(['stream', 'chunked', 'monolithic']);

function entries(value: unknown): Array<[string, unknown]> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.entries(value) : [];
}

function snapshot(memory: RegistryMemory): string {
  return JSON.stringify({
    schemes: Object.fromEntries(memory.schemes),
    uploads: Object.fromEntries(memory.uploads),
    noSinglePost: [...memory.noSinglePost].sort(),
  });
}

/** The registry memory of this run, with what earlier runs learnt (a missing or corrupt file: none). */
export function loadRegistryMemory(
  env: NodeJS.ProcessEnv,
  onError?: (err: unknown) => void,
): { memory: RegistryMemory; save(): void } {
  const memory: RegistryMemory = {
    schemes: new Map(),
    uploads: new Map(),
    noSinglePost: new Set(),
    warned: new Set(),
  };
  const file = memoryFile(env);
  try {
    if (file) {
      const json = JSON.parse(readFileSync(file, 'utf8')) as Saved;
      for (const [host, scheme] of entries(json?.schemes)) {
        if (scheme === 'http' || scheme === 'https') memory.schemes.set(host, scheme);
      }
      for (const [host, scheme] of entries(json?.uploads)) {
        if (UPLOAD_SCHEMES.has(scheme)) memory.uploads.set(host, scheme as 'stream');
      }
      if (Array.isArray(json?.noSinglePost)) {
        for (const host of json.noSinglePost) if (typeof host === 'string') memory.noSinglePost.add(host);
      }
    }
  } catch {
    // Nothing remembered yet.
  }
  const before = snapshot(memory);
  return {
    memory,
    save() {
      const now = snapshot(memory);
      if (!file || now === before) return;
      try {
        mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
        writeAtomicSync(file, now, { mode: 0o600 });
      } catch (err) {
        // Only speed is lost.
        onError?.(err);
      }
    },
  };
}
