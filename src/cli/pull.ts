import { pull } from '../pull.js';
import type { OptionValues } from './args.js';
import { type Context, connectOptions, flag, text } from './common.js';
import { cliCache } from './manage.js';
import { printResult } from './output.js';
import { progressBar } from './progress.js';

export async function runPull(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const [reference] = args as [string];
  const json = flag(options, 'json');
  const bar = progressBar(ctx.io.stderr, 'Pulling');
  let result: Awaited<ReturnType<typeof pull>>;
  try {
    result = await pull({
      ...(await connectOptions(options, ctx)),
      reference,
      ociLayout: flag(options, 'oci-layout'),
      cache: flag(options, 'no-cache') ? undefined : cliCache(ctx),
      output: text(options, 'out') ?? 'module.wasm',
      layer: text(options, 'layer'),
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
      ['Pulled', result.reference],
      ['Size', result.size],
      ['Digest', result.digest],
    ],
    {
      reference: result.reference,
      digest: result.digest,
      size: result.size,
      mediaType: result.mediaType,
      manifest: result.manifest,
      output: result.output,
      fromCache: result.fromCache,
    },
  );
}
