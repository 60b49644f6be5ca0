import { DEFAULT_CONCURRENCY } from '../content/defaults.js';

import { WasmOciError } from '../errors.js';
import { type CopiedTag, copyAllTags, copyArtifact, type TagOutcome } from '../ops/copy.js';
import type { ReferrerNode } from '../ops/discover.js';
import {
  deleteManifest,
  getBlob,
  getManifest,
  listTags,
  resolveReference,
  tagPages,
  tagReference,
} from '../ops/repository.js';
import type { OptionValues } from './args.js';
import { cliCache } from './cache-dir.js';
import { annotations, type Context, copyConnectOptions, flag, list, targetOptions, text } from './common.js';
import { withFlags } from './flags.js';
import { descriptorJson } from './json.js';
import { EXIT_FAILED, jsonSafe, lineSafe, printResult, writeError } from './output.js';
import { progressSettings, showingProgress } from './progress.js';

/** Nesting deeper than this is not indented (JSON.stringify recurses; a hostile manifest can nest deep). */
const MAX_PRETTY_DEPTH = 512;

/** Indented JSON of a manifest, safe for a terminal; malformed or absurdly nested JSON is an error. */
export function prettyJson(bytes: Uint8Array): string {
  return jsonSafe(manifestJson(bytes), 2);
}

/** A manifest's bytes as a JSON value; malformed or absurdly nested JSON is an error. */
function manifestJson(bytes: Uint8Array): unknown {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new WasmOciError('INVALID_MANIFEST', 'the manifest is not JSON: it cannot be indented');
  }
  const pending: Array<[unknown, number]> = [[value, 1]];
  while (pending.length) {
    const [node, depth] = pending.pop() as [unknown, number];
    if (typeof node !== 'object' || node === null) continue;
    if (depth > MAX_PRETTY_DEPTH) {
      throw new WasmOciError(
        'INVALID_MANIFEST',
        `the manifest nests deeper than ${MAX_PRETTY_DEPTH} levels`,
        {
          hint: 'print it raw (without --pretty)',
        },
      );
    }
    for (const child of Object.values(node)) pending.push([child, depth + 1]);
  }
  return value;
}

/** The CLI side of copy, tags, resolve, tag, manifest, blob and cache. */

export async function runCopy(
  args: string[],
  options: OptionValues,
  ctx: Context,
): Promise<number | undefined> {
  const [source, destination] = args as [string, string];
  const json = flag(options, 'json');
  const concurrency = wholeNumber(options, 'concurrency', 1) ?? DEFAULT_CONCURRENCY;
  if (flag(options, 'all-tags')) return copyEveryTag(source, destination, options, ctx, concurrency);
  for (const name of ['include', 'exclude']) {
    if (options[name] !== undefined)
      throw new WasmOciError('USAGE', `--${name} selects tags of --all-tags`, {
        hint: `copy every tag: wasm-to-oci copy --all-tags <source-repository> <destination-repository> --${name} <glob>`,
      });
  }
  const sides = await copySides(source, destination, options, ctx, concurrency);
  const result = await showingProgress(ctx.io.stderr, 'Copying', progressSettings(options, 'up'), (bar) =>
    copyArtifact({ ...sides, onProgress: bar.onProgress }),
  );
  printResult(
    ctx.io,
    json,
    [
      ['Copied', result.source],
      ...result.destinations.map((d): [string, string] => ['To', d]),
      ['Digest', result.digest],
      [
        'Sent',
        `${result.copiedBytes} bytes (${result.mountedBlobs} blobs mounted, ${result.skipped} already there)`,
      ],
      ...(flag(options, 'recursive') ? [['Referrers', result.referrers] as [string, number]] : []),
    ],
    {
      source: result.source,
      references: result.destinations,
      manifest: descriptorJson(result.manifest),
      bytesSent: result.copiedBytes,
      blobsMounted: result.mountedBlobs,
      skipped: result.skipped,
      referrers: result.referrers,
    },
  );
  return undefined;
}

