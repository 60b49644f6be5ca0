import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * Servers written for attack tests, on 127.0.0.1 with free ports: a scripted server (plain or TLS) that
 * answers as the test says and records what it was sent, and a recording proxy in front of a real
 * registry, so a test can count which credentials reached which host.
 */

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

export interface RecordingServer {
  host: string;
  url: string;
  requests: RecordedRequest[];
  /** Every Authorization header received. */
  authorizations(): string[];
  stop(): Promise<void>;
}

async function serve(
  server: http.Server,
  scheme: 'http' | 'https',
  requests: RecordedRequest[],
): Promise<RecordingServer> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    url: `${scheme}://${host}`,
    requests,
    authorizations: () =>
      requests.map((r) => r.headers.authorization).filter((a): a is string => typeof a === 'string'),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export type Script = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void;

/** A server that answers every request with `script` (after reading its body), recording requests. */
export async function startScriptedServer(
  script: Script,
  options: { tls?: { cert: string; key: string } } = {},
): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => script(req, res, Buffer.concat(chunks)));
  };
  const server = options.tls
    ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    : http.createServer(handler);
  return serve(server, options.tls ? 'https' : 'http', requests);
}

/** A plain-HTTP proxy in front of a registry that records every request (headers included). */
export async function startRecordingProxy(upstream: string): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const [, port] = upstream.split(':');
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const up = http.request(
      { host: '127.0.0.1', port: Number(port), method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  return serve(server, 'http', requests);
}
