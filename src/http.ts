import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { type Duplex, Readable } from 'node:stream';
import * as tls from 'node:tls';
import { abortError, WasmOciError } from './errors.js';
import { rawGet } from './http-raw.js';
import { proxyAuthorization, proxyFor } from './proxy.js';

/**
 * The HTTP engine: node:http(s) with keep-alive agents. Measured here, it adds nothing to start-up and
 * streams at line rate, where undici costs ~100 ms to import and the global fetch ~200 ms at exit.
 * The engine is an interface so tests and later transports (proxies, TLS options) plug in.
 */

/**
 * A byte range of an open file, sent through a few reused buffers (fresh memory costs ~1.2 ms per MiB
 * in page faults here) and replayable, since it can be read again. `observe` sees every chunk as it is
 * sent (hashing, progress); the chunk is only valid during the call.
 */
export interface FileRange {
  readonly fd: number;
  readonly start: number;
  readonly length: number;
  readonly observe?: ((chunk: Buffer) => void) | undefined;
}

export type HttpBody = Uint8Array | Readable | FileRange;

export function isFileRange(body: unknown): body is FileRange {
  return typeof body === 'object' && body !== null && typeof (body as FileRange).fd === 'number';
}

const FILE_BUFFERS = 4;
const FILE_BUFFER_BYTES = 1024 * 1024;

/** Reads a file range into a small pool of buffers and writes it to the request, in order. */
function sendFileRange(range: FileRange, request: http.ClientRequest, fail: (err: unknown) => void): void {
  const free: Buffer[] = Array.from({ length: FILE_BUFFERS }, () => Buffer.allocUnsafe(FILE_BUFFER_BYTES));
  let position = range.start;
  let left = range.length;
  let reading = false;
  const pump = () => {
    if (reading || left === 0 || free.length === 0 || request.destroyed) return;
    const buffer = free.pop() as Buffer;
    reading = true;
    fs.read(range.fd, buffer, 0, Math.min(buffer.length, left), position, (err, n) => {
      reading = false;
      if (err || n === 0) {
        const cause = err ?? new Error('the file is shorter than expected');
        request.destroy(cause);
        fail(cause);
        return;
      }
      const chunk = buffer.subarray(0, n);
      position += n;
      left -= n;
      try {
        range.observe?.(chunk);
      } catch (error) {
        request.destroy(error as Error);
        fail(error);
        return;
      }
      // The buffer is reused once the socket has taken it.
      request.write(chunk, () => {
        free.push(buffer);
        pump();
      });
      if (left === 0) request.end();
      else pump();
    });
  };
  pump();
}

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: HttpBody | undefined;
  signal?: AbortSignal | undefined;
  /** The response body is expected to be large (a blob): the engine may use its fast GET path. */
  largeBody?: boolean | undefined;
  /**
   * For a 2xx answer, deliver the body to this synchronous sink (each chunk valid only during the
   * call) instead of buffering it in `body`, which then only signals the end (or the error).
   */
  sink?: ((chunk: Buffer) => void) | undefined;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The response body; callers must consume or destroy it. */
  body: Readable;
  /** The URL that answered (after redirects). */
  url: URL;
}

export interface HttpEngine {
  request(req: HttpRequest): Promise<HttpResponse>;
  /**
   * Optional: whether the server at `url` answers a TLS handshake at all (certificates are not judged
   * here; requests verify them). Lets a loopback registry's scheme be found without a full request.
   */
  speaksTls?(url: URL, signal?: AbortSignal): Promise<boolean>;
}

export interface NodeHttpOptions {
  /** Skip TLS certificate verification. */
  insecure?: boolean | undefined;
  /** Extra CA certificates (PEM), trusted in addition to the system's. */
  ca?: string[] | undefined;
  /** Trust only `ca`, not the system's roots (`--tlscacert` for a trust server). */
  caOnly?: boolean | undefined;
  /** Client certificate and key (PEM) for mutual TLS. */
  cert?: string | undefined;
  key?: string | undefined;
  /** Environment for proxy selection (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`). */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Debug log sink; `Authorization` values are redacted before they reach it. */
  log?: ((line: string) => void) | undefined;
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_NOT_YET_VALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'EPROTO',
]);