/** How a settled tag reads: `Copied v1 sha256:... (N bytes)`, `Skipped v2 (up to date)`, `Failed v3: ...`. */
function tagLine(outcome: TagOutcome): string {
  const tag = lineSafe(outcome.tag);
  if ('error' in outcome) return `Failed ${tag}: ${lineSafe(withFlags(outcome.error.message))}`;
  const referrers = outcome.referrers !== undefined ? `, ${outcome.referrers} referrers` : '';
  if (outcome.skipped) return `Skipped ${tag} (up to date${referrers})`;
  return `Copied ${tag} ${outcome.manifest.digest} (${outcome.bytesSent} bytes${referrers})`;
}

/** What both forms of copy take from the command line: the two sides, their credentials, the limits. */
async function copySides(
  source: string,
  destination: string,
  options: OptionValues,
  ctx: Context,
  concurrency: number,
) {
  return {
    ...(await copyConnectOptions(options, ctx, source, destination)),
    source,
    destination,
    fromOciLayout: flag(options, 'from-oci-layout'),
    toOciLayout: flag(options, 'to-oci-layout'),
    recursive: flag(options, 'recursive'),
    concurrency,
    signal: ctx.signal,
  };
}

/** `copy --all-tags`: a line per tag as it settles, a summary, and exit 1 when a tag failed. */
async function copyEveryTag(
  source: string,
  destination: string,
  options: OptionValues,
  ctx: Context,
  concurrency: number,
): Promise<number | undefined> {
  const json = flag(options, 'json');
  const sides = await copySides(source, destination, options, ctx, concurrency);
  const result = await showingProgress(ctx.io.stderr, 'Copying', progressSettings(options, 'up'), (bar) =>
    copyAllTags({
      ...sides,
      include: list(options, 'include'),
      exclude: list(options, 'exclude'),
      onProgress: bar.onProgress,
      onTag: json
        ? undefined
        : (outcome) => {
            bar.finish();
            ctx.io.stdout.write(`${tagLine(outcome)}\n`);
          },
    }),
  );
  const skipped = result.tags.filter((t: CopiedTag) => t.skipped).length;
  const total = result.tags.length + result.failed.length;
  if (json) {
    const tags = result.tags.map((t) => ({ ...t, manifest: descriptorJson(t.manifest) }));
    ctx.io.stdout.write(`${jsonSafe({ ...result, tags })}\n`);
  } else {
    ctx.io.stdout.write(
      `${total} tags from ${lineSafe(result.source)} to ${lineSafe(result.destination)}: ` +
        `${result.tags.length - skipped} copied, ${skipped} skipped, ${result.failed.length} failed; ` +
        `${result.bytesSent} bytes sent\n`,
    );
  }
  if (result.failed.length === 0) return undefined;
  const message = `${result.failed.length} of ${total} tags failed to copy`;
  const hint = 'run the same copy again: what is there already is skipped';
  writeError(ctx.io, json, result.failed[0]?.error.code ?? 'REGISTRY', message, hint);
  return EXIT_FAILED;
}

export async function runTags(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const target = await targetOptions(args[0] as string, options, ctx);
  if (flag(options, 'json')) {
    ctx.io.stdout.write(`${jsonSafe({ repository: args[0], tags: await listTags(target) })}\n`);
    return;
  }
  // Printed page by page, as they arrive.
  for await (const page of tagPages(target))
    ctx.io.stdout.write(page.map((t) => `${lineSafe(t)}\n`).join(''));
}

/** A whole-number option of at least `min` (undefined when not given); anything else is a usage error. */
function wholeNumber(options: OptionValues, name: string, min: number): number | undefined {
  const raw = text(options, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(value) || value < min) {
    throw new WasmOciError('USAGE', `--${name} takes a whole number from ${min}, not ${raw}`);
  }
  return value;
}

