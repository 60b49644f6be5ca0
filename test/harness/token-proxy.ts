import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A bearer-token front for the real registry: every /v2/ request needs `Authorization: Bearer <token>`
 * (else a 401 challenge with realm, service and the scope the request needs), and /token hands out
 * anonymous tokens, counting requests per scope set. Everything else is forwarded to the registry
 * untouched, Host header included, so upload Locations point back through the proxy.
 */
export interface TokenProxy {
  host: string;
  /** Token requests seen, as their sorted scope lists joined by spaces. */
  tokenRequests: string[];
  /** Authorization headers seen on /v2/ requests. */
  authorizations: string[];
  /** Expire every token issued so far (the next request gets a 401). */
  revokeAll(): void;
  stop(): Promise<void>;
}

export async function startTokenProxy(upstream: string): Promise<TokenProxy> {
  const tokens = new Set<string>();
  const tokenRequests: string[] = [];
  const authorizations: string[] = [];
  let self = '';

  const scopeFor = (path: string, method: string): string | undefined => {
    const m = /^\/v2\/(.+)\/(manifests|blobs|tags)\//.exec(path);
    if (!m) return undefined;
    const write = method !== 'GET' && method !== 'HEAD';
    return `repository:${m[1]}:${write ? 'pull,push' : 'pull'}`;
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token') {
      const scopes = url.searchParams.getAll('scope').sort();
      tokenRequests.push(scopes.join(' '));
      const token = randomBytes(16).toString('hex');
      tokens.add(token);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token, expires_in: 300 }));
      return;
    }
    const auth = req.headers.authorization ?? '';
    authorizations.push(auth);
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (!tokens.has(token)) {
      const scope = scopeFor(url.pathname, req.method ?? 'GET');
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer realm="http://${self}/token",service="test-registry"${scope ? `,scope="${scope}"` : ''}`,
      });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      req.resume();
      return;
    }
    const forward = http.request(
      {
        host: '127.0.0.1',
        port: Number(upstream.split(':')[1]),
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  self = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host: self,
    tokenRequests,
    authorizations,
    revokeAll: () => tokens.clear(),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
