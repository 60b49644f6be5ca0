import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pull } from '../pull.js';
import type { OptionValues } from './args.js';
import { cliCache } from './cache-dir.js';
import { type Context, connectOptions, flag, text, trustOptions } from './common.js';
import { printResult } from './output.js';
import { progressBar } from './progress.js';

export async function runPull(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const [reference] = args as [string];
  const json = flag(options, 'json');
  const out = text(options, 'out') ?? 'module.wasm';
  // `--out -`: the module goes to stdout, but only once verified (it is pulled to a private file first).
  const toStdout = out === '-';
  const temp = toStdout ? join(await mkdtemp(join(tmpdir(), 'wasm-to-oci-pull-')), 'module.wasm') : undefined;
  const bar = progressBar(ctx.io.stderr, 'Pulling');
  let result: Awaited<ReturnType<typeof pull>>;
  try {
    result = await pull({
      platform: text(options, 'platform'),
      ...(await connectOptions(options, ctx, reference)),
      reference,
      ociLayout: flag(options, 'oci-layout'),
      cache: flag(options, 'no-cache') ? undefined : cliCache(ctx),
      output: temp ?? out,
      outputMode: temp ? 0o600 : undefined,
      layer: text(options, 'layer'),
      verify: await trustOptions(options, ctx, flag(options, 'sign') || flag(options, 'verify')),
      signal: ctx.signal,
      onProgress: json ? undefined : bar.onProgress,
    });
  } catch (err) {
    // The private directory of `--out -` goes with a failed pull too.
    if (temp) await rm(dirname(temp), { recursive: true, force: true });
    throw err;
  } finally {
    bar.finish();
  }
  if (result.defaultedTag && !json) ctx.io.stderr.write('Using default tag: latest\n');
  if (temp) {
    try {
      for await (const chunk of createReadStream(temp)) ctx.io.stdout.write(chunk as Buffer);
    } finally {
      await rm(dirname(temp), { recursive: true, force: true });
    }
    if (!json) {
      ctx.io.stderr.write(`Pulled: ${result.reference}\nSize: ${result.size}\nDigest: ${result.digest}\n`);
      if (result.verified) ctx.io.stderr.write(`Verified: ${verifiedLine(result.verified)}\n`);
      return;
    }
  }
  printResult(
    ctx.io,
    json,
    [
      ['Pulled', result.reference],
      ['Size', result.size],
      ['Digest', result.digest],
      ...(result.verified ? [['Verified', verifiedLine(result.verified)] as [string, string]] : []),
    ],
    {
      reference: result.reference,
      digest: result.digest,
      size: result.size,
      mediaType: result.mediaType,
      manifest: result.manifest,
      output: result.output,
      fromCache: result.fromCache,
      ...(result.verified ? { verified: result.verified } : {}),
    },
  );
}

function verifiedLine(v: { collection: string; target: string; role: string }): string {
  return `${v.collection}:${v.target} (signed by ${v.role})`;
}
