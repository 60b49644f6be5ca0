import { join } from 'node:path';
import { type BlobCache, DEFAULT_CACHE_BYTES, openCache } from '../cache/cache.js';
import type { Context } from './common.js';

/** `$XDG_CACHE_HOME/wasm-to-oci`, else `~/.cache/wasm-to-oci`. */
export function cacheDir(env: NodeJS.ProcessEnv): string | undefined {
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'wasm-to-oci');
  if (env.HOME) return join(env.HOME, '.cache', 'wasm-to-oci');
  return undefined;
}

/** The blob cache the CLI uses: `$XDG_CACHE_HOME/wasm-to-oci/oci`, bounded by WASM_TO_OCI_CACHE_MAX_MB. */
export function cliCache(ctx: Context): BlobCache | undefined {
  const dir = cacheDir(ctx.env);
  if (!dir) return undefined;
  const mb = Number(ctx.env.WASM_TO_OCI_CACHE_MAX_MB);
  return openCache(join(dir, 'oci'), Number.isFinite(mb) && mb > 0 ? mb * 1024 * 1024 : DEFAULT_CACHE_BYTES);
}
