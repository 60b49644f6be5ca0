import { stat } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { type BlobCache, pruneCache } from './cache.js';
import { FileOutputStore } from './content/file.js';
import type { OutputWitness, ReadOnlyTarget } from './content/types.js';
import { copyGraph, fetchManifest, type ProgressEvent } from './copy.js';
import { hasCode, WasmOciError } from './errors.js';
import type { Descriptor } from './oci/descriptor.js';
import { parseManifest } from './oci/manifest.js';
import type { TrustOptions } from './signing.js';
import {
  type ConnectOptions,
  formatTarget,
  openTarget,
  parseTarget,
  type TargetSpec,
  targetReference,
} from './target.js';
import { PREAMBLE_LENGTH } from './wasm/detect.js';
import { selectIndexEntry, selectWasmLayer } from './wasm/select.js';

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
  /** True when the module came from the local cache (no blob bytes were downloaded). */
  fromCache: boolean;
  /** With `verify`: the signed target that vouched for the module. */
  verified?: { collection: string; target: string; role: string; server: string } | undefined;
}

/** True for a regular file (not a device or FIFO the module was written through to). */
async function isRegularFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() === true;
}

/** The first bytes of a blob (the wasm preamble), read and the rest of the stream dropped. */
async function peek(
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
): Promise<boolean> {
  if (!(await cache.store.exists(layer))) return false;
  const sink = new FileOutputStore();
  sink.expect(layer, output, witness?.(), options.outputMode);
  try {
    await copyGraph(cache.store, sink, layer, { signal: options.signal, onProgress: options.onProgress });
  } catch (err) {
    if (hasCode(err, 'DIGEST_MISMATCH') || hasCode(err, 'SIZE_MISMATCH')) {
      await cache.store.removeBlob(layer.digest);
      return false;
    }
    throw err;
  }
  await cache.store.touch(layer);
  return true;
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
  const { target: repo, close } = openTarget(spec, 'pull', options);
  try {
    let manifestDesc = await repo.resolve(targetReference(spec), { signal });
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
      peek: (desc) => peek(repo, desc, signal),
    });
    const output = resolvePath(options.output);
    const witness = trust ? trust.witness(layer) : undefined;
    const { cache } = options;
    const fromCache = cache ? await pullFromCache(cache, layer, output, options, witness) : false;
    if (!fromCache) {
      const sink = new FileOutputStore();
      sink.expect(layer, output, witness?.(), options.outputMode);
      await copyGraph(repo, sink, manifestDesc, {
        signal,
        onProgress: options.onProgress,
        concurrency: options.concurrency,
        findSuccessors: () => [layer],
      });
      if (cache && (await isRegularFile(output))) {
        // The cache only speeds things up: a cache that cannot be written is not a failed pull.
        const failed = (err: unknown) => cache.onError?.(err);
        await cache.store.importFile(layer, output).then(() => pruneCache(cache).catch(failed), failed);
      }
    }
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
      ...(trust ? { verified: trust.verified } : {}),
    };
  } finally {
    close();
  }
}

/** The signed target for the reference's tag, verified; and a witness factory for the layer. */
async function signedTarget(spec: TargetSpec, options: PullOptions, trust: TrustOptions) {
  if (spec.kind !== 'registry') {
    throw new WasmOciError('USAGE', 'signature checks need a registry reference, not an OCI layout');
  }
  if (spec.tag === undefined) {
    throw new WasmOciError(
      'USAGE',
      `signature checks need a tag (the signed target's name): ${options.reference}`,
      {
        hint: 'Notary signs tags; pull by tag with --sign',
      },
    );
  }
  const signing = await import('./signing.js');
  const gun = signing.trustCollection(spec.ref);
  const { ctx, close } = signing.openTrust(gun, trust, options);
  try {
    const target = await signing.trustedTarget(ctx, spec.tag);
    // Checked once against the descriptor now, so a mismatch fails before any download.
    const check = (layer: Descriptor) => signing.targetWitness(target, layer, gun);
    return {
      verified: { collection: gun, target: target.name, role: target.role, server: ctx.server.url.href },
      witness: (layer: Descriptor) => {
        check(layer);
        return () => check(layer);
      },
    };
  } finally {
    close();
  }
}
