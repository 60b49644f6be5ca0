import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP-level proxy (node:http) in front of the real registry imitating one deviation of a real
 * registry at a time, on 127.0.0.1 and a free port. Everything it does not change is forwarded to the
 * registry untouched, the Host header included, so the registry's Locations point back through it.
 *
 * - `patch-cap`: a PATCH to an upload whose body is larger than `maxBytes` (by Content-Length, or by
 *   the bytes received when chunked) gets 416 with a distribution-spec error body, the upload's
 *   Location and its current Range (asked of the registry); smaller PATCHes are forwarded. (GHCR has
 *   been reported to refuse chunks above a few MiB.)
 * - `no-patch`: every PATCH is refused with `status` (default 405) and an error body.
 * - `stuck-range`: PATCHes are forwarded but the Range of their 202 answer is rewritten to `0-0`
 *   (imitates ECR's Range that stops advancing).
 * - `rate-limit`: the first `after` requests (default 0) are forwarded, then every request gets 429
 *   with Docker Hub's rate-limit headers and a TOOMANYREQUESTS body.
 * - `warning`: every answer gets `Warning: 299 - "<text>"` headers, one per text.
 * - `foreign-location`: the Location of upload answers (POST and PATCH 202) is rewritten to a second
 *   listener ("another host", `foreignHost`) that forwards to the registry and records the headers it
 *   received (`foreignRequests`), so a test can show no credentials went there.
 * - `silent`: requests whose target matches `paths` (default: all) are read and never answered; the
 *   socket stays open until `stop()`.
 * - `slowloris`: for requests matching `paths` (default: all) the answer's head goes at once, then
 *   the body one byte every `everyMs`.
 * - `endless-tags`: `GET /v2/<name>/tags/list` is answered by the proxy with a page of made-up valid
 *   tags (`pageSize`, default 10, or fewer if `n` asks so) and a `Link: <...?n=..&last=...>;
 *   rel="next"` header whose target is always new.
 * - `post-digest`: a `POST /v2/<name>/blobs/uploads/?digest=` carrying the blob (a single-request
 *   upload) is either refused with `status`, or, with `ignore`, forwarded as a plain POST without the
 *   digest and the body (the registry opens a session and answers 202, as registries that do not take
 *   the single-request form do, Distribution 2.8 among them); with `complete`, the proxy finishes it
 *   itself as registries that take the form do (Distribution 3, zot): POST and PUT to the registry
 *   behind, then 201 with the blob's Location.
 * - `mutate`: `fn(req, res)` returns true when it answered itself; otherwise the request is forwarded.
 */

export type Quirk =
  | { type: 'patch-cap'; maxBytes: number }
  | { type: 'no-patch'; status?: number }
  | { type: 'stuck-range' }
  | { type: 'rate-limit'; after?: number }
  | { type: 'warning'; texts: string[] }
  | { type: 'foreign-location' }
  | { type: 'silent'; paths?: RegExp }
  | { type: 'slowloris'; paths?: RegExp; everyMs: number }
  | { type: 'endless-tags'; pageSize?: number }
  | { type: 'post-digest'; status?: number; ignore?: boolean; complete?: boolean }
  | { type: 'mutate'; fn: (req: http.IncomingMessage, res: http.ServerResponse) => boolean };

export interface SeenRequest {
  method: string;
  /** The request target: path and query. */
  path: string;
  headers: http.IncomingHttpHeaders;
}

export interface QuirkProxy {
  /** `127.0.0.1:<port>` */
  host: string;
  /** Every request the proxy received (not those of the foreign host). */
  seen: SeenRequest[];
  /** `foreign-location` only: the second listener, `127.0.0.1:<port>` (else ''). */
  foreignHost: string;
  /** `foreign-location` only: headers of every request the foreign host received. */
  foreignRequests: http.IncomingHttpHeaders[];
  stop(): Promise<void>;
}

const UPLOAD_PATH = /^\/v2\/.+\/blobs\/uploads\/[^/]*$/;
const TAGS_PATH = /^\/v2\/(.+)\/tags\/list$/;

/** Docker Hub's answer to a pull over the limit. */
export const RATE_LIMIT_BODY =
  '{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}';

function errorBody(code: string, message: string): string {
  return JSON.stringify({ errors: [{ code, message, detail: null }] });
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

type HeadRewrite = (status: number, headers: http.OutgoingHttpHeaders) => void;

interface ForwardOptions {
  rewrite?: HeadRewrite;
  /** Send the body one byte every this many ms. */
  slowMs?: number;
  /** Request body already read (instead of piping `req`). */
  body?: Buffer;
}

export async function startQuirkProxy(upstream: string, quirk: Quirk): Promise<QuirkProxy> {
  const colon = upstream.lastIndexOf(':');
  const upHost = upstream.slice(0, colon);
  const upPort = Number(upstream.slice(colon + 1));
  const seen: SeenRequest[] = [];
  const foreignRequests: http.IncomingHttpHeaders[] = [];
  const agent = new http.Agent({ keepAlive: true });
  const timers = new Set<NodeJS.Timeout>();
  const inflight = new Set<http.ClientRequest>();
  let stopped = false;
  let answered = 0;

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, options: ForwardOptions = {}) => {
    const up = http.request(
      { host: upHost, port: upPort, method: req.method, path: req.url, headers: req.headers, agent },
      (upRes) => {
        const headers: http.OutgoingHttpHeaders = { ...upRes.headers };
        const status = upRes.statusCode ?? 502;
        options.rewrite?.(status, headers);
        if (options.slowMs === undefined) {
          res.writeHead(status, headers);
          upRes.pipe(res);
          return;
        }
        const every = options.slowMs;
        res.writeHead(status, headers);
        res.flushHeaders();
        const chunks: Buffer[] = [];
        let ended = false;
        let ticking = false;
        const tick = () => {
          ticking = false;
          if (stopped || res.destroyed) return;
          const chunk = chunks[0];
          if (!chunk) {
            if (ended) res.end();
            return;
          }
          res.write(chunk.subarray(0, 1));
          if (chunk.length > 1) chunks[0] = chunk.subarray(1);
          else chunks.shift();
          schedule();
        };
        const schedule = () => {
          if (ticking) return;
          ticking = true;
          const timer = setTimeout(() => {
            timers.delete(timer);
            tick();
          }, every);
          timers.add(timer);
        };
        upRes.on('data', (c: Buffer) => {
          chunks.push(c);
          schedule();
        });
        upRes.on('end', () => {
          ended = true;
          schedule();
        });
      },
    );
    inflight.add(up);
    up.on('close', () => inflight.delete(up));
    up.on('error', () => res.destroy());
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    if (options.body) up.end(options.body);
    else req.pipe(up);
  };

  const refuse = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    status: number,
    body: string,
    headers: http.OutgoingHttpHeaders = {},
  ) => {
    req.resume();
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'docker-distribution-api-version': 'registry/2.0',
      ...headers,
    });
    res.end(body);
  };

  /** The upload's Location and Range as the registry has them now (GET on the upload URL). */
  const uploadStatus = (req: http.IncomingMessage): Promise<http.OutgoingHttpHeaders> =>
    new Promise((resolve) => {
      const headers: http.OutgoingHttpHeaders = {};
      for (const name of ['authorization', 'host']) {
        const value = req.headers[name];
        if (value !== undefined) headers[name] = value;
      }
      const up = http.request(
        { host: upHost, port: upPort, method: 'GET', path: req.url, headers, agent },
        (upRes) => {
          upRes.resume();
          const out: http.OutgoingHttpHeaders = {};
          for (const name of ['location', 'range', 'docker-upload-uuid']) {
            const value = upRes.headers[name];
            if (value !== undefined) out[name] = value;
          }
          resolve(out);
        },
      );
      inflight.add(up);
      up.on('close', () => inflight.delete(up));
      up.on('error', () => resolve({}));
      up.end();
    });

  const patchCap = (req: http.IncomingMessage, res: http.ServerResponse, maxBytes: number) => {
    const tooBig = async () => {
      const status = await uploadStatus(req);
      refuse(
        req,
        res,
        416,
        errorBody('BLOB_UPLOAD_INVALID', `chunk larger than ${maxBytes} bytes not accepted`),
        status,
      );
    };
    const length = req.headers['content-length'];
    if (length !== undefined) {
      if (Number(length) > maxBytes) void tooBig();
      else forward(req, res);
      return;
    }
    // chunked: read it (tests send small bodies) and decide on the bytes received
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) over = true;
      if (!over) chunks.push(c);
    });
    req.on('end', () => {
      if (over) void tooBig();
      else forward(req, res, { body: Buffer.concat(chunks) });
    });
  };

  const endlessTags = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    name: string,
    pageSize: number,
  ) => {
    req.resume();
    const url = new URL(req.url ?? '/', 'http://x');
    const n = Number(url.searchParams.get('n') ?? pageSize);
    const size = Math.max(1, Math.min(Number.isFinite(n) && n > 0 ? n : pageSize, pageSize));
    const last = url.searchParams.get('last');
    const from = last && /^tag-\d+$/.test(last) ? Number(last.slice(4)) + 1 : 0;
    const tags = Array.from({ length: size }, (_, i) => `tag-${String(from + i).padStart(10, '0')}`);
    const body = JSON.stringify({ name, tags });
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'docker-distribution-api-version': 'registry/2.0',
      link: `</v2/${name}/tags/list?n=${size}&last=${tags[tags.length - 1]}>; rel="next"`,
    });
    res.end(body);
  };

  let foreign: http.Server | undefined;
  let foreignHost = '';
  if (quirk.type === 'foreign-location') {
    foreign = http.createServer((req, res) => {
      foreignRequests.push(req.headers);
      forward(req, res);
    });
    foreignHost = await listen(foreign);
  }

  const upstreamCall = (
    method: string,
    path: string,
    headers: http.OutgoingHttpHeaders,
    body: Buffer,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders }> =>
    new Promise((resolve, reject) => {
      const up = http.request({ host: upHost, port: upPort, method, path, headers, agent }, (upRes) => {
        upRes.resume();
        upRes.on('end', () => resolve({ status: upRes.statusCode ?? 502, headers: upRes.headers }));
      });
      up.on('error', reject);
      up.end(body);
    });

  /** A single-request upload done for a registry that does not take one: POST, then PUT with the bytes. */
  const completeSinglePost = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
    target: string,
  ) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const digest = new URLSearchParams(target.slice(target.indexOf('?') + 1)).get('digest') ?? '';
      const auth = req.headers.authorization ? { authorization: req.headers.authorization } : {};
      try {
        const started = await upstreamCall('POST', path, { ...auth, 'content-length': '0' }, Buffer.alloc(0));
        const location = new URL(String(started.headers.location), `http://${upstream}`);
        location.searchParams.set('digest', digest);
        const body = Buffer.concat(chunks);
        const headers = {
          ...auth,
          'content-type': 'application/octet-stream',
          'content-length': body.length,
        };
        const put = await upstreamCall('PUT', location.pathname + location.search, headers, body);
        res.writeHead(put.status, {
          'content-length': '0',
          location: `${path.replace(/uploads\/$/, '')}${digest}`,
          'docker-content-digest': digest,
        });
        res.end();
      } catch {
        res.writeHead(502, { 'content-length': '0' });
        res.end();
      }
    });
  };

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const target = req.url ?? '/';
    const path = target.split('?')[0] ?? target;
    seen.push({ method, path: target, headers: req.headers });
    const isPatch = method === 'PATCH' && UPLOAD_PATH.test(path);
    switch (quirk.type) {
      case 'patch-cap':
        if (isPatch) patchCap(req, res, quirk.maxBytes);
        else forward(req, res);
        return;
      case 'no-patch':
        if (method === 'PATCH') {
          const status = quirk.status ?? 405;
          refuse(req, res, status, errorBody('UNSUPPORTED', `chunked uploads are not supported (${status})`));
        } else forward(req, res);
        return;
      case 'stuck-range':
        forward(
          req,
          res,
          isPatch
            ? {
                rewrite: (status, headers) => {
                  if (status === 202) headers.range = '0-0';
                },
              }
            : {},
        );
        return;
      case 'rate-limit':
        answered += 1;
        if (answered > (quirk.after ?? 0)) {
          refuse(req, res, 429, RATE_LIMIT_BODY, {
            'ratelimit-limit': '100;w=21600',
            'ratelimit-remaining': '0;w=21600',
            'docker-ratelimit-source': '127.0.0.1',
          });
        } else forward(req, res);
        return;
      case 'warning':
        forward(req, res, {
          rewrite: (_status, headers) => {
            const existing: unknown = headers.warning;
            const previous: string[] =
              existing === undefined
                ? []
                : Array.isArray(existing)
                  ? existing.map(String)
                  : [String(existing)];
            const added = quirk.texts.map((t) => `299 - "${t.replace(/"/g, '\\"')}"`);
            (headers as Record<string, string[]>).warning = [...previous, ...added];
          },
        });
        return;
      case 'foreign-location':
        forward(req, res, {
          rewrite: (status, headers) => {
            if (status !== 202 || (method !== 'POST' && method !== 'PATCH')) return;
            const location = headers.location;
            if (typeof location !== 'string') return;
            const url = new URL(location, `http://${req.headers.host ?? 'x'}`);
            headers.location = `http://${foreignHost}${url.pathname}${url.search}`;
          },
        });
        return;
      case 'silent':
        if (!quirk.paths || quirk.paths.test(target)) req.resume();
        else forward(req, res);
        return;
      case 'slowloris':
        if (!quirk.paths || quirk.paths.test(target)) forward(req, res, { slowMs: quirk.everyMs });
        else forward(req, res);
        return;
      case 'endless-tags': {
        const m = TAGS_PATH.exec(path);
        if (method === 'GET' && m) endlessTags(req, res, m[1] as string, quirk.pageSize ?? 10);
        else forward(req, res);
        return;
      }
      case 'post-digest': {
        const single = method === 'POST' && UPLOAD_PATH.test(path) && /[?&]digest=/.test(target);
        if (!single) forward(req, res);
        else if (quirk.complete) completeSinglePost(req, res, path, target);
        else if (quirk.ignore) {
          req.resume();
          req.on('end', () => {
            req.url = path;
            const headers = { ...req.headers, 'content-length': '0' };
            delete headers['transfer-encoding'];
            req.headers = headers;
            forward(req, res, { body: Buffer.alloc(0) });
          });
        } else {
          const status = quirk.status ?? 400;
          refuse(
            req,
            res,
            status,
            errorBody('UNSUPPORTED', `single-request uploads are refused (${status})`),
          );
        }
        return;
      }
      case 'mutate':
        if (!quirk.fn(req, res)) forward(req, res);
        return;
    }
  });
  const host = await listen(server);

  const close = (s: http.Server) =>
    new Promise<void>((resolve) => {
      s.closeAllConnections();
      s.close(() => resolve());
    });
  return {
    host,
    seen,
    foreignHost,
    foreignRequests,
    stop: async () => {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const up of inflight) up.destroy();
      inflight.clear();
      await Promise.all([close(server), ...(foreign ? [close(foreign)] : [])]);
      agent.destroy();
    },
  };
}