/** Turns a socket-level error into our error type with a message a user can act on. */
export function networkError(err: NodeJS.ErrnoException, url: URL): WasmOciError {
  const code = err.code ?? '';
  const where = url.host;
  if (TLS_CODES.has(code) || /ssl|tls|certificate|alert/i.test(err.message) || code.startsWith('ERR_SSL')) {
    const plainHttpPeer = /wrong version number|packet length too long|http request/i.test(err.message);
    const clientCert =
      /certificate required|bad certificate|handshake failure|unknown ca/i.test(err.message) &&
      !/self.signed|verify/i.test(err.message);
    return new WasmOciError('TLS', `TLS with ${where} failed: ${err.message}`, {
      cause: err,
      details: { plainHttpPeer },
      hint: plainHttpPeer
        ? 'the registry seems to speak plain HTTP: use --plain-http'
        : clientCert
          ? 'the registry wants a client certificate: use --cert <pem> and --key <pem>'
          : "trust the registry's CA with --ca-file <pem> (or SSL_CERT_FILE), or skip verification with --insecure",
    });
  }
  if (code === 'ECONNREFUSED') {
    return new WasmOciError('NETWORK', `cannot connect to ${where}: connection refused`, {
      cause: err,
      hint: 'is the registry running, and is the port right?',
    });
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new WasmOciError('NETWORK', `cannot resolve host ${url.hostname}`, { cause: err });
  }
  if (code === 'HPE_INVALID_CONSTANT' || code === 'HPE_INVALID_HEADER_TOKEN') {
    return new WasmOciError('NETWORK', `${where} did not answer with HTTP: ${err.message}`, {
      cause: err,
      hint: 'the registry may speak TLS: drop --plain-http',
    });
  }
  return new WasmOciError('NETWORK', `request to ${where} failed: ${err.message}`, { cause: err });
}

/** Header values that must never reach a log. */
function redact(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    out[k] = /^(authorization|proxy-authorization|cookie)$/i.test(k) ? `${v.split(' ')[0]} <redacted>` : v;
  }
  return out;
}

/** The URL without query parameters that may carry secrets (upload state, signed storage URLs). */
export function redactUrl(url: URL): string {
  return url.search ? `${url.origin}${url.pathname}?<redacted>` : url.href;
}

/** The system's CA bundle, where Debian, Fedora and others keep it (Node trusts only its own copy). */
const SYSTEM_CA_FILES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/cert.pem',
];

export class NodeHttpEngine implements HttpEngine {
  private readonly httpAgent: http.Agent;
  private readonly log: ((line: string) => void) | undefined;
  private readonly options: NodeHttpOptions;
  private tls?: { rejectUnauthorized: boolean; secureContext?: tls.SecureContext };
  private httpsAgents = new Map<string, https.Agent>();

  constructor(options: NodeHttpOptions = {}) {
    this.options = options;
    this.httpAgent = new http.Agent({ keepAlive: true });
    this.log = options.log;
  }

  /**
   * TLS settings, built on first use: Node's roots, the system bundle and the extra CAs, and the client
   * certificate, in one secure context shared by every connection.
   */
  private tlsSettings(): { rejectUnauthorized: boolean; secureContext?: tls.SecureContext } {
    if (this.tls) return this.tls;
    const { ca, caOnly, cert, key, insecure } = this.options;
    let secureContext: tls.SecureContext | undefined;
    if (ca?.length || cert || key) {
      // The system bundle (a superset of Node's own roots on Debian and Fedora), else Node's roots; then
      // the extra CAs. Identical bundles (SSL_CERT_FILE and NODE_EXTRA_CA_CERTS often name the system
      // bundle itself) are loaded once: each copy costs ~25 ms of parsing.
      let roots: string[] = caOnly ? [] : [...tls.rootCertificates];
      for (const file of caOnly ? [] : SYSTEM_CA_FILES) {
        try {
          roots = [fs.readFileSync(file, 'utf8')];
          break;
        } catch {
          // Not on this system.
        }
      }
      secureContext = tls.createSecureContext({ ca: [...new Set([...roots, ...(ca ?? [])])], cert, key });
    }
    this.tls = { rejectUnauthorized: !insecure, ...(secureContext ? { secureContext } : {}) };
    return this.tls;
  }

  /** The https agent for a proxy (or none): connections through a proxy are CONNECT tunnels. */
  private httpsAgent(proxy: URL | undefined): https.Agent {
    const key = proxy?.href ?? '';
    let agent = this.httpsAgents.get(key);
    if (!agent) {
      const settings = this.tlsSettings();
      agent = proxy ? new TunnelAgent(proxy, settings) : new https.Agent({ keepAlive: true, ...settings });
      this.httpsAgents.set(key, agent);
    }
    return agent;
  }

