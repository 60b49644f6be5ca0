import { repositoryScope } from '../auth/scope.js';
import type { ReferrersQuery } from '../content/types.js';
import { WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { parseManifest } from '../oci/manifest.js';
import { baseMediaType, MediaType } from '../oci/mediatypes.js';
import { discard } from '../transport/body.js';
import { header } from '../transport/types.js';
import { api } from './api.js';
import type { RegistryClient } from './client.js';
import { nextPage } from './tags.js';

/**
 * The OCI 1.1 referrers API (distribution-spec "Listing Referrers"): `GET /v2/<name>/referrers/<digest>`
 * answers an image index of the manifests whose `subject` is that digest, optionally filtered by
 * `?artifactType=` (a registry that applied the filter says so in `OCI-Filters-Applied`; otherwise the
 * list is filtered here), paged with `Link: <…>; rel="next"` on the same origin. A registry without
 * the API answers 404 (Distribution 2.8), 400 or 406, or a 200 that is no image index; then the answer
 * is `undefined` and the caller falls back to the tag schema. Harbor's `{}` for none is an empty list.
 */

/** Bytes of one referrers page, and pages in all. */
const PAGE_BYTES = 4 * 1024 * 1024;
const MAX_PAGES = 1000;

export async function referrersFromApi(
  client: RegistryClient,
  name: string,
  subject: Descriptor,
  query: ReferrersQuery = {},
): Promise<Descriptor[] | undefined> {
  const where = `${client.registry}/${name}`;
  let url: URL | undefined = client.url(api.referrers(name, subject.digest));
  if (query.artifactType) url.searchParams.set('artifactType', query.artifactType);
  const out: Descriptor[] = [];
  const seen = new Set<string>();
  let filtered = true;
  for (let pages = 0; url; pages++) {
    if (pages >= MAX_PAGES) {
      throw new WasmOciError(
        'TOO_LARGE',
        `${where} lists more than ${MAX_PAGES} pages of referrers; stopped`,
      );
    }
    seen.add(url.href);
    const { res, bytes } = await client.read(
      {
        method: 'GET',
        url,
        headers: { accept: MediaType.ociIndex },
        scopes: [repositoryScope(name, ['pull'])],
        signal: query.signal,
      },
      { cap: PAGE_BYTES, what: 'referrers page', ok: [200] },
    );
    if (res.status === 404 || res.status === 400 || res.status === 406) {
      await discard(res.body);
      if (pages === 0) return undefined;
      throw await client.responseError(res, `list referrers of ${where}@${subject.digest}`);
    }
    if (res.status !== 200)
      throw await client.responseError(res, `list referrers of ${where}@${subject.digest}`);
    const type = baseMediaType(header(res, 'content-type') ?? '');
    // Harbor answers `{}` for a subject nothing refers to: the API is there and lists none.
    if (pages === 0 && /^\s*\{\s*\}\s*$/.test(bytes.toString('utf8'))) return [];
    let page: Descriptor[];
    try {
      const parsed = parseManifest(bytes, type === MediaType.ociIndex ? type : undefined);
      if (parsed.kind !== 'index') {
        if (pages === 0) return undefined;
        throw new WasmOciError('REGISTRY', `${where} sent a referrers page that is not an image index`);
      }
      page = parsed.index.manifests;
    } catch (err) {
      // A 200 that is not an index at all (an HTML page, a proxy's answer): the API is not there.
      if (pages === 0 && err instanceof WasmOciError && err.code === 'INVALID_MANIFEST') return undefined;
      throw err;
    }
    if (!/\bartifactType\b/.test(header(res, 'oci-filters-applied') ?? '')) filtered = false;
    out.push(...page);
    url = nextPage(res, url, client, seen, where);
  }
  return query.artifactType && !filtered ? out.filter((d) => d.artifactType === query.artifactType) : out;
}
