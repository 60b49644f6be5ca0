import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import type { BlobCache } from '../cache/cache.js';
import { FileOutputStore } from '../content/file.js';
import { type OutputPlan, outputWriter, prepareOutput, privateTempDir } from '../content/output.js';
import type { OutputWitness, ReadOnlyTarget } from '../content/types.js';
import { copyGraph, fetchManifest, type ProgressEvent } from '../copy.js';
import { hasCode, throwIfAborted, WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { Digester } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
import type { PullVerifier, TrustOptions } from '../sign/index.js';
import { DIAGNOSIS_LENGTH, PREAMBLE_LENGTH, requireWasm } from '../wasm/detect.js';
import { isArchiveLayer, selectIndexEntry, selectWasmLayer } from '../wasm/select.js';
import type { SignatureFound } from './cosign.js';
import {
  type ConnectOptions,
  formatTarget,
  openTarget,
  parseTarget,
  type TargetSpec,
  targetReference,
} from './target.js';

export interface PullOptions extends ConnectOptions {
  /** What to pull: `host[:port]/repository[:tag][@digest]`, or a layout `oci:<dir>[:tag][@digest]`. */
  reference: string;
  /** Treat `reference` as an OCI image-layout directory even without `oci:`. */
  ociLayout?: boolean | undefined;
  /** Where to write the module. It appears only once verified; a failed pull leaves it untouched. */
  output: string;
  /** Mode of a new output file (default 0666, less the umask); 0600 for a private copy. */
  outputMode?: number | undefined;
  /** Keep pulled modules in this cache and take them from it when they are there. */
  cache?: BlobCache | undefined;
  /** For an image index: the entry for this platform (`os/architecture`, e.g. `wasip2/wasm`). */
  platform?: string | undefined;
  /** Pick the layer with this digest or title when the artifact has several. */
  layer?: string | undefined;
  concurrency?: number | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((event: ProgressEvent) => void) | undefined;
  /**
   * Accept the module only if Notary v1 trust data vouches for it: the collection
   * `<registry>/<repository>` is verified (root pinned on first use) and its target named after the tag
   * must give the module's length and hashes. Checked before the file is written; a mismatch writes
   * nothing.
   */
  verify?: TrustOptions | undefined;
  /**
   * Accept the module only if the manifest the reference names has a cosign signature that verifies
   * with this public key (PEM text of cosign.pub): a Sigstore bundle referrer or the `.sig` tag.
   * Checked before anything is downloaded; without one nothing is written.
   */
  verifyKey?: string | undefined;
}

export interface PullResult {
  /** The reference pulled, with its tag or digest. */
  reference: string;
  /** True when the input had no tag and `latest` was used. */
  defaultedTag: boolean;
  /** Digest of the wasm layer (the module written). */
  digest: string;
  /** Media type of the wasm layer. */
  mediaType: string;
  /** Size of the module in bytes. */
  size: number;
  /** The manifest the layer came from (for an index: the chosen entry). */
  manifest: Descriptor;
  layer: Descriptor;
  /** Absolute path of the written file. */
  output: string;
  /**
   * Set when the layer was a tar archive (an Istio "compat" image): the file inside it that was
   * written, with its own size and digest (`digest` and `size` above stay the layer's).
   */
  unpacked?: { entry: string; size: number; digest: string } | undefined;
  /** True when the module came from the local cache (no blob bytes were downloaded). */
  fromCache: boolean;
  /** With `verify`: the signed target that vouched for the module. */
  verified?: { collection: string; target: string; role: string; server: string } | undefined;
  /** With `verifyKey`: the cosign signatures found (at least one verified). */
  cosignVerified?: SignatureFound[] | undefined;
}

/** True for a regular file (not a device or FIFO the module was written through to). */
async function isRegularFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() === true;
}

/** Both witnesses see every byte; either may refuse. */
function bothWitnesses(a: OutputWitness, b: OutputWitness | undefined): OutputWitness {
  if (!b) return a;
  return {
    update: (chunk) => {
      a.update(chunk);
      b.update(chunk);
    },
    finish: () => {
      a.finish();
      b.finish();
    },
  };
}

/**
 * Refuses output that is not WebAssembly as soon as its first bytes are known (so a wrong layer is not
 * downloaded to the end), and refuses output shorter than a preamble at the end. Nothing is written.
 */
export function wasmWitness(what: string, hint: string): OutputWitness {
  const head = Buffer.alloc(DIAGNOSIS_LENGTH);
  let seen = 0;
  let checked = false;
  const check = () => {
    checked = true;
    requireWasm(head.subarray(0, seen), what, hint);
  };
  return {
    update(chunk) {
      if (checked) return;
      const n = Math.min(chunk.length, DIAGNOSIS_LENGTH - seen);
      head.set(chunk.subarray(0, n), seen);
      seen += n;
      if (seen === DIAGNOSIS_LENGTH) check();
    },
    finish() {
      if (!checked) check();
    },
  };
}

