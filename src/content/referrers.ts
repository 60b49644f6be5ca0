import { hasCode } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { referrersTag } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, parseManifest } from '../oci/manifest.js';
import { canListReferrers, type ReadOnlyTarget, type ReferrersQuery } from './types.js';
import { readVerified } from './verify.js';

/**
 * The referrers of a subject (the manifests whose `subject` is its digest), whichever way the target
 * offers them: the referrers API where it has one (a registry that implements OCI 1.1), else the tag
 * schema, an image index under the tag `<alg>-<hex>`. A tag that resolves to the subject itself is no
 * referrers index (GitLab resolves `sha256-<hex>` tags to the manifest of that digest), nor is a
 * manifest that is not an index.
 */
export async function listReferrers(
  target: ReadOnlyTarget,
  subject: Descriptor,
  query: ReferrersQuery = {},
): Promise<{ referrers: Descriptor[]; via: 'api' | 'tag-schema' }> {
  if (canListReferrers(target)) {
    const listed = await target.referrers(subject, query);
    if (listed) return { referrers: listed, via: 'api' };
  }
  const referrers = await referrersFromTagSchema(target, subject, query);
  return { referrers, via: 'tag-schema' };
}

/** The referrers the tag schema lists (none when the tag is missing or names no index). */
export async function referrersFromTagSchema(
  target: ReadOnlyTarget,
  subject: Descriptor,
  query: ReferrersQuery = {},
): Promise<Descriptor[]> {
  let index: Descriptor;
  try {
    index = await target.resolve(referrersTag(subject.digest), { signal: query.signal });
  } catch (err) {
    if (hasCode(err, 'NOT_FOUND')) return [];
    throw err;
  }
  if (index.digest === subject.digest) return [];
  const bytes = await readVerified(
    await target.fetch(index, { signal: query.signal }),
    index,
    MAX_MANIFEST_BYTES,
  );
  const parsed = parseManifest(bytes, index.mediaType);
  if (parsed.kind !== 'index') return [];
  const { manifests } = parsed.index;
  return query.artifactType ? manifests.filter((d) => d.artifactType === query.artifactType) : manifests;
}
