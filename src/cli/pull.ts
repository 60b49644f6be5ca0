import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { WasmOciError } from '../errors.js';
import { pull } from '../ops/pull.js';
import type { OptionValues } from './args.js';
import { cliCache } from './cache-dir.js';
import { type Context, connectOptions, flag, text, trustOptions } from './common.js';
import { descriptorJson } from './json.js';
import { lineSafe, printResult } from './output.js';
import { progressSettings, showingProgress } from './progress.js';

export async function runPull(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const [reference] = args as [string];
  const json = flag(options, 'json');
  const out = text(options, 'out') ?? 'module.wasm';
  // `--out -`: the module goes to stdout, but only once verified (it is pulled to a private file first).
  const toStdout = out === '-';
  if (toStdout && json) {
    // As oras refuses `--output -` with `--descriptor`: stdout carries the module and nothing else.
    throw new WasmOciError(
      'USAGE',
      '--json cannot be used with --out -: standard output carries only the module',
      {
        hint: 'write the module to a file (-o <file>) to get the JSON result, or drop --json',
      },
    );
  }
  if (toStdout && ctx.io.stdout.isTTY && !flag(options, 'force')) {
    // As curl does: binary output would garble the terminal.
    throw new WasmOciError('USAGE', 'refusing to write a binary module to a terminal', {
      hint: 'redirect it (-o - > file.wasm, or | another command), write a file with -o <file>, or pass --force',
    });
  }
  const temp = toStdout ? join(await mkdtemp(join(tmpdir(), 'wasm-to-oci-pull-')), 'module.wasm') : undefined;
  const quiet = flag(options, 'quiet');
  let result: Awaited<ReturnType<typeof pull>>;
  try {
    result = await showingProgress(ctx.io.stderr, 'Pulling', progressSettings(options, 'down'), async (bar) =>
      pull({
        platform: text(options, 'platform'),
        ...(await connectOptions(options, ctx, reference)),
        reference,
        ociLayout: flag(options, 'oci-layout'),
        cache: flag(options, 'no-cache') ? undefined : cliCache(ctx),
        output: temp ?? out,
        outputMode: temp ? 0o600 : undefined,
        layer: text(options, 'layer'),
        verify: await trustOptions(options, ctx, flag(options, 'sign') || flag(options, 'verify')),
        verifyKey: await verifyKey(options),
        signal: ctx.signal,
        onProgress: bar.onProgress,
      }),
    );
  } catch (err) {
    // The private directory of `--out -` goes with a failed pull too.
    if (temp) await rm(dirname(temp), { recursive: true, force: true });
    throw err;
  }
  if (result.defaultedTag && !json && !quiet) ctx.io.stderr.write('Using default tag: latest\n');
  if (temp) {
    try {
      for await (const chunk of createReadStream(temp)) ctx.io.stdout.write(chunk as Buffer);
    } finally {
      await rm(dirname(temp), { recursive: true, force: true });
    }
    // --json was refused above: the summary goes to stderr, beside the module on stdout.
    if (!quiet)
      ctx.io.stderr.write(
        `Pulled: ${result.reference}\n${unpackedLine(result)}Size: ${result.unpacked?.size ?? result.size}\nDigest: ${result.digest}\n`,
      );
    if (result.verified) ctx.io.stderr.write(`Verified: ${verifiedLine(result.verified)}\n`);
    if (result.cosignVerified) ctx.io.stderr.write(`Verified: ${cosignLine(result.cosignVerified)}\n`);
    return;
  }
  printResult(
    ctx.io,
    json,
    [
      ['Pulled', result.reference],
      ...(result.unpacked
        ? [['Unpacked', `${result.unpacked.entry} from the ${result.mediaType} layer`] as [string, string]]
        : []),
      ['Size', result.unpacked?.size ?? result.size],
      ['Digest', result.digest],
      ...(result.verified ? [['Verified', verifiedLine(result.verified)] as [string, string]] : []),
      ...(result.cosignVerified ? [['Verified', cosignLine(result.cosignVerified)] as [string, string]] : []),
    ],
    {
      reference: result.reference,
      manifest: descriptorJson(result.manifest),
      layer: descriptorJson(result.layer),
      output: result.output,
      // Blob bytes downloaded: none when the cache had the layer.
      bytesReceived: result.fromCache ? 0 : result.layer.size,
      fromCache: result.fromCache,
      ...(result.unpacked ? { unpacked: result.unpacked } : {}),
      ...(result.verified ? { verified: result.verified } : {}),
      ...(result.cosignVerified
        ? { cosignVerified: result.cosignVerified.map((await import('./cosign.js')).foundJson) }
        : {}),
    },
  );
}

function cosignLine(found: NonNullable<Awaited<ReturnType<typeof pull>>['cosignVerified']>): string {
  const ok = found.filter((s) => s.verified);
  return `${ok.length} cosign signature${ok.length === 1 ? '' : 's'} (${[...new Set(ok.map((s) => s.kind))].join(', ')})`;
}

/** `--verify-key`: the public key's text (the cosign module is loaded only then). */
async function verifyKey(options: OptionValues): Promise<string | undefined> {
  const path = text(options, 'verify-key');
  if (path === undefined) return undefined;
  const { readKeyFile } = await import('./cosign.js');
  return readKeyFile(path, 'verify-key');
}

function unpackedLine(result: Awaited<ReturnType<typeof pull>>): string {
  return result.unpacked
    ? `Unpacked: ${lineSafe(result.unpacked.entry)} from the ${result.mediaType} layer\n`
    : '';
}

function verifiedLine(v: { collection: string; target: string; role: string }): string {
  return `${v.collection}:${v.target} (signed by ${v.role})`;
}
