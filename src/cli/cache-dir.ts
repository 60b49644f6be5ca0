import { join } from 'node:path';
import { type BlobCache, DEFAULT_CACHE_BYTES, openCache } from '../cache/cache.js';
import { WasmOciError } from '../errors.js';
import type { Context } from './common.js';
import { cacheWarning } from './registry-memory.js';

export { cacheWarning };

/** `$XDG_CACHE_HOME/wasm-to-oci`, else `~/.cache/wasm-to-oci`. */
export function cacheDir(env: NodeJS.ProcessEnv): string | undefined {
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'wasm-to-oci');
  if (env.HOME) return join(env.HOME, '.cache', 'wasm-to-oci');
  return undefined;
}

/** WASM_TO_OCI_CACHE_MAX_MB: the cache bound in bytes (the default when unset; a bad value is an error). */
export function cacheMaxBytes(env: NodeJS.ProcessEnv): number {
  const raw = env.WASM_TO_OCI_CACHE_MAX_MB;
  if (raw === undefined || raw.trim() === '') return DEFAULT_CACHE_BYTES;
  const mb = Number(raw);
  if (!Number.isFinite(mb) || mb < 0) {
    throw new WasmOciError(
      'USAGE',
      `WASM_TO_OCI_CACHE_MAX_MB takes a size in MiB, not ${JSON.stringify(raw)}`,
      {
        hint: 'set it to a number such as 2048 (0 keeps nothing), or unset it for the default of 2048',
      },
    );
  }
  return mb * 1024 * 1024;
}

/** The blob cache the CLI uses: `$XDG_CACHE_HOME/wasm-to-oci/oci`, bounded by WASM_TO_OCI_CACHE_MAX_MB. */
export function cliCache(ctx: Context): BlobCache | undefined {
  const dir = cacheDir(ctx.env);
  if (!dir) return undefined;
  return openCache(join(dir, 'oci'), cacheMaxBytes(ctx.env), cacheWarning(ctx));
}
