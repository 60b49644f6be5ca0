import type { DigestCache } from '../cache/digest-cache.js';
import type { Target } from '../content/types.js';
import { copy, type ProgressEvent } from '../copy.js';
import { hasCode, WasmOciError } from '../errors.js';
import type { Annotations, Descriptor } from '../oci/descriptor.js';
import { isManifestMediaType } from '../oci/mediatypes.js';
import { isValidTag } from '../reference.js';
import type { PushSigner, SignResult, TrustOptions } from '../sign/index.js';
import type { WasmKind } from '../wasm/detect.js';
import { checkFormat, checkModuleFile, type PackFormat, packModule } from '../wasm/pack.js';
import type { PasswordSource, SignatureWritten, Signer } from './cosign.js';
import {
  type ConnectOptions,
  formatTarget,
  openTarget,
  parseTarget,
  type TargetSpec,
  targetReference,
} from './target.js';

export type { PackFormat, SignResult };

export interface PushOptions extends ConnectOptions {
  /** The module's path, as the user typed it: it becomes the layer's title annotation. */
  file: string;
  /** How messages name the module (default: `file`); e.g. `standard input` for a spooled copy. */
  name?: string | undefined;
  /** Where to push: `host[:port]/repository[:tag]`, or a layout `oci:<dir>[:tag]`. */
  reference: string;
  /** Treat `reference` as an OCI image-layout directory (`<dir>[:tag]`) even without `oci:`. */
  ociLayout?: boolean | undefined;
  /** Override the title annotation ('' for none). */
  title?: string | undefined;
  /** The artifact layout: `{ kind: 'classic' }` (the original tool's, default) or `{ kind: 'cncf', … }`. */
  format?: PackFormat | undefined;
  /** Manifest annotations. */
  annotations?: Annotations | undefined;
  /** The manifest's `artifactType` (opt-in). */
  artifactType?: string | undefined;
  /** More tags to point at the pushed manifest. */
  tags?: readonly string[] | undefined;
  /** Remembers digests of large files so an unchanged re-push sends no blob bytes. */
  digestCache?: DigestCache | undefined;
  concurrency?: number | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((event: ProgressEvent) => void) | undefined;
  /**
   * Sign the module with Notary v1 (TUF): a target per tag, in the collection `<registry>/<repository>`
   * of the trust server. The trust data is checked and the keys made ready before anything is pushed.
   */
  sign?: TrustOptions | undefined;
  /**
   * Sign the pushed manifest with a cosign key right after the push: a Sigstore bundle attached as a
   * referrer (`legacyTag`: the cosign 1/2 `.sig` tag). The key is decrypted before anything is pushed.
   */
  signKey?: { privateKey: string; password: PasswordSource; legacyTag?: boolean | undefined } | undefined;
}

export interface PushResult {
  /** The reference pushed, with its tag: `localhost:5000/hello:v1`. */
  reference: string;
  /** True when the input had no tag and `latest` was used. */
  defaultedTag: boolean;
  /** Digest of the manifest. */
  digest: string;
  /** Media type of the manifest. */
  mediaType: string;
  /** Size of the wasm layer (the module). */
  size: number;
  manifest: Descriptor;
  /** The config blob's descriptor. */
  config: Descriptor;
  layer: Descriptor;
  kind: WasmKind;
  /** Every reference written (one per tag). */
  references: string[];
  /** Blob bytes actually sent to the registry (0 when it had everything). */
  uploadedBytes: number;
  /** What was signed, with `sign`. */
  signed?: SignResult | undefined;
  /** The cosign signature written, with `signKey`. */
  cosignSignature?: SignatureWritten | undefined;
}

/**
 * Pushes a wasm module: packs it (wasm/pack.ts) and copies the artifact to the target. Blobs the
 * registry already has are not sent; the manifest goes last, under its tag, so a failed push never
 * moves the tag. With `sign`, signing is made ready before anything is pushed.
 */
