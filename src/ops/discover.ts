import { listReferrers } from '../content/referrers.js';
import { WasmOciError } from '../errors.js';
import type { Annotations, Descriptor } from '../oci/descriptor.js';
import type { TargetOptions } from './repository.js';
import { formatTarget, openTarget, parseTarget, targetReference } from './target.js';

export interface DiscoverOptions extends TargetOptions {
  /** Only referrers of this artifact type at the first level (their own referrers are all shown). */
  artifactType?: string | undefined;
  /** Levels of referrers to follow (default 0: all). */
  depth?: number | undefined;
}

export interface ReferrerNode {
  descriptor: Descriptor;
  artifactType?: string | undefined;
  annotations?: Annotations | undefined;
  referrers: ReferrerNode[];
}

export interface DiscoverResult {
  /** The subject, by digest: `host/repo@sha256:…`. */
  reference: string;
  subject: Descriptor;
  /** How the first level was found: the registry's referrers API or the `sha256-<hex>` tag schema. */
  via: 'api' | 'tag-schema';
  referrers: ReferrerNode[];
}

/** At most this many referrers in one tree (a registry could list without end). */
const MAX_NODES = 10_000;

/**
 * The artifacts that refer to what `reference` names (signatures, SBOMs, attestations), and theirs in
 * turn, as a tree: through the referrers API where the registry has one, else the tag schema.
 */
export async function discover(options: DiscoverOptions): Promise<DiscoverResult> {
  const spec = parseTarget(options.reference, { layout: options.ociLayout });
  const { signal } = options;
  const { target, close } = openTarget(spec, 'pull', options);
  const maxDepth = options.depth && options.depth > 0 ? options.depth : Number.POSITIVE_INFINITY;
  let nodes = 0;
  const seen = new Set<string>();
  let via: DiscoverResult['via'] = 'tag-schema';
  /** The referrers of `subject` at `level` (1: the first), and theirs below, each digest once. */
  const walk = async (subject: Descriptor, level: number, artifactType?: string): Promise<ReferrerNode[]> => {
    seen.add(subject.digest);
    if (level > maxDepth) return [];
    const listed = await listReferrers(target, subject, { artifactType, signal });
    if (level === 1) via = listed.via;
    const out: ReferrerNode[] = [];
    for (const descriptor of listed.referrers) {
      if (seen.has(descriptor.digest)) continue;
      if (++nodes > MAX_NODES) {
        throw new WasmOciError('TOO_LARGE', `more than ${MAX_NODES} referrers; stopped`, {
          hint: 'narrow it with an artifact type or a depth',
        });
      }
      out.push({
        descriptor,
        ...(descriptor.artifactType ? { artifactType: descriptor.artifactType } : {}),
        ...(descriptor.annotations ? { annotations: descriptor.annotations } : {}),
        referrers: await walk(descriptor, level + 1),
      });
    }
    return out;
  };
  try {
    const subject = await target.resolve(targetReference(spec), { signal });
    const referrers = await walk(subject, 1, options.artifactType);
    return {
      reference: formatTarget({ ...spec, tag: undefined, digest: subject.digest }),
      subject,
      via,
      referrers,
    };
  } finally {
    close();
  }
}
