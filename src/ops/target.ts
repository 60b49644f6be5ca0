import type { CredentialSource } from '../auth/authorizer.js';
import { OciLayoutStore } from '../content/layout.js';
import type { Ingester, ReferencePusher, Target } from '../content/types.js';
import { WasmOciError } from '../errors.js';
import { DEFAULT_TAG, isValidTag, parseReference, type Reference } from '../reference.js';
import { RegistryClient, type RegistryOptions } from '../registry/client.js';

export { checkExtraHeaders, type RegistryMemory, registryMemory } from '../registry/client.js';

import { RemoteRepository } from '../registry/repository.js';

/** How to reach a registry: shared by every command that talks to one. */
export interface ConnectOptions extends Omit<RegistryOptions, 'credentials'> {
  /** Where credentials come from; anonymous (and anonymous bearer tokens) when absent. */
  credentials?: CredentialSource | undefined;
}

/**
 * Where an artifact lives: a registry repository (`host[:port]/repo[:tag][@digest]`) or an OCI image
 * layout directory, written `oci:<dir>[:tag][@digest]` (as skopeo does) or given with `--oci-layout`
 * (as oras does).
 */
export type TargetSpec =
  | {
      kind: 'registry';
      ref: Reference;
      tag?: string | undefined;
      digest?: string | undefined;
      defaultedTag: boolean;
    }
  | {
      kind: 'layout';
      path: string;
      tag?: string | undefined;
      digest?: string | undefined;
      defaultedTag: boolean;
    };

export const LAYOUT_PREFIX = 'oci:';

/** Parses a target: `oci:` marks a layout; `layout: true` (`--oci-layout`) makes every input one. */
export function parseTarget(input: string, options: { layout?: boolean | undefined } = {}): TargetSpec {
  if (!options.layout && !input.startsWith(LAYOUT_PREFIX)) {
    const ref = parseReference(input);
    return { kind: 'registry', ref, tag: ref.tag, digest: ref.digest, defaultedTag: ref.defaultedTag };
  }
  let rest = input.startsWith(LAYOUT_PREFIX) ? input.slice(LAYOUT_PREFIX.length) : input;
  let digest: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at > 0 && /^[a-z0-9]+:[0-9a-f]+$/.test(rest.slice(at + 1))) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > 0 && !rest.slice(colon + 1).includes('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) {
      throw new WasmOciError('INVALID_REFERENCE', `invalid tag "${tag}" in "${input}"`, {
        hint: 'a layout reference looks like oci:<dir>[:tag][@sha256:<digest>]',
      });
    }
  }
  if (rest === '') {
    throw new WasmOciError('INVALID_REFERENCE', `"${input}" names no directory`, {
      hint: 'a layout reference looks like oci:<dir>[:tag][@sha256:<digest>]',
    });
  }
  const defaultedTag = tag === undefined && digest === undefined;
  return { kind: 'layout', path: rest, tag: defaultedTag ? DEFAULT_TAG : tag, digest, defaultedTag };
}

/** How a target prints: `host/repo:tag`, `oci:dir:tag`. */
export function formatTarget(spec: TargetSpec, tag = spec.tag): string {
  const base =
    spec.kind === 'registry' ? `${spec.ref.registry}/${spec.ref.repository}` : `${LAYOUT_PREFIX}${spec.path}`;
  return `${base}${tag !== undefined ? `:${tag}` : ''}${spec.digest !== undefined ? `@${spec.digest}` : ''}`;
}

/** What a target's manifest is resolved by: the digest when there is one, else the tag. */
export function targetReference(spec: TargetSpec): string {
  return spec.digest ?? spec.tag ?? DEFAULT_TAG;
}

export interface OpenTarget {
  target: Target & ReferencePusher & Ingester;
  /** Releases connections (a no-op for layouts). */
  close(): void;
}

/** Opens a target for reading or for pushing. */
export function openTarget(
  spec: TargetSpec,
  access: 'pull' | 'push',
  options: ConnectOptions = {},
): OpenTarget {
  if (spec.kind === 'layout') {
    return { target: new OciLayoutStore(spec.path, { existing: access === 'pull' }), close: () => {} };
  }
  const repo = openRepository(spec.ref, access, options);
  return { target: repo, close: () => repo.client.close() };
}

/** Opens the repository a reference names, for reading or for pushing. The caller closes its client. */
export function openRepository(
  ref: Reference,
  access: 'pull' | 'push',
  options: ConnectOptions = {},
): RemoteRepository {
  const client = new RegistryClient(ref.registry, options);
  return new RemoteRepository(client, ref.repository, { access });
}