export async function runDiscover(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const depth = wholeNumber(options, 'depth', 0);
  const { discover } = await import('../ops/discover.js');
  const result = await discover({
    ...(await targetOptions(args[0] as string, options, ctx)),
    artifactType: text(options, 'artifact-type'),
    depth,
  });
  if (flag(options, 'json')) {
    const node = (n: ReferrerNode): object => ({
      manifest: descriptorJson(n.descriptor),
      referrers: n.referrers.map(node),
    });
    ctx.io.stdout.write(
      `${jsonSafe({
        reference: result.reference,
        subject: descriptorJson(result.subject),
        via: result.via,
        referrers: result.referrers.map(node),
      })}\n`,
    );
    return;
  }
  const lines = [lineSafe(result.reference)];
  const draw = (nodes: ReferrerNode[], indent: string) => {
    nodes.forEach((node, i) => {
      const last = i === nodes.length - 1;
      const { descriptor } = node;
      const type = node.artifactType ?? descriptor.mediaType;
      lines.push(
        `${indent}${last ? '└── ' : '├── '}${lineSafe(descriptor.digest)} ${lineSafe(type)} (${descriptor.size} bytes)`,
      );
      draw(node.referrers, `${indent}${last ? '    ' : '│   '}`);
    });
  };
  draw(result.referrers, '');
  if (result.referrers.length === 0) lines.push('(no referrers)');
  ctx.io.stdout.write(`${lines.join('\n')}\n`);
}

export async function runAttach(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const [reference, ...files] = args as [string, ...string[]];
  const artifactType = text(options, 'artifact-type');
  if (artifactType === undefined) {
    throw new WasmOciError('USAGE', 'attach needs --artifact-type', {
      hint: 'for example --artifact-type application/vnd.example.sbom.v1+json',
    });
  }
  const { attach, parseAttachFile } = await import('../ops/attach.js');
  const json = flag(options, 'json');
  const target = await targetOptions(reference, options, ctx);
  const extra = await annotations(options);
  const result = await showingProgress(ctx.io.stderr, 'Attaching', progressSettings(options, 'up'), (bar) =>
    attach({
      ...target,
      artifactType,
      files: files.map(parseAttachFile),
      annotations: extra,
      onProgress: bar.onProgress,
    }),
  );
  printResult(
    ctx.io,
    json,
    [
      ['Attached', result.reference],
      ['Digest', result.manifest.digest],
    ],
    {
      reference: result.reference,
      subject: descriptorJson(result.subject),
      manifest: descriptorJson(result.manifest),
      artifactType: result.artifactType,
      layers: result.layers.map(descriptorJson),
    },
  );
}

export async function runDetach(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const [reference, referrer] = args as [string, string];
  const { detach } = await import('../ops/attach.js');
  const result = await detach({ ...(await targetOptions(reference, options, ctx)), referrer });
  printResult(
    ctx.io,
    flag(options, 'json'),
    [
      ['Detached', result.digest],
      ['From', result.reference],
    ],
    { reference: result.reference, subject: descriptorJson(result.subject), detached: result.digest },
  );
}

export async function runResolve(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const desc = await resolveReference(await targetOptions(args[0] as string, options, ctx));
  if (flag(options, 'json'))
    ctx.io.stdout.write(`${jsonSafe({ reference: args[0], manifest: descriptorJson(desc) })}\n`);
  else ctx.io.stdout.write(`${desc.digest}\n`);
}

export async function runTag(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const [reference, ...tags] = args as [string, ...string[]];
  const { desc, references } = await tagReference({
    ...(await targetOptions(reference, options, ctx)),
    tags,
  });
  printResult(
    ctx.io,
    flag(options, 'json'),
    [...references.map((r): [string, string] => ['Tagged', r]), ['Digest', desc.digest]],
    { reference, manifest: descriptorJson(desc), references },
  );
}