  request(req: HttpRequest): Promise<HttpResponse> {
    const { url, method, signal } = req;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const headers = { ...(req.headers ?? {}) };
    const body = req.body;
    if (body instanceof Uint8Array) headers['content-length'] = String(body.byteLength);
    else if (isFileRange(body)) headers['content-length'] = String(body.length);
    else if (body === undefined && (method === 'PUT' || method === 'POST' || method === 'PATCH')) {
      headers['content-length'] = '0';
    }
    this.log?.(`> ${method} ${redactUrl(url)} ${JSON.stringify(redact(headers))}`);
    const proxy = proxyFor(url, this.options.env ?? {});
    if (method === 'GET' && req.largeBody && body === undefined && !proxy) {
      const tlsOptions = url.protocol === 'https:' ? this.tlsSettings() : undefined;
      return rawGet(
        { ...req, headers },
        { ...(tlsOptions ? { tls: tlsOptions } : {}), onError: networkError },
      ).then((res) => {
        this.log?.(`< ${res.status} ${method} ${redactUrl(url)}`);
        return res;
      });
    }
    const isHttps = url.protocol === 'https:';
    const proxyAuth = proxy ? proxyAuthorization(proxy) : undefined;
    return new Promise<HttpResponse>((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        reject(err);
      };
      const request =
        proxy && !isHttps
          ? // Plain HTTP through a proxy: the absolute URL goes to the proxy.
            http.request({
              host: proxy.hostname,
              port: proxy.port || 80,
              path: url.href,
              method,
              headers: {
                ...headers,
                host: url.host,
                ...(proxyAuth ? { 'proxy-authorization': proxyAuth } : {}),
              },
              agent: this.httpAgent,
              signal,
            })
          : isHttps
            ? https.request(url, { method, headers, agent: this.httpsAgent(proxy), signal })
            : http.request(url, { method, headers, agent: this.httpAgent, signal });
      request.on('error', (err: NodeJS.ErrnoException) => {
        if (signal?.aborted) fail(abortError(signal));
        else fail(networkError(err, url));
      });
      request.on('response', (res) => {
        if (settled) {
          res.resume();
          return;
        }
        settled = true;
        this.log?.(`< ${res.statusCode} ${method} ${redactUrl(url)}`);
        const status = res.statusCode ?? 0;
        const sink = req.sink;
        if (sink && status >= 200 && status < 300) {
          res.on('data', (chunk: Buffer) => {
            try {
              sink(chunk);
            } catch (err) {
              res.destroy(err as Error);
            }
          });
        }
        resolve({ status, headers: res.headers, body: res, url });
      });
      if (body === undefined) request.end();
      else if (body instanceof Uint8Array) request.end(body);
      else if (isFileRange(body)) sendFileRange(body, request, fail);
      else {
        body.on('error', (err) => {
          request.destroy(err);
          fail(err);
        });
        body.pipe(request);
      }
    });
  }

  /**
   * A bare TLS handshake (no CA store, no certificate check): a server that answers it in plain HTTP
   * (or drops it) does not speak TLS; connection errors are reported as for requests.
   */
  speaksTls(url: URL, signal?: AbortSignal): Promise<boolean> {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host,
        port: Number(url.port || 443),
        rejectUnauthorized: false,
        ...(this.options.cert && this.options.key ? { cert: this.options.cert, key: this.options.key } : {}),
        ...(net.isIP(host) ? {} : { servername: host }),
      });
      const done = (answer: boolean | Error) => {
        socket.destroy();
        if (answer instanceof Error) reject(answer);
        else resolve(answer);
      };
      socket.once('secureConnect', () => done(true));
      socket.once('error', (err: NodeJS.ErrnoException) => {
        const mapped = networkError(err, url);
        if (err.code === 'ECONNRESET' || mapped.details?.plainHttpPeer === true) done(false);
        else if (mapped.code === 'TLS') done(true);
        else done(mapped);
      });
      signal?.addEventListener('abort', () => done(abortError(signal)), { once: true });
    });
  }

  /** Closes idle keep-alive sockets so the process can exit at once. */
  close(): void {
    this.httpAgent.destroy();
    for (const agent of this.httpsAgents.values()) agent.destroy();
  }
}

/** An https agent whose connections are TLS over a CONNECT tunnel through an HTTP proxy. */
class TunnelAgent extends https.Agent {
  constructor(
    private readonly proxy: URL,
    private readonly settings: { rejectUnauthorized: boolean; secureContext?: tls.SecureContext },
  ) {
    super({ keepAlive: true, ...settings });
  }

  override createConnection(
    options: https.RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): undefined {
    const target = `${options.host}:${options.port}`;
    const auth = proxyAuthorization(this.proxy);
    const connect = http.request({
      host: this.proxy.hostname,
      port: this.proxy.port || 80,
      method: 'CONNECT',
      path: target,
      headers: { host: target, ...(auth ? { 'proxy-authorization': auth } : {}) },
    });
    connect.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        callback?.(
          new Error(`proxy ${this.proxy.host} refused CONNECT ${target}: HTTP ${res.statusCode}`),
          socket,
        );
        return;
      }
      const servername =
        options.servername ?? (options.host && !/^[\d.:]+$/.test(options.host) ? options.host : undefined);
      callback?.(null, tls.connect({ socket, ...this.settings, ...(servername ? { servername } : {}) }));
    });
    connect.once('error', (err) => callback?.(err, connect.socket as Duplex));
    connect.end();
    return undefined;
  }
}

/** Drains a body that the caller does not need, so the socket goes back to the pool. */
export async function discard(body: Readable): Promise<void> {
  body.resume();
  await new Promise<void>((resolve) => {
    if (body.readableEnded || body.destroyed) resolve();
    else {
      body.once('end', resolve);
      body.once('error', () => resolve());
      body.once('close', resolve);
    }
  });
}

/** Reads a (small) body as text, capped. */
export async function readText(body: Readable, cap = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += (chunk as Buffer).length;
    if (total > cap) {
      body.destroy();
      break;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function header(res: HttpResponse, name: string): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
