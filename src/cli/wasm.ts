import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { ArtifactReport, FileReport, WasmReport } from '../ops/inspect.js';
import type { OptionValues } from './args.js';
import { cliCache } from './cache-dir.js';
import { type Context, connectOptions, flag, list, text } from './common.js';
import { descriptorJson } from './json.js';
import { jsonSafe, lineSafe } from './output.js';

/** `inspect` and `run`: a local file, or a reference (pulled verified, through the cache). */

async function isLocalFile(arg: string, options: OptionValues): Promise<boolean> {
  if (arg.startsWith('oci:') || flag(options, 'oci-layout')) return false;
  return (await stat(arg).catch(() => undefined))?.isFile() === true;
}

const describeDesc = (d: Descriptor) =>
  `${d.digest} (${d.mediaType}, ${d.size} bytes${d.annotations?.['org.opencontainers.image.title'] ? `, ${d.annotations['org.opencontainers.image.title']}` : ''})`;

function wasmLines(w: WasmReport): string[] {
  const lines = [
    `Wasm:        ${w.kind === 'module' ? 'core module' : 'component'} (version ${w.version})`,
    'Imports:',
  ];
  if (w.kind === 'module') {
    for (const [module, names] of Object.entries(w.importsByModule ?? {}))
      lines.push(`  ${module}: ${names.join(', ')}`);
  } else for (const i of w.imports) lines.push(`  ${i.name} (${i.kind})`);
  if (w.imports.length === 0) lines.push('  (none)');
  lines.push('Exports:', ...w.exports.map((e) => `  ${e.name} (${e.kind})`));
  if (w.exports.length === 0) lines.push('  (none)');
  return lines;
}

const platformOf = (d: Descriptor) => {
  const p = d.platform;
  if (!p) return '(no platform)';
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
};

/** The config's well-known fields (OCI image config and the CNCF wasm config share os/architecture). */
function configLines(json: unknown): string[] {
  if (typeof json !== 'object' || json === null) return [];
  const c = json as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const lines: string[] = [];
  const os = text(c.os);
  const arch = text(c.architecture);
  if (os || arch)
    lines.push(`Platform:    ${os ?? '?'}/${arch ?? '?'}${text(c.variant) ? `/${text(c.variant)}` : ''}`);
  if (text(c.created)) lines.push(`Created:     ${text(c.created)}`);
  if (text(c.author)) lines.push(`Author:      ${text(c.author)}`);
  const component = c.component as Record<string, unknown> | undefined;
  const world = typeof component === 'object' && component !== null ? text(component.target) : undefined;
  if (world) lines.push(`World:       ${world}`);
  return lines;
}

function artifactLines(r: ArtifactReport): string[] {
  const lines = [`Reference:   ${r.reference}`, `Format:      ${r.format}`];
  if (r.index) {
    lines.push(`Index:       ${describeDesc(r.index.descriptor)}, ${r.index.manifests.length} entries`);
    for (const m of r.index.manifests) {
      lines.push(
        `  ${platformOf(m)}  ${m.digest} (${m.mediaType}, ${m.size} bytes${m.artifactType ? `, ${m.artifactType}` : ''})`,
      );
    }
  }
  if (r.format !== 'index') lines.push(`Manifest:    ${describeDesc(r.manifest)}`);
  if (r.artifactType) lines.push(`Artifact:    ${r.artifactType}`);
  if (r.config) lines.push(`Config:      ${describeDesc(r.config)}`, ...configLines(r.configJson));
  if (r.format !== 'index') {
    lines.push(`Layers:      ${r.layers.length}`, ...r.layers.map((l) => `  ${describeDesc(l)}`));
  }
  if (r.layer) lines.push(`Layer:       ${describeDesc(r.layer)}`);
  if (r.unpacked)
    lines.push(`Unpacked:    ${r.unpacked.entry} (${r.unpacked.size} bytes, ${r.unpacked.digest})`);
  const annotations = Object.entries(r.annotations);
  if (annotations.length) lines.push('Annotations:', ...annotations.map(([k, v]) => `  ${k}: ${v}`));
  if (r.wasm) return [...lines, ...wasmLines(r.wasm)];
  return [...lines, `Wasm:        none (${r.noWasm ?? 'no layer holds a wasm module'})`];
}

