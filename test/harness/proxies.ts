import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';

/**
 * Network fixtures written for the tests, all on 127.0.0.1 with free ports: a forward proxy (CONNECT
 * tunnels and absolute-form requests) that resolves made-up host names to loopback, a fault injector in
 * front of the registry, and a redirector that sends blob downloads to a "storage" host.
 */

async function listen(server: net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function stopper(server: http.Server): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
}

function forward(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  host: string,
  port: number,
  path: string,
) {
  const up = http.request({ host, port, method: req.method, path, headers: req.headers }, (upRes) => {
    res.writeHead(upRes.statusCode ?? 502, upRes.headers);
    upRes.pipe(res);
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
}

export interface ForwardProxy {
  url: string;
  /** CONNECT targets seen. */
  connects: string[];
  /** Absolute-form request URLs seen. */
  requests: string[];
  /** Proxy-Authorization headers seen. */
  proxyAuth: string[];
  stop(): Promise<void>;
}

/** Every host name it is asked for is served from 127.0.0.1 (same port). */
export async function startForwardProxy(): Promise<ForwardProxy> {
  const connects: string[] = [];
  const requests: string[] = [];
  const proxyAuth: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    proxyAuth.push(String(req.headers['proxy-authorization'] ?? ''));
    const target = new URL(req.url ?? '/');
    delete req.headers['proxy-authorization'];
    forward(req, res, '127.0.0.1', Number(target.port || 80), target.pathname + target.search);
  });
  server.on('connect', (req, client: net.Socket, head) => {
    connects.push(req.url ?? '');
    proxyAuth.push(String(req.headers['proxy-authorization'] ?? ''));
    const port = Number((req.url ?? '').split(':').pop());
    const upstream = net.connect(port, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  const host = await listen(server);
  return { url: `http://${host}`, connects, requests, proxyAuth, stop: stopper(server) };
}

export interface FaultProxy {
  host: string;
  /** Method and path of every request that reached the proxy. */
  seen: string[];
  stop(): Promise<void>;
}

export type Fault = 'reset' | { status: number; retryAfter?: string };

/**
 * Fronts the registry; `plan(method, path, nth)` may answer a request with a fault (the nth request to
 * that method and path, from 1) instead of forwarding it.
 */
export async function startFaultProxy(
  upstream: string,
  plan: (method: string, path: string, nth: number) => Fault | undefined,
): Promise<FaultProxy> {
  const seen: string[] = [];
  const counts = new Map<string, number>();
  const [, port] = upstream.split(':');
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const key = `${req.method} ${path}`;
    seen.push(key);
    const nth = (counts.get(key) ?? 0) + 1;
    counts.set(key, nth);
    const fault = plan(req.method ?? 'GET', path, nth);
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault) {
      req.resume();
      res.writeHead(fault.status, {
        'content-type': 'application/json',
        ...(fault.retryAfter !== undefined ? { 'retry-after': fault.retryAfter } : {}),
      });
      res.end(`{"errors":[{"code":"UNAVAILABLE","message":"injected ${fault.status}"}]}`);
      return;
    }
    forward(req, res, '127.0.0.1', Number(port), req.url ?? '/');
  });
  const host = await listen(server);
  return { host, seen, stop: stopper(server) };
}

export interface Redirector {
  /** The registry front: blob GETs are answered with a 307 to the storage host. */
  host: string;
  /** Headers of every request the storage host received. */
  storageRequests: http.IncomingHttpHeaders[];
  stop(): Promise<void>;
}

/**
 * A registry front that redirects blob downloads to another origin (as GHCR, ECR, ACR and GCR do). The
 * storage host fetches the blob from the registry itself with `storageAuth`, and records the headers the
 * client sent it, so a test can prove no credentials followed the redirect.
 */
export async function startRedirector(upstream: string, storageAuth?: string): Promise<Redirector> {
  const storageRequests: http.IncomingHttpHeaders[] = [];
  const [, port] = upstream.split(':');
  const storage = http.createServer((req, res) => {
    storageRequests.push(req.headers);
    const path = new URL(req.url ?? '/', 'http://x').searchParams.get('path') ?? '/';
    const up = http.request(
      {
        host: '127.0.0.1',
        port: Number(port),
        path,
        headers: storageAuth ? { authorization: storageAuth } : {},
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, { 'content-length': upRes.headers['content-length'] ?? '' });
        upRes.pipe(res);
      },
    );
    up.end();
  });
  const storageHost = await listen(storage);
  const front = http.createServer((req, res) => {
    if (req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '')) {
      req.resume();
      res.writeHead(307, {
        location: `http://${storageHost}/signed?path=${encodeURIComponent(req.url ?? '')}&sig=abc`,
      });
      res.end();
      return;
    }
    forward(req, res, '127.0.0.1', Number(port), req.url ?? '/');
  });
  const host = await listen(front);
  const stopFront = stopper(front);
  const stopStorage = stopper(storage);
  return {
    host,
    storageRequests,
    stop: async () => {
      await stopFront();
      await stopStorage();
    },
  };
}