/** The first bytes of a blob (the wasm preamble), read and the rest of the stream dropped. */
export async function peekBlob(
  target: ReadOnlyTarget,
  desc: Descriptor,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  const stream = await target.fetch(desc, { signal });
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
    length += (chunk as Buffer).length;
    if (length >= PREAMBLE_LENGTH) break;
  }
  stream.destroy();
  return Buffer.concat(chunks).subarray(0, PREAMBLE_LENGTH);
}

/**
 * Writes a cached blob to the output, verified on the way (a cached blob is checked before each use);
 * false when it is not cached or the cached copy is corrupt (then it is dropped).
 */
async function pullFromCache(
  cache: BlobCache,
  layer: Descriptor,
  output: string,
  options: Pick<PullOptions, 'signal' | 'onProgress' | 'outputMode'>,
  witness: (() => OutputWitness) | undefined,
  prepared: Promise<OutputPlan> | undefined,
): Promise<boolean> {
  if (!(await cache.has(layer))) return false;
  const sink = new FileOutputStore();
  sink.expect(layer, output, witness?.(), options.outputMode, prepared);
  options.onProgress?.({ type: 'cached', desc: layer });
  try {
    await copyGraph(cache.source, sink, layer, { signal: options.signal, onProgress: options.onProgress });
  } catch (err) {
    if (hasCode(err, 'DIGEST_MISMATCH') || hasCode(err, 'SIZE_MISMATCH')) {
      await cache.evict(layer.digest);
      return false;
    }
    throw err;
  }
  await cache.used(layer);
  return true;
}

/** Writes one layer to `output` (from the cache when it is there, else from `repo`); true when cached. */
async function fetchLayer(
  repo: ReadOnlyTarget,
  manifestDesc: Descriptor,
  layer: Descriptor,
  output: string,
  witness: (() => OutputWitness) | undefined,
  mode: number | undefined,
  options: LayerOptions,
): Promise<boolean> {
  const { cache, signal, outputPlan: prepared } = options;
  const modeOptions = { signal, onProgress: options.onProgress, outputMode: mode };
  if (cache && (await pullFromCache(cache, layer, output, modeOptions, witness, prepared))) return true;
  const sink = new FileOutputStore();
  sink.expect(layer, output, witness?.(), mode, prepared);
  await copyGraph(repo, sink, manifestDesc, {
    signal,
    onProgress: options.onProgress,
    concurrency: options.concurrency,
    findSuccessors: () => [layer],
  });
  if (cache && (await isRegularFile(output))) {
    // The cache only speeds things up: a cache that cannot be written is not a failed pull.
    const failed = (err: unknown) => cache.onError?.(err);
    await cache.add(layer, output).then(() => cache.prune().catch(failed), failed);
  }
  return false;
}

