import { WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { digestOf, isDigest, parseDigest } from '../oci/digest.js';
import { baseMediaType, isManifestMediaType, MediaType } from '../oci/mediatypes.js';
import { type HttpResponse, header } from '../transport/types.js';

/** How a reference follows the repository in messages: `@` before a digest, `:` before a tag. */
export function at(reference: string): string {
  return `${isDigest(reference) ? '@' : ':'}${reference}`;
}

/**
 * The descriptor of a manifest a registry answered with: its bytes hashed and checked against the
 * digest asked for, or against `Docker-Content-Digest`; the media type from `Content-Type`, else from
 * the body (some registries serve a generic type). `where` names the repository in messages.
 */
export function manifestDescriptor(
  res: HttpResponse,
  bytes: Buffer,
  reference: string,
  where: string,
): Descriptor {
  const claimed = header(res, 'docker-content-digest');
  const expected = isDigest(reference) ? reference : claimed && isDigest(claimed) ? claimed : undefined;
  const algorithm = expected ? parseDigest(expected).algorithm : 'sha256';
  const digest = digestOf(bytes, algorithm);
  if (expected && digest !== expected) {
    throw new WasmOciError(
      'DIGEST_MISMATCH',
      `manifest ${where}${at(reference)} hashes to ${digest}, not ${expected}`,
      { hint: 'the registry served corrupt or substituted content; nothing was used' },
    );
  }
  let mediaType = baseMediaType(header(res, 'content-type') ?? '');
  if (!isManifestMediaType(mediaType)) {
    // Some registries serve a generic type; the body's own mediaType, or its shape, says what it is.
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new WasmOciError('INVALID_MANIFEST', `manifest ${where}${at(reference)} is not JSON`);
    }
    const body = (typeof json === 'object' && json !== null ? json : {}) as {
      mediaType?: unknown;
      manifests?: unknown;
    };
    if (typeof body.mediaType === 'string' && isManifestMediaType(body.mediaType)) mediaType = body.mediaType;
    else mediaType = Array.isArray(body.manifests) ? MediaType.ociIndex : MediaType.ociManifest;
  }
  return { mediaType, digest, size: bytes.length };
}
