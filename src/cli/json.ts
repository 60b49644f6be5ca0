import type { Descriptor } from '../oci/descriptor.js';

/**
 * The one JSON output contract (README, "JSON output"): every command's `--json` object names the same
 * thing the same way. A descriptor is always `{mediaType, digest, size}` (plus `artifactType`,
 * `annotations` and `platform` when it carries them) under the name of what it describes: `manifest`,
 * `config`, `layer` or `layers`, `blob`, `subject`. Bytes moved are `bytesSent` and `bytesReceived`;
 * the references a command wrote are `references`.
 */
export interface JsonDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: Descriptor['platform'];
}

/** A descriptor in the contract's shape: the standard fields in a fixed order, nothing internal. */
export function descriptorJson(desc: Descriptor): JsonDescriptor {
  return {
    mediaType: desc.mediaType,
    digest: desc.digest,
    size: desc.size,
    ...(desc.artifactType !== undefined ? { artifactType: desc.artifactType } : {}),
    ...(desc.annotations !== undefined ? { annotations: desc.annotations } : {}),
    ...(desc.platform !== undefined ? { platform: desc.platform } : {}),
  };
}

/** An error with `--json`: one object on stderr, `{"error": {"code", "message", "hint"}}`. */
export function errorJson(code: string, message: string, hint: string | undefined): object {
  return { error: { code, message, ...(hint !== undefined ? { hint } : {}) } };
}
