import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small OCI 1.1 referrers API in front of the real registry (Distribution 2.8 has none), on
 * 127.0.0.1 and a free port. It forwards everything to the registry (the Host header included, so the
 * registry's Locations point back through it) and keeps what it saw pushed:
 *
 * - a manifest `PUT` the registry accepted whose body has a `subject` is remembered under its
 *   repository and subject (media type, digest from `Docker-Content-Digest`, size, `artifactType`,
 *   else the config's media type, annotations), and the answer gets `OCI-Subject: <subject digest>`;
 *   a manifest `DELETE` the registry accepted forgets it;
 * - `GET /v2/<name>/referrers/<digest>[?artifactType=]` is answered here: an image index of those
 *   referrers, filtered (with `OCI-Filters-Applied: artifactType`), `pageSize` a page, linked with
 *   `Link: <…?page=n>; rel="next"`.
 *
 * Quirks of real registries:
 * - `harbor`: a subject nothing refers to gets `{}` (content type `application/json`), not an index;
 * - `gitlab`: no referrers API (404) and no `OCI-Subject`; a `GET`/`HEAD` of the manifest
 *   `sha256-<hex>`, while no such tag exists, answers the manifest of the digest `sha256:<hex>` (GitLab
 *   resolves those tags to the subject).
 */

export type ReferrersMode = 'conformant' | 'harbor' | 'gitlab';

export interface ReferrersApi {
  /** `127.0.0.1:<port>` */
  host: string;
  /** Request targets of the referrers endpoint, as received. */
  listings: string[];
  /** Manifest PUTs answered with `OCI-Subject`. */
  acknowledged: number;
  stop(): Promise<void>;
}

interface Entry {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

const MANIFEST = /^\/v2\/(.+)\/manifests\/([^/]+)$/;
const REFERRERS = /^\/v2\/(.+)\/referrers\/(sha256:[0-9a-f]{64})$/;
const INDEX = 'application/vnd.oci.image.index.v1+json';

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The entry a referrers listing holds for a manifest body, or nothing when it has no subject. */
function entryOf(
  body: Buffer,
  contentType: string | undefined,
  digest: string,
): { subject: string; entry: Entry } | undefined {
  let json: {
    mediaType?: unknown;
    artifactType?: unknown;
    config?: { mediaType?: unknown };
    subject?: { digest?: unknown };
    annotations?: unknown;
  };
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const subject = json?.subject?.digest;
  if (typeof subject !== 'string') return undefined;
  const artifactType =
    typeof json.artifactType === 'string'
      ? json.artifactType
      : typeof json.config?.mediaType === 'string'
        ? json.config.mediaType
        : undefined;
  const mediaType = typeof json.mediaType === 'string' ? json.mediaType : (contentType ?? '');
  const annotations =
    typeof json.annotations === 'object' && json.annotations !== null
      ? (json.annotations as Record<string, string>)
      : undefined;
  return {
    subject,
    entry: {
      mediaType,
      digest,
      size: body.length,
      ...(artifactType ? { artifactType } : {}),
      ...(annotations ? { annotations } : {}),
    },
  };
}

export async function startReferrersApi(
  upstream: string,
  options: { mode?: ReferrersMode; pageSize?: number } = {},
): Promise<ReferrersApi> {
  const mode = options.mode ?? 'conformant';
  const pageSize = options.pageSize ?? 2;
  const colon = upstream.lastIndexOf(':');
  const upHost = upstream.slice(0, colon);
  const upPort = Number(upstream.slice(colon + 1));
  const agent = new http.Agent({ keepAlive: true });
  /** `<name>@<subject digest>` -> referrer digest -> entry, in push order. */
  const referrers = new Map<string, Map<string, Entry>>();
  const listings: string[] = [];
  const state = { acknowledged: 0 };

  /** One request to the registry (the body given, else the request piped), its answer read whole. */
  const call = (
    req: http.IncomingMessage,
    path: string,
    body: Buffer | undefined,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const up = http.request(
        { host: upHost, port: upPort, method: req.method, path, headers: req.headers, agent },
        (upRes) => {
          const chunks: Buffer[] = [];
          upRes.on('data', (c: Buffer) => chunks.push(c));
          upRes.on('end', () =>
            resolve({ status: upRes.statusCode ?? 502, headers: upRes.headers, body: Buffer.concat(chunks) }),
          );
          upRes.on('error', reject);
        },
      );
      up.on('error', reject);
      if (body) up.end(body);
      else req.pipe(up);
    });

  const answer = (
    res: http.ServerResponse,
    status: number,
    headers: http.IncomingHttpHeaders | http.OutgoingHttpHeaders,
    body: Buffer | string,
  ) => {
    const out: http.OutgoingHttpHeaders = { ...headers };
    delete out['transfer-encoding'];
    out['content-length'] = Buffer.byteLength(body);
    res.writeHead(status, out);
    res.end(body);
  };

  const list = (res: http.ServerResponse, url: URL, name: string, subject: string) => {
    listings.push(url.pathname + url.search);
    if (mode === 'gitlab') {
      answer(
        res,
        404,
        { 'content-type': 'application/json' },
        '{"errors":[{"code":"NAME_UNKNOWN","message":"not found"}]}',
      );
      return;
    }
    const type = url.searchParams.get('artifactType');
    const all = [...(referrers.get(`${name}@${subject}`)?.values() ?? [])].filter(
      (e) => !type || e.artifactType === type,
    );
    const headers: http.OutgoingHttpHeaders = { 'content-type': INDEX };
    if (type) headers['oci-filters-applied'] = 'artifactType';
    if (mode === 'harbor' && all.length === 0) {
      answer(res, 200, { 'content-type': 'application/json' }, '{}');
      return;
    }
    const page = Math.max(0, Number(url.searchParams.get('page') ?? 0) || 0);
    if ((page + 1) * pageSize < all.length) {
      const next = new URLSearchParams(url.searchParams);
      next.set('page', String(page + 1));
      headers.link = `<${url.pathname}?${next}>; rel="next"`;
    }
    const manifests = all.slice(page * pageSize, (page + 1) * pageSize);
    answer(res, 200, headers, JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests }));
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const target = req.url ?? '/';
    const url = new URL(target, 'http://proxy');
    const referrersPath = REFERRERS.exec(url.pathname);
    if (referrersPath && req.method === 'GET') {
      req.resume();
      list(res, url, referrersPath[1] as string, referrersPath[2] as string);
      return;
    }
    const manifest = MANIFEST.exec(url.pathname);
    const name = manifest?.[1] as string;
    const reference = manifest?.[2] as string;
    if (manifest && req.method === 'PUT') {
      const body = await readBody(req);
      const up = await call(req, target, body);
      const headers = { ...up.headers } as http.OutgoingHttpHeaders;
      const digest = up.headers['docker-content-digest'];
      const found =
        up.status === 201 && typeof digest === 'string'
          ? entryOf(body, req.headers['content-type'], digest)
          : undefined;
      if (found && mode !== 'gitlab') {
        const key = `${name}@${found.subject}`;
        const known = referrers.get(key) ?? new Map<string, Entry>();
        known.set(found.entry.digest, found.entry);
        referrers.set(key, known);
        headers['oci-subject'] = found.subject;
        state.acknowledged++;
      }
      answer(res, up.status, headers, up.body);
      return;
    }
    if (manifest && req.method === 'DELETE') {
      const up = await call(req, target, Buffer.alloc(0));
      if (up.status === 202) for (const known of referrers.values()) known.delete(reference);
      answer(res, up.status, up.headers, up.body);
      return;
    }
    if (manifest && mode === 'gitlab' && /^sha256-[0-9a-f]{64}$/.test(reference)) {
      const up = await call(req, target, Buffer.alloc(0));
      if (up.status !== 404) {
        answer(res, up.status, up.headers, up.body);
        return;
      }
      // No such tag: GitLab answers the manifest of the digest the tag spells.
      const bySubject = await call(
        req,
        target.replace(/\/manifests\/sha256-/, '/manifests/sha256:'),
        Buffer.alloc(0),
      );
      if (req.method === 'HEAD') {
        res.writeHead(bySubject.status, bySubject.headers);
        res.end();
      } else answer(res, bySubject.status, bySubject.headers, bySubject.body);
      return;
    }
    const up = await call(req, target, undefined);
    if (req.method === 'HEAD') {
      res.writeHead(up.status, up.headers);
      res.end();
    } else answer(res, up.status, up.headers, up.body);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    listings,
    get acknowledged() {
      return state.acknowledged;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          agent.destroy();
          resolve();
        });
      }),
  };
}