export async function push(options: PushOptions): Promise<PushResult> {
  const spec = parseTarget(options.reference, { layout: options.ociLayout });
  if (spec.digest !== undefined) {
    throw new WasmOciError('USAGE', `push needs a tag, not a digest: ${options.reference}`, {
      hint: 'the digest of what you push is computed from the content; name a tag instead',
    });
  }
  const format = checkFormat(options.format);
  const tag = targetReference(spec);
  const tags = [tag, ...(options.tags ?? [])];
  // Every tag is checked before anything is read or sent: a bad one must not leave the others moved.
  for (const extra of tags.slice(1)) {
    if (!isValidTag(extra)) {
      throw new WasmOciError('USAGE', `"${extra}" is not a valid tag`, {
        hint: 'a tag has up to 128 letters, digits, "_", "." and "-", and does not start with "." or "-"',
      });
    }
  }
  const { signal } = options;
  let uploadedBytes = 0;
  const onProgress = (event: ProgressEvent) => {
    if (event.type === 'done' && !isManifestMediaType(event.desc.mediaType)) uploadedBytes += event.desc.size;
    options.onProgress?.(event);
  };
  // A file that is no module fails before signing asks for passphrases or creates keys.
  if (options.sign) await checkModuleFile(options.file, options.name);
  const signer = options.sign ? await openSigner(spec, options, options.sign) : undefined;
  const keySigner = options.signKey ? await openKeySigner(options.signKey) : undefined;
  const { target, close } = openTarget(spec, 'push', options);
  try {
    const packed = await packModule({ ...options, format, destination: target, onProgress });
    await packed.store.tag(packed.root, tag);
    try {
      await copy(packed.store, tag, target, tag, {
        signal,
        onProgress,
        concurrency: options.concurrency,
        tags: tags.slice(1),
      });
    } catch (err) {
      // A cached digest that no longer matches the file: forget it so the next push re-reads the file.
      if (hasCode(err, 'DIGEST_MISMATCH') || hasCode(err, 'SIZE_MISMATCH')) await packed.forgetDigest();
      throw err;
    }
    const references = tags.map((t) => formatTarget(spec, t));
    const signed = await signer?.publish(options.file, packed.layer, tags, references);
    const cosignSignature = keySigner
      ? await signPushed(target, spec, packed.root, keySigner, options, references)
      : undefined;
    return {
      reference: formatTarget(spec),
      defaultedTag: spec.defaultedTag,
      digest: packed.root.digest,
      mediaType: packed.root.mediaType,
      size: packed.layer.size,
      manifest: packed.root,
      config: packed.config,
      layer: packed.layer,
      kind: packed.kind,
      uploadedBytes,
      references,
      ...(signed ? { signed } : {}),
      ...(cosignSignature ? { cosignSignature } : {}),
    };
  } finally {
    signer?.close();
    close();
  }
}

/** Signing needs a registry (signatures live on a trust server, keyed by registry and repository). */
async function openSigner(spec: TargetSpec, options: PushOptions, trust: TrustOptions): Promise<PushSigner> {
  if (spec.kind !== 'registry') {
    throw new WasmOciError(
      'USAGE',
      'signing (the `sign` option) needs a registry reference, not an OCI layout',
      {
        hint: 'signatures live on a trust server, keyed by registry and repository',
      },
    );
  }
  const { openPushSigner } = await import('../sign/index.js');
  return openPushSigner(spec.ref, trust, options);
}

/** The cosign signer of `signKey`, ready before anything is pushed (a wrong password fails first). */
async function openKeySigner(signKey: NonNullable<PushOptions['signKey']>): Promise<Signer> {
  const { openKeySigner } = await import('./cosign.js');
  return openKeySigner(signKey.privateKey, signKey.password);
}

/** Signs the pushed manifest; a failure says the tags now point to an unsigned manifest. */
async function signPushed(
  target: Target,
  spec: TargetSpec,
  manifest: Descriptor,
  signer: Signer,
  options: PushOptions,
  references: string[],
): Promise<SignatureWritten> {
  const { signManifest } = await import('./cosign.js');
  try {
    return await signManifest(target, spec, manifest, signer, {
      legacyTag: options.signKey?.legacyTag,
      signal: options.signal,
    });
  } catch (err) {
    const e = err instanceof WasmOciError ? err : new WasmOciError('REGISTRY', String(err), { cause: err });
    throw new WasmOciError(e.code, `pushed ${references.join(', ')} but signing failed: ${e.message}`, {
      cause: err,
      hint: 'the tag now points to an unsigned manifest; sign it with the sign command',
    });
  }
}
