import { pull } from '../pull.js';
import { type Context, connectOptions, type NetworkFlags } from './common.js';
import { printResult } from './output.js';
import { progressBar } from './progress.js';

export interface PullFlags extends NetworkFlags {
  out: string;
  layer?: string;
}

export async function runPull(reference: string, flags: PullFlags, ctx: Context): Promise<void> {
  const bar = progressBar(ctx.io.stderr, 'Pulling');
  let result: Awaited<ReturnType<typeof pull>>;
  try {
    result = await pull({
      ...connectOptions(flags, ctx),
      reference,
      output: flags.out,
      layer: flags.layer,
      signal: ctx.signal,
      onProgress: flags.json ? undefined : bar.onProgress,
    });
  } finally {
    bar.finish();
  }
  if (result.defaultedTag && !flags.json) ctx.io.stderr.write('Using default tag: latest\n');
  printResult(
    ctx.io,
    flags.json ?? false,
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
    },
  );
}