export async function runManifest(
  args: string[],
  options: OptionValues,
  ctx: Context,
): Promise<number | undefined> {
  const [action, reference] = args as [string, string | undefined];
  if (reference === undefined) throw new WasmOciError('USAGE', "missing required argument 'reference'");
  const target = await targetOptions(reference, options, ctx);
  if (action === 'get') {
    const { desc, bytes } = await getManifest(target);
    if (flag(options, 'json')) {
      ctx.io.stdout.write(
        `${jsonSafe({ reference, manifest: descriptorJson(desc), content: manifestJson(bytes) })}\n`,
      );
    } else if (flag(options, 'descriptor')) ctx.io.stdout.write(`${jsonSafe(desc)}\n`);
    else if (flag(options, 'pretty')) ctx.io.stdout.write(`${prettyJson(bytes)}\n`);
    else ctx.io.stdout.write(bytes);
    return;
  }
  if (action === 'delete') {
    if (!flag(options, 'force')) {
      if (ctx.io.stdin?.isTTY !== true) {
        throw new WasmOciError(
          'USAGE',
          'manifest delete asks for confirmation, and stdin is not a terminal',
          {
            hint: `add --force to delete without being asked: wasm-to-oci manifest delete ${reference} --force`,
          },
        );
      }
      const { confirm } = await import('./prompt.js');
      const yes = await confirm(
        ctx.io,
        `Delete the manifest ${lineSafe(reference)}, with every tag that points at it?`,
        ctx.signal,
      );
      if (!yes) {
        ctx.io.stderr.write('Not deleted.\n');
        return EXIT_FAILED;
      }
    }
    const result = await deleteManifest(target);
    if (result.resolvedFromTag !== undefined && !flag(options, 'json')) {
      ctx.io.stderr.write(
        `Resolved tag ${result.resolvedFromTag} to ${result.digest}: the manifest is deleted with every tag that points at it\n`,
      );
    }
    printResult(ctx.io, flag(options, 'json'), [['Deleted', result.digest]], {
      reference,
      manifest: descriptorJson(result.manifest),
      ...(result.resolvedFromTag !== undefined ? { resolvedFromTag: result.resolvedFromTag } : {}),
    });
    return;
  }
  throw new WasmOciError('USAGE', `unknown manifest action '${action}'`, {
    hint: 'use: manifest get|delete <reference>',
  });
}

export async function runBlob(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const [action, reference] = args as [string, string | undefined];
  if (action !== 'get')
    throw new WasmOciError('USAGE', `unknown blob action '${action}'`, {
      hint: 'use: blob get <repo@digest> --out <file>',
    });
  if (reference === undefined) throw new WasmOciError('USAGE', "missing required argument 'reference'");
  const output = text(options, 'out');
  if (output === undefined) throw new WasmOciError('USAGE', 'blob get needs --out <file>');
  const target = await targetOptions(reference, options, ctx);
  const desc = await showingProgress(ctx.io.stderr, 'Downloading', progressSettings(options, 'down'), (bar) =>
    getBlob({ ...target, output, onProgress: bar.onProgress }),
  );
  printResult(
    ctx.io,
    flag(options, 'json'),
    [
      ['Digest', desc.digest],
      ['Size', desc.size],
      ['Written', output],
    ],
    { reference, blob: descriptorJson(desc), output, bytesReceived: desc.size },
  );
}

export async function runCache(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const [action] = args as [string];
  const cache = cliCache(ctx);
  if (!cache) throw new WasmOciError('USAGE', 'no cache directory: set XDG_CACHE_HOME or HOME');
  if (action === 'ls') {
    const entries = await cache.entries();
    const total = entries.reduce((sum, e) => sum + e.size, 0);
    if (flag(options, 'json')) {
      ctx.io.stdout.write(
        `${JSON.stringify({ path: cache.root, totalBytes: total, maxBytes: cache.maxBytes, entries })}\n`,
      );
      return;
    }
    for (const e of entries) ctx.io.stdout.write(`${e.digest}  ${e.size}  ${e.lastUsed.toISOString()}\n`);
    ctx.io.stderr.write(
      `${entries.length} blobs, ${total} bytes in ${cache.root} (bound ${cache.maxBytes})\n`,
    );
    return;
  }
  if (action === 'prune') {
    const maxMb = text(options, 'max-size');
    const bound = flag(options, 'all')
      ? 0
      : maxMb !== undefined
        ? Number(maxMb) * 1024 * 1024
        : cache.maxBytes;
    if (!Number.isFinite(bound) || bound < 0)
      throw new WasmOciError('USAGE', `--max-size takes MiB, not ${maxMb}`);
    const result = await cache.prune(bound);
    printResult(
      ctx.io,
      flag(options, 'json'),
      [
        ['Removed', `${result.removed} blobs (${result.freedBytes} bytes)`],
        ['Kept', `${result.keptBytes} bytes`],
      ],
      result,
    );
    return;
  }
  throw new WasmOciError('USAGE', `unknown cache action '${action}'`, {
    hint: 'use: cache ls | cache prune',
  });
}