export async function runInspect(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const [subject] = args as [string];
  const json = flag(options, 'json');
  let result: ArtifactReport | FileReport;
  const { inspectArtifact, inspectFile } = await import('../ops/inspect.js');
  if (await isLocalFile(subject, options)) result = await inspectFile(subject);
  else {
    result = await inspectArtifact({
      ...(await connectOptions(options, ctx, subject)),
      reference: subject,
      ociLayout: flag(options, 'oci-layout'),
      platform: text(options, 'platform'),
      layer: text(options, 'layer'),
      cache: flag(options, 'no-cache') ? undefined : cliCache(ctx),
      signal: ctx.signal,
    });
  }
  if (json) {
    ctx.io.stdout.write(`${jsonSafe('file' in result ? result : artifactJson(result))}\n`);
    return;
  }
  const lines =
    'file' in result
      ? [
          `File:        ${result.file}`,
          `Size:        ${result.size}`,
          `Digest:      ${result.digest}`,
          ...wasmLines(result.wasm),
        ]
      : artifactLines(result);
  // Names, titles and annotations come from the artifact and the binary: never obeyed by the terminal.
  ctx.io.stdout.write(`${lines.map(lineSafe).join('\n')}\n`);
}

/** An artifact report in the JSON contract: every descriptor `{mediaType, digest, size, ...}`. */
function artifactJson(r: ArtifactReport): object {
  const { index, config, layer } = r;
  return {
    ...r,
    manifest: descriptorJson(r.manifest),
    ...(index
      ? {
          index: {
            ...descriptorJson(index.descriptor),
            ...(index.annotations ? { annotations: index.annotations } : {}),
            manifests: index.manifests.map(descriptorJson),
          },
        }
      : {}),
    ...(config ? { config: descriptorJson(config) } : {}),
    layers: r.layers.map(descriptorJson),
    ...(layer ? { layer: descriptorJson(layer) } : {}),
  };
}

function pairs(values: string[], what: string, separator: string): Array<[string, string]> {
  return values.map((v) => {
    const at = v.indexOf(separator);
    if (what === 'dir' && at === -1) return [v, v];
    if (at <= 0)
      throw new WasmOciError(
        'USAGE',
        `--${what} wants ${what === 'env' ? 'KEY=VALUE' : 'host[:guest]'}, not "${v}"`,
      );
    return [v.slice(0, at), v.slice(at + 1)];
  });
}

export async function runRun(args: string[], options: OptionValues, ctx: Context): Promise<number> {
  const [subject, ...moduleArgs] = args as [string, ...string[]];
  const { runWasm } = await import('../ops/run.js');
  const env = Object.fromEntries(pairs(list(options, 'env'), 'env', '='));
  // --dir host[:guest]: the guest path defaults to the host path.
  const preopens = Object.fromEntries(
    pairs(list(options, 'dir'), 'dir', ':').map(([host, guest]) => [guest, resolve(host)]),
  );
  // With --json, standard output carries the result alone: the module writes to stderr instead.
  const json = flag(options, 'json');
  const stdoutFd = json ? 2 : undefined;
  const report = (exitCode: number, fields: object) => {
    if (json) ctx.io.stdout.write(`${jsonSafe({ ...fields, exitCode })}\n`);
    return exitCode;
  };
  if (await isLocalFile(subject, options)) {
    return report(await runWasm({ file: subject, args: moduleArgs, env, preopens, stdoutFd }), {
      file: subject,
    });
  }
  const { pull } = await import('../ops/pull.js');
  const { rm } = await import('node:fs/promises');
  const { privateTempDir } = await import('../content/output.js');
  // The module goes to a private directory (0700), not a world-readable file in /tmp.
  const dir = await privateTempDir('wasm-to-oci-run-');
  const temp = join(dir, 'module.wasm');
  const { progressSettings, showingProgress } = await import('./progress.js');
  try {
    const settings = progressSettings(options, 'down');
    const pulled = await showingProgress(ctx.io.stderr, 'Pulling', settings, async (bar) =>
      pull({
        ...(await connectOptions(options, ctx, subject)),
        reference: subject,
        output: temp,
        outputMode: 0o600,
        ociLayout: flag(options, 'oci-layout'),
        platform: text(options, 'platform'),
        layer: text(options, 'layer'),
        cache: flag(options, 'no-cache') ? undefined : cliCache(ctx),
        signal: ctx.signal,
        onProgress: bar.onProgress,
      }),
    );
    const exitCode = await runWasm({
      file: temp,
      name: pulled.reference,
      args: moduleArgs,
      env,
      preopens,
      stdoutFd,
    });
    return report(exitCode, {
      reference: pulled.reference,
      manifest: descriptorJson(pulled.manifest),
      layer: descriptorJson(pulled.layer),
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
