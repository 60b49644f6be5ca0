import type { TagListOptions } from '../content/types.js';

export type { TagListOptions };

import { WasmOciError } from '../errors.js';
import { isValidTag } from '../reference.js';
import { discard } from '../transport/body.js';
import { type HttpResponse, header } from '../transport/types.js';
import { api } from './api.js';
import type { RegistryClient } from './client.js';

/** Tag listing (distribution-spec "Listing Tags"): pages, their `Link` headers and their bounds. */

const TAG_PAGE_BYTES = 4 * 1024 * 1024;

/** The `next` target of a `Link` header (RFC 8288), if any. */
export function nextLink(value: string | undefined): string | undefined {
  if (!value) return undefined;
  // Linear in the header's length: a target stops at the next `<` (a URI holds none), and a quoted rel
  // is taken whole before its words are looked at (backtracking over `next next ...` was quadratic).
  for (const match of value.matchAll(/<([^<>]*)>((?:\s*;\s*[^;,]*)*)/g)) {
    const params = match[2] ?? '';
    for (const rel of params.matchAll(/;\s*rel\s*=\s*(?:"([^"]*)"|next\b)/gi)) {
      if (rel[1] === undefined || /\bnext\b/i.test(rel[1])) return match[1];
    }
  }
  return undefined;
}

/** The tags of one tag-list page (`{"name": ..., "tags": [...]}`); strings outside the tag grammar are dropped. */
export function parseTagPage(bytes: Buffer, where: string): string[] {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new WasmOciError('REGISTRY', `${where} sent a tag list that is not JSON`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new WasmOciError('REGISTRY', `${where} sent a malformed tag list`);
  }
  const tags = (json as { tags?: unknown }).tags;
  if (tags === undefined || tags === null) return [];
  if (!Array.isArray(tags)) throw new WasmOciError('REGISTRY', `${where} sent a malformed tag list`);
  return tags.filter((t): t is string => typeof t === 'string' && isValidTag(t));
}

/**
 * The next page of a paged listing (tags, referrers): the `Link: <...>; rel="next"` target, resolved
 * against the page's URL; on the registry's own origin only, and never a page already read.
 */
export function nextPage(
  res: Pick<HttpResponse, 'headers'>,
  url: URL,
  client: Pick<RegistryClient, 'baseUrl'>,
  seen: ReadonlySet<string>,
  where: string,
): URL | undefined {
  const next = nextLink(header(res, 'link'));
  if (next === undefined) return undefined;
  let target: URL;
  try {
    target = new URL(next, url);
  } catch {
    throw new WasmOciError('REGISTRY', `${where} sent a malformed Link header`);
  }
  if (target.origin !== client.baseUrl.origin) {
    throw new WasmOciError('REGISTRY', `${where} paginates to another origin (${target.origin}); refused`);
  }
  if (seen.has(target.href)) throw new WasmOciError('REGISTRY', `${where} paginates in a loop; stopped`);
  return target;
}

/** The repository a listing reads: its client, name, token scopes, and how messages name it. */
export interface TagSource {
  client: RegistryClient;
  name: string;
  scopes: string[];
  where: string;
}

/**
 * The tags, page by page, following `Link: <...>; rel="next"` (same origin only), bounded in pages and
 * bytes; a page that links back to one already read ends the listing with an error.
 */
export async function* tagPages(repo: TagSource, options: TagListOptions = {}): AsyncGenerator<string[]> {
  const maxPages = options.maxPages ?? 10_000;
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  let url: URL | undefined = repo.client.url(api.tags(repo.name));
  url.searchParams.set('n', String(options.pageSize ?? 1000));
  const seen = new Set<string>();
  let bytesRead = 0;
  for (let pages = 0; url; pages++) {
    if (pages >= maxPages || bytesRead >= maxBytes) {
      throw new WasmOciError(
        'TOO_LARGE',
        `${repo.where} lists more than ${pages >= maxPages ? `${maxPages} pages` : `${maxBytes} bytes`} of tags; stopped`,
        { hint: 'the registry may paginate without end' },
      );
    }
    seen.add(url.href);
    const { res, bytes } = await repo.client.read(
      { method: 'GET', url, scopes: repo.scopes, signal: options.signal },
      { cap: Math.min(TAG_PAGE_BYTES, maxBytes - bytesRead), what: 'tag list page', ok: [200] },
    );
    if (res.status === 404) {
      await discard(res.body);
      throw new WasmOciError('NOT_FOUND', `${repo.where}: no such repository`, { status: 404 });
    }
    if (res.status !== 200) throw await repo.client.responseError(res, `list tags of ${repo.where}`);
    bytesRead += bytes.length;
    yield parseTagPage(bytes, repo.where);
    const next = nextPage(res, url, repo.client, seen, repo.where);
    if (next === undefined) return;
    url = next;
  }
}
