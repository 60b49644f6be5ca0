import { join } from 'node:path';
import { FileDigestCache } from '../content/digest-cache.js';
import { push } from '../push.js';
import type { OptionValues } from './args.js';
import { type Context, connectOptions, flag } from './common.js';
import { printResult } from './output.js';
import { progressBar } from './progress.js';

/** `$XDG_CACHE_HOME/wasm-to-oci`, else `~/.cache/wasm-to-oci`. */
export function cacheDir(env: NodeJS.ProcessEnv): string | undefined {
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'wasm-to-oci');
  if (env.HOME) return join(env.HOME, '.cache', 'wasm-to-oci');
  return undefined;
}

export async function runPush(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const [file, reference] = args as [string, string];
  const json = flag(options, 'json');
  const dir = flag(options, 'no-cache') ? undefined : cacheDir(ctx.env);
  const bar = progressBar(ctx.io.stderr, 'Pushing');
  let result: Awaited<ReturnType<typeof push>>;
  try {
    result = await push({
      ...(await connectOptions(options, ctx)),
      file,
      reference,
      ociLayout: flag(options, 'oci-layout'),
      digestCache: dir ? new FileDigestCache(join(dir, 'digests.json')) : undefined,
      signal: ctx.signal,
      onProgress: json ? undefined : bar.onProgress,
    });
  } finally {
    bar.finish();
  }
  if (result.defaultedTag && !json) ctx.io.stderr.write('Using default tag: latest\n');
  printResult(
    ctx.io,
    json,
    [
      ['Pushed', result.reference],
      ['Size', result.size],
      ['Digest', result.digest],
    ],
    {
      reference: result.reference,
      digest: result.digest,
      size: result.size,
      mediaType: result.mediaType,
      layer: result.layer,
      uploadedBytes: result.uploadedBytes,
    },
  );
}
