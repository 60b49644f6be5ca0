import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileDigestCache } from '../cache/digest-cache.js';
import { fileError } from '../content/output.js';
import { WasmOciError } from '../errors.js';
import { splitTags } from '../ops/copy.js';
import { push } from '../ops/push.js';
import type { OptionValues } from './args.js';
import { cacheDir, cacheWarning } from './cache-dir.js';
import { annotations, type Context, connectOptions, flag, list, text, trustOptions } from './common.js';
import { descriptorJson } from './json.js';
import { printResult } from './output.js';
import { progressSettings, showingProgress } from './progress.js';

/** Reads stdin into a private temporary file, so `-` pushes like a file (hashed, size known). */
async function stdinToFile(ctx: Context): Promise<{ path: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-stdin-'));
  const path = join(dir, 'module.wasm');
  const remove = () => rm(dir, { recursive: true, force: true });
  const stdin = ctx.io.stdin;
  try {
    if (!stdin) throw new WasmOciError('USAGE', 'no standard input to read the module from');
    await pipeline(Readable.from(stdin as AsyncIterable<Buffer>), createWriteStream(path, { mode: 0o600 }));
  } catch (err) {
    await remove();
    if (err instanceof WasmOciError) throw err;
    // The spool file is ours, not the user's: the message names what it held, not its path.
    throw fileError(err as NodeJS.ErrnoException, 'a temporary copy of standard input');
  }
  return { path, remove };
}

const isFile = async (path: string) => (await stat(path).catch(() => undefined))?.isFile() === true;

export async function runPush(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const [file, target] = args as [string, string];
  if (file !== '-' && !(await isFile(file)) && (await isFile(target))) {
    throw new WasmOciError('USAGE', `the arguments look swapped: ${target} is a file and ${file} is not`, {
      hint: `push takes the file first, then the reference: push ${target} ${file}`,
    });
  }
  const json = flag(options, 'json');
  const dir = flag(options, 'no-cache') ? undefined : cacheDir(ctx.env);
  const { reference, tags } = splitTags(target);
  const fromFlag = text(options, 'format');
  const fromEnv = ctx.env.WASM_TO_OCI_FORMAT || undefined;
  const format = fromFlag ?? fromEnv ?? 'classic';
  if (format !== 'classic' && format !== 'cncf') {
    throw fromFlag !== undefined
      ? new WasmOciError('USAGE', `unknown format "${format}"`, {
          hint: 'use --format classic or --format cncf',
        })
      : new WasmOciError('USAGE', `WASM_TO_OCI_FORMAT is "${format}", not a format`, {
          hint: 'set it to classic or cncf, unset it, or override it with --format classic|cncf',
        });
  }
  const signKeyFile = text(options, 'sign-key');
  const signKey = signKeyFile ? await cosignKey(signKeyFile, ctx) : undefined;
  const fromStdin = file === '-' ? await stdinToFile(ctx) : undefined;
  const quiet = flag(options, 'quiet');
  let result: Awaited<ReturnType<typeof push>>;
  try {
    result = await showingProgress(ctx.io.stderr, 'Pushing', progressSettings(options, 'up'), async (bar) =>
      push({
        ...(await connectOptions(options, ctx, reference)),
        file: fromStdin?.path ?? file,
        name: fromStdin ? 'standard input' : undefined,
        title: fromStdin ? (text(options, 'title') ?? '') : text(options, 'title'),
        reference,
        tags: [...tags, ...list(options, 'tag')],
        format:
          format === 'cncf'
            ? {
                kind: 'cncf',
                created: text(options, 'created'),
                sourceDateEpoch: ctx.env.SOURCE_DATE_EPOCH,
                author: text(options, 'author'),
                targetWorld: text(options, 'target-world'),
              }
            : { kind: 'classic' },
        annotations: await annotations(options),
        artifactType: text(options, 'artifact-type'),
        ociLayout: flag(options, 'oci-layout'),
        digestCache:
          dir && !fromStdin ? new FileDigestCache(join(dir, 'digests.json'), cacheWarning(ctx)) : undefined,
        sign: await trustOptions(options, ctx, flag(options, 'sign')),
        signKey,
        signal: ctx.signal,
        onProgress: bar.onProgress,
      }),
    );
  } finally {
    await fromStdin?.remove();
  }
  const { signed } = result;
  if (signed?.created && !json && !quiet) {
    ctx.io.stderr.write(
      `Created the trusted collection ${signed.collection} on ${signed.server}; back up the root key in ` +
        `${text(options, 'dir') ?? '~/.wasm-to-oci'}/private (see the README).\n`,
    );
  }
  if (result.defaultedTag && !json && !quiet) ctx.io.stderr.write('Using default tag: latest\n');
  const cosignJson = result.cosignSignature
    ? (await import('./cosign.js')).signatureJson(result.cosignSignature)
    : undefined;
  printResult(
    ctx.io,
    json,
    [
      ...result.references.map((r): [string, string] => ['Pushed', r]),
      ['Size', result.size],
      ['Digest', result.digest],
      ...(signed ? signed.targets.map((t): [string, string] => ['Signed', `${signed.collection}:${t}`]) : []),
      ...(result.cosignSignature
        ? [['Signature', `${result.cosignSignature.manifest.digest} (cosign)`] as [string, string]]
        : []),
    ],
    {
      reference: result.reference,
      references: result.references,
      manifest: descriptorJson(result.manifest),
      config: descriptorJson(result.config),
      layer: descriptorJson(result.layer),
      kind: result.kind,
      bytesSent: result.uploadedBytes,
      ...(signed ? { signed } : {}),
      ...(cosignJson ? { cosignSignature: cosignJson } : {}),
    },
  );
}

/** `--sign-key`: the key file and where its password comes from (the cosign module is loaded only then). */
async function cosignKey(path: string, ctx: Context) {
  const { cosignPassword, readKeyFile } = await import('./cosign.js');
  return { privateKey: await readKeyFile(path, 'sign-key'), password: cosignPassword(ctx) };
}
