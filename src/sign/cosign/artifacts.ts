import { type Descriptor, EMPTY_DESCRIPTOR, EMPTY_JSON } from '../../oci/descriptor.js';
import { digestOf, parseDigest } from '../../oci/digest.js';
import { goArray, goStruct } from '../../oci/gojson.js';
import { type ImageManifest, serializeManifest } from '../../oci/manifest.js';
import { MediaType } from '../../oci/mediatypes.js';
import { BUNDLE_MEDIA_TYPE, COSIGN_SIGN_PREDICATE } from './bundle.js';
import { SIMPLE_SIGNING_MEDIA_TYPE } from './simplesigning.js';

/**
 * The OCI objects cosign stores signatures in. cosign 3: a referrer manifest (OCI 1.1) whose `subject`
 * is the signed manifest, `artifactType` the bundle media type, the empty config, one layer (the bundle),
 * and the annotations `org.opencontainers.image.created`, `dev.sigstore.bundle.content` and
 * `dev.sigstore.bundle.predicateType`. cosign 1 and 2 (SIGNATURE_SPEC.md, tag-based discovery): an image
 * manifest under the tag `<alg>-<hex>.sig`, one simple-signing layer per signature with the base64
 * signature in the layer annotation `dev.cosignproject.cosign/signature`; a new signature is appended.
 */

export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const BUNDLE_CONTENT_ANNOTATION = 'dev.sigstore.bundle.content';
export const BUNDLE_PREDICATE_ANNOTATION = 'dev.sigstore.bundle.predicateType';
export const CREATED_ANNOTATION = 'org.opencontainers.image.created';

/** The tag of cosign 1/2 signatures of `digest`: `sha256-<hex>.sig`. */
export function signatureTag(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `${algorithm}-${hex}.sig`;
}

/** RFC 3339 in UTC to the second, as Go's `time.RFC3339` prints a UTC time. */
export function rfc3339(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

export interface BuiltManifest {
  manifest: ImageManifest;
  bytes: Uint8Array;
  descriptor: Descriptor;
  /** Blobs the manifest needs: media type and bytes. */
  blobs: Array<{ descriptor: Descriptor; bytes: Uint8Array }>;
}

function built(manifest: ImageManifest, blobs: BuiltManifest['blobs']): BuiltManifest {
  const bytes = serializeManifest(manifest);
  return {
    manifest,
    bytes,
    descriptor: {
      mediaType: MediaType.ociManifest,
      digest: digestOf(bytes),
      size: bytes.length,
      ...(manifest.artifactType ? { artifactType: manifest.artifactType } : {}),
      ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
    },
    blobs,
  };
}

/** The referrer manifest that attaches `bundle` to `subject`, as cosign 3 writes it. */
export function bundleReferrer(subject: Descriptor, bundle: Uint8Array, created: Date): BuiltManifest {
  const layer: Descriptor = { mediaType: BUNDLE_MEDIA_TYPE, digest: digestOf(bundle), size: bundle.length };
  return built(
    {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: BUNDLE_MEDIA_TYPE,
      config: EMPTY_DESCRIPTOR,
      layers: [layer],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      annotations: {
        [CREATED_ANNOTATION]: rfc3339(created),
        [BUNDLE_CONTENT_ANNOTATION]: 'dsse-envelope',
        [BUNDLE_PREDICATE_ANNOTATION]: COSIGN_SIGN_PREDICATE,
      },
    },
    [
      { descriptor: EMPTY_DESCRIPTOR, bytes: EMPTY_JSON },
      { descriptor: layer, bytes: bundle },
    ],
  );
}

/** The layer descriptor of one cosign 1/2 signature: the payload blob, the signature as annotation. */
export function signatureLayer(payload: Uint8Array, signature: Uint8Array): Descriptor {
  return {
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    digest: digestOf(payload),
    size: payload.length,
    annotations: { [SIGNATURE_ANNOTATION]: Buffer.from(signature).toString('base64') },
  };
}

/**
 * The config go-containerregistry computes for cosign's signature image: an empty image config with
 * one history entry and one diff ID (the layer's digest: the payload is not compressed) per layer.
 */
export function signatureConfig(layers: readonly Descriptor[]): Uint8Array {
  const zero = '0001-01-01T00:00:00Z';
  const json = goStruct([
    ['architecture', ''],
    ['created', zero],
    ['history', layers.length ? goArray(layers.map(() => goStruct([['created', zero]]))) : undefined],
    ['os', ''],
    [
      'rootfs',
      goStruct([
        ['type', 'layers'],
        ['diff_ids', goArray(layers.map((l) => l.digest))],
      ]),
    ],
    ['config', goStruct([])],
  ]);
  return Buffer.from(json.json, 'utf8');
}

/**
 * The `.sig` manifest with `layer` appended to the layers it had (`existing`, none for a first
 * signature), and the blobs it needs that are new: the payload and the recomputed config.
 */
export function signatureManifest(
  existing: readonly Descriptor[],
  layer: Descriptor,
  payload: Uint8Array,
): BuiltManifest {
  const layers = [...existing, layer];
  const config = signatureConfig(layers);
  const configDescriptor: Descriptor = {
    mediaType: MediaType.ociConfig,
    digest: digestOf(config),
    size: config.length,
  };
  return built({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDescriptor, layers }, [
    { descriptor: configDescriptor, bytes: config },
    { descriptor: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, bytes: payload },
  ]);
}