/** The one `.wasm` file of a tar layer (already verified on disk at `archive`), written to `output`. */
async function unpackWasm(
  archive: string,
  layer: Descriptor,
  output: string,
  what: string,
  hint: string,
  options: LayerOptions,
): Promise<NonNullable<PullResult['unpacked']>> {
  const { findWasmEntry, extractEntry } = await import('../wasm/archive.js');
  const open = () => createReadStream(archive);
  const entry = await findWasmEntry(open, layer, hint);
  const writer = await outputWriter(output, {
    witness: wasmWitness(`${entry.name} in ${what}`, hint),
    mode: options.outputMode,
    prepared: options.outputPlan,
    size: entry.size,
  });
  const digester = new Digester();
  try {
    await extractEntry(open, entry, (chunk) => {
      throwIfAborted(options.signal);
      digester.update(chunk);
      return writer.write(chunk);
    });
    await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return { entry: entry.name, size: entry.size, digest: digester.digest() };
}

/** What options the core of a pull takes: where the module goes and how the bytes are fetched. */
export type LayerOptions = Pick<
  PullOptions,
  'cache' | 'concurrency' | 'onProgress' | 'outputMode' | 'signal'
> & {
  /** prepareOutput(output), started earlier (pull starts it before its first request). */
  outputPlan?: Promise<OutputPlan> | undefined;
};

/**
 * The core of a pull, on a target already open and a layer already chosen: writes the module the layer
 * holds (or, for a tar layer, the wasm inside it) to `output`, verified and checked as WebAssembly,
 * through the cache when there is one. Inspect uses it on its own open target (one manifest GET).
 */
export async function writeLayer(
  repo: ReadOnlyTarget,
  spec: TargetSpec,
  manifestDesc: Descriptor,
  layer: Descriptor,
  output: string,
  options: LayerOptions,
  trust?: PullVerifier,
): Promise<{ fromCache: boolean; unpacked?: PullResult['unpacked'] }> {
  const trustWitness = trust ? trust.witness(layer) : undefined;
  const what = `layer ${layer.digest} (${layer.mediaType})`;
  const where = formatTarget({ ...spec, tag: undefined, digest: undefined });
  const hint = `pull and run write only WebAssembly; to download the blob as it is, use: blob get ${where}@${layer.digest} -o <file>`;
  if (!isArchiveLayer(layer)) {
    const witness = () => bothWitnesses(wasmWitness(what, hint), trustWitness?.());
    return {
      fromCache: await fetchLayer(repo, manifestDesc, layer, output, witness, options.outputMode, options),
    };
  }
  // The archive goes to a private file first (verified, and cached like any layer); the wasm in it is
  // then unpacked into the output, checked as WebAssembly on the way.
  const dir = await privateTempDir('wasm-to-oci-layer-');
  try {
    const archive = join(dir, 'layer');
    // The plan is the output's, not the archive's: it goes to the unpacking below.
    const archiveOptions = { ...options, outputPlan: undefined };
    const fromCache = await fetchLayer(
      repo,
      manifestDesc,
      layer,
      archive,
      trustWitness,
      0o600,
      archiveOptions,
    );
    return { fromCache, unpacked: await unpackWasm(archive, layer, output, what, hint, options) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Pulls the wasm module a reference names into a file. Reads the classic and the CNCF layouts (and
 * any manifest with a single wasm layer); every byte is verified against its descriptor before the file
 * is renamed into place.
 */
export async function pull(options: PullOptions): Promise<PullResult> {
  const spec = parseTarget(options.reference, { layout: options.ociLayout });
  const { signal } = options;
  // With verify: the trust data first, so that an unsigned tag costs no download.
  const trust = options.verify ? await signedTarget(spec, options, options.verify) : undefined;
  const cosign = options.verifyKey ? await import('./cosign.js') : undefined;
  const keyVerifier = options.verifyKey ? cosign?.openKeyVerifier(options.verifyKey) : undefined;
  const { target: repo, close } = openTarget(spec, 'pull', options);
  // Where the module goes is looked at (links followed, stale parts swept) while the manifest is on
  // the way; its errors wait until the module is written, so a failed resolve is still reported first.
  const output = resolvePath(options.output);
  const outputPlan = prepareOutput(output);
  outputPlan.catch(() => {});
  try {
    let manifestDesc = await repo.resolve(targetReference(spec), { signal });
    let cosignVerified: SignatureFound[] | undefined;
    if (cosign && keyVerifier) {
      // The manifest the reference names is what is signed; nothing is fetched beyond it before.
      cosignVerified = await cosign.findSignatures(repo, manifestDesc, keyVerifier, signal);
      cosign.requireVerified(
        cosignVerified,
        formatTarget({ ...spec, tag: undefined, digest: manifestDesc.digest }),
      );
    }
    let parsed = parseManifest(await fetchManifest(repo, manifestDesc, signal), manifestDesc.mediaType);
    if (parsed.kind === 'index') {
      manifestDesc = selectIndexEntry(parsed.index, options.platform);
      parsed = parseManifest(await fetchManifest(repo, manifestDesc, signal), manifestDesc.mediaType);
      if (parsed.kind === 'index') {
        throw new WasmOciError('UNSUPPORTED', 'nested image indexes are not supported');
      }
    }
    const layer = await selectWasmLayer(parsed.manifest, {
      layer: options.layer,
      peek: (desc) => peekBlob(repo, desc, signal),
    });
    const { fromCache, unpacked } = await writeLayer(
      repo,
      spec,
      manifestDesc,
      layer,
      output,
      { ...options, outputPlan },
      trust,
    );
    return {
      reference: formatTarget(spec),
      defaultedTag: spec.defaultedTag,
      digest: layer.digest,
      mediaType: layer.mediaType,
      size: layer.size,
      manifest: manifestDesc,
      layer,
      output,
      fromCache,
      ...(unpacked ? { unpacked } : {}),
      ...(trust ? { verified: trust.verified } : {}),
      ...(cosignVerified ? { cosignVerified } : {}),
    };
  } finally {
    close();
  }
}

/** The verified signed target of the reference's tag (Notary signs tags of registry repositories). */
async function signedTarget(
  spec: TargetSpec,
  options: PullOptions,
  trust: TrustOptions,
): Promise<PullVerifier> {
  if (spec.kind !== 'registry') {
    throw new WasmOciError('USAGE', 'signature checks need a registry reference, not an OCI layout');
  }
  if (spec.tag === undefined) {
    throw new WasmOciError(
      'USAGE',
      `signature checks need a tag (the signed target's name): ${options.reference}`,
      {
        hint: 'Notary signs tags; pull by tag with the `verify` option',
      },
    );
  }
  const { openPullVerifier } = await import('../sign/index.js');
  return openPullVerifier(spec.ref, spec.tag, trust, options);
}
