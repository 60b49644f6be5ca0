import type * as http from 'node:http';
import type * as https from 'node:https';
import type { Readable } from 'node:stream';
import { abortError, WasmOciError } from '../errors.js';
import { httpModule, httpsModule, tlsModule } from './builtins.js';
import { networkError } from './errors.js';
import { proxyAuthorization, proxyFor, tunnelAgent } from './proxy.js';
import { ConnectionPool, rawRequest } from './raw-client.js';
import { type BodyOut, sendBytes, sendFileRange } from './send.js';
import { bareHost, identityFor, type TlsOptions, type TlsSettings, tlsSettings } from './tls.js';
import {
  DEFAULT_TIMEOUTS,
  type HttpEngine,
  type HttpRequest,
  type HttpResponse,
  isFileRange,
  type Timeouts,
} from './types.js';
import { onAbort, RequestWatch } from './watch.js';

/**
 * The HTTP engine: the raw client of raw-client.ts for every request that goes straight to its server
 * (with a body of bytes, a file range or none), node:http(s) with keep-alive agents for requests through
 * a proxy and for streamed bodies of unknown length. undici costs 90-170 ms to load (bundled or not) on
 * this machine, node:http ~8 ms, the raw client nothing beyond net. Every request is timed by phase
 * (connect, TLS handshake, response head, idle, a small body's deadline, a blob's minimum rate) and
 * leaves no timer or listener behind.
 */

export interface NodeHttpOptions extends TlsOptions {
  /** Environment for proxy selection (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`). */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Debug log sink; `Authorization` values are redacted before they reach it. */
  log?: ((line: string) => void) | undefined;
  /** Time limits by phase (defaults: DEFAULT_TIMEOUTS). */
  timeouts?: Partial<Timeouts> | undefined;
}

/** How long the loopback TLS probe waits for a handshake answer. */
const PROBE_MS = 3000;

/** Headers whose values are secrets. */
const SECRET_HEADER = /^(authorization|proxy-authorization|cookie)$/i;

/** Header values that must never reach a log. */
function redact(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    out[k] = SECRET_HEADER.test(k) ? `${v.split(' ')[0]} <redacted>` : v;
  }
  return out;
}

/**
 * Headers that carry secrets, apart from the rest. node:http's own debug log (NODE_DEBUG=http) prints
 * the options of every request that opens a connection, headers included: secrets are set on the
 * request after it is made (it sends nothing before that), so they never reach that log.
 */
function splitSecrets(headers: Record<string, string>): {
  plain: Record<string, string>;
  secret: Record<string, string>;
} {
  const plain: Record<string, string> = {};
  const secret: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (SECRET_HEADER.test(k)) secret[k] = v;
    else plain[k] = v;
  }
  return { plain, secret };
}

/** The URL without query parameters that may carry secrets (upload state, signed storage URLs). */
export function redactUrl(url: URL): string {
  return url.search ? `${url.origin}${url.pathname}?<redacted>` : url.href;
}

export class NodeHttpEngine implements HttpEngine {
  private agent: http.Agent | undefined;
  /** Keep-alive connections of the raw client (every request without a proxy). */
  private readonly pool = new ConnectionPool();
  private readonly log: ((line: string) => void) | undefined;
  private readonly options: NodeHttpOptions;
  readonly timeouts: Timeouts;
  private tls?: TlsSettings;
  private httpsAgents = new Map<string, https.Agent>();

  constructor(options: NodeHttpOptions = {}) {
    this.options = options;
    this.log = options.log;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...stripUndefined(options.timeouts ?? {}) };
  }

  /** The plain-HTTP agent of node:http, made on first use (a pull never loads node:http). */
  private get httpAgent(): http.Agent {
    this.agent ??= new (httpModule().Agent)({ keepAlive: true });
    return this.agent;
  }

  /** TLS settings, built on first use and shared by every connection. */
  private tlsSettings(): TlsSettings {
    this.tls ??= tlsSettings(this.options);
    return this.tls;
  }

  /** The https agent for a proxy (or none): connections through a proxy are CONNECT tunnels. */
  private httpsAgent(proxy: URL | undefined): https.Agent {
    const key = proxy?.href ?? '';
    let agent = this.httpsAgents.get(key);
    if (!agent) {
      const settings = this.tlsSettings();
      agent = proxy
        ? tunnelAgent(proxy, settings, this.timeouts)
        : new (httpsModule().Agent)({ keepAlive: true, ...settings });
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
    for (const [name, value] of Object.entries(headers)) {
      if (/[\r\n\0]/.test(value) || /[\r\n\0]/.test(name)) {
        return Promise.reject(
          new WasmOciError(
            'REGISTRY',
            `refused to send header ${JSON.stringify(name)}: it holds a line break`,
            {
              hint: 'a value a server sent (a token, an upload location) is malformed',
            },
          ),
        );
      }
    }
    this.log?.(`> ${method} ${redactUrl(url)} ${JSON.stringify(redact(headers))}`);
    const proxy = proxyFor(url, this.options.env ?? {});
    if (!proxy && (body === undefined || body instanceof Uint8Array || isFileRange(body))) {
      const secure = url.protocol === 'https:';
      return rawRequest(
        { ...req, headers },
        { ...(secure ? { tls: this.tlsSettings() } : {}), timeouts: this.timeouts, pool: this.pool },
      ).then((res) => {
        this.log?.(`< ${res.status} ${method} ${redactUrl(url)}`);
        return res;
      });
    }
    return this.nodeRequest(req, headers, proxy);
  }

  private nodeRequest(req: HttpRequest, headers: Record<string, string>, proxy: URL | undefined) {
    const { url, method, signal, body } = req;
    const isHttps = url.protocol === 'https:';
    const proxyAuth = proxy ? proxyAuthorization(proxy) : undefined;
    return new Promise<HttpResponse>((resolve, reject) => {
      let settled = false;
      let response: http.IncomingMessage | undefined;
      const watch = new RequestWatch(url, this.timeouts, (err) => fail(err));
      const removeAbort = onAbort(signal, () => fail(abortError(signal)));
      let untrack = () => {};
      const stop = () => {
        watch.stop();
        removeAbort();
        untrack();
      };
      const fail = (err: unknown) => {
        const error =
          err instanceof WasmOciError
            ? err
            : signal?.aborted
              ? abortError(signal)
              : networkError(err as NodeJS.ErrnoException, url);
        stop();
        if (response) {
          response.destroy(error);
          return;
        }
        request.destroy();
        if (settled) return;
        settled = true;
        reject(error);
      };
      const all =
        proxy && !isHttps
          ? { ...headers, host: url.host, ...(proxyAuth ? { 'proxy-authorization': proxyAuth } : {}) }
          : headers;
      const { plain, secret } = splitSecrets(all);
      const request =
        proxy && !isHttps
          ? // Plain HTTP through a proxy: the absolute URL goes to the proxy.
            httpModule().request({
              host: proxy.hostname,
              port: proxy.port || 80,
              path: url.href,
              method,
              headers: plain,
              agent: this.httpAgent,
            })
          : isHttps
            ? httpsModule().request(url, {
                method,
                headers: plain,
                agent: this.httpsAgent(proxy),
                ...identityFor(bareHost(url.hostname)),
              })
            : httpModule().request(url, { method, headers: plain, agent: this.httpAgent });
      for (const [name, value] of Object.entries(secret)) request.setHeader(name, value);
      // The answer is awaited once the connection is up and the request is out.
      let connected = false;
      let sent = false;
      const awaitAnswer = () => {
        if (!connected || !sent || response) return;
        watch.stopIdle();
        watch.startPhase('headers', this.timeouts.headersMs);
      };
      request.on('socket', (socket) => {
        // Bytes arriving count as activity (a 'data' listener on the response would start its flow).
        const counted = (chunk: Buffer) => watch.activity(chunk.length);
        socket.on('data', counted);
        untrack = () => socket.off('data', counted);
        const ready = () => {
          connected = true;
          watch.clearPhase();
          awaitAnswer();
        };
        // A reused keep-alive socket, or a tunnel whose agent times its own handshake.
        if (!socket.connecting) return ready();
        watch.startPhase('connect', this.timeouts.connectMs);
        if ((socket as { encrypted?: boolean }).encrypted === true) {
          socket.once('connect', () => watch.startPhase('handshake', this.timeouts.handshakeMs));
          socket.once('secureConnect', ready);
        } else socket.once('connect', ready);
      });
      request.on('finish', () => {
        sent = true;
        awaitAnswer();
      });
      request.on('error', (err: NodeJS.ErrnoException) => fail(err));
      request.on('response', (res) => {
        if (settled) {
          res.resume();
          return;
        }
        settled = true;
        response = res;
        watch.clearPhase();
        this.log?.(`< ${res.statusCode} ${method} ${redactUrl(url)}`);
        const status = res.statusCode ?? 0;
        mapErrors(res, url);
        watch.startIdle();
        if (req.largeBody) watch.startRate();
        // Small bodies (manifests, tokens, tag pages, errors) must arrive whole within the time limit.
        else watch.startPhase('body', this.timeouts.idleMs);
        const sink = status >= 200 && status < 300 ? req.sinkFor?.(status, res.headers) : undefined;
        if (sink) {
          res.on('data', (chunk: Buffer) => {
            try {
              const full = sink(chunk);
              if (full) {
                res.pause();
                full.then(
                  () => res.resume(),
                  (err: unknown) => fail(err),
                );
              }
            } catch (err) {
              fail(err);
            }
          });
        }
        res.once('end', stop);
        res.once('close', stop);
        if (sink) res.on('error', () => {});
        resolve({ status, headers: res.headers, body: res, url });
      });
      const moved = (n: number) => watch.activity(n);
      if (body !== undefined) watch.startIdle();
      if (body === undefined) request.end();
      else if (body instanceof Uint8Array) sendBytes(body, bodyOut(request), moved);
      else if (isFileRange(body)) sendFileRange(body, bodyOut(request), moved, fail);
      else {
        const stream = body as Readable;
        stream.on('data', (chunk: Buffer) => moved(chunk.length));
        stream.on('error', (err) => fail(err));
        stream.pipe(request);
      }
    });
  }

  /**
   * A bare TLS handshake (no CA store, no certificate check): a server that answers it in plain HTTP
   * (or drops it) does not speak TLS; connection errors are reported as for requests.
   */
  speaksTls(url: URL, signal?: AbortSignal): Promise<boolean> {
    const host = bareHost(url.hostname);
    return new Promise((resolve, reject) => {
      const tls = tlsModule();
      const socket = tls.connect({
        host,
        port: Number(url.port || 443),
        rejectUnauthorized: false,
        // No CA store: loading Node's roots costs ~50 ms here, and the probe judges no certificate.
        secureContext: tls.createSecureContext({
          ca: [],
          ...(this.options.cert && this.options.key
            ? { cert: this.options.cert, key: this.options.key }
            : {}),
        }),
        ...identityFor(host),
      });
      // A TLS server answers a ClientHello at once: a peer silent for a few seconds (a plain-HTTP
      // server waiting for a request head) does not speak TLS.
      const watch = new RequestWatch(url, this.timeouts, () => done(false));
      watch.startPhase('handshake', Math.min(PROBE_MS, this.timeouts.connectMs + this.timeouts.handshakeMs));
      const removeAbort = onAbort(signal, () => done(abortError(signal)));
      let finished = false;
      const done = (answer: boolean | Error) => {
        if (finished) return;
        finished = true;
        watch.stop();
        removeAbort();
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
      // A peer that closes without a word does not speak TLS either.
      socket.once('close', () => done(false));
    });
  }

  /** Closes idle keep-alive sockets so the process can exit at once. */
  close(): void {
    this.pool.close();
    this.agent?.destroy();
    for (const agent of this.httpsAgents.values()) agent.destroy();
  }
}

/** A node:http request as the carrier of a body. */
function bodyOut(request: http.ClientRequest): BodyOut {
  return {
    write: (chunk, done) => {
      request.write(chunk, () => done());
    },
    end: () => request.end(),
    get stopped() {
      return request.destroyed;
    },
  };
}

/**
 * Errors of a node:http response body become ours: a connection cut mid-body is a transient NETWORK
 * error naming the host, never a bare "aborted".
 */
function mapErrors(res: http.IncomingMessage, url: URL): void {
  const original = res._destroy.bind(res);
  res._destroy = (err, callback) =>
    original(
      err && !(err instanceof WasmOciError) ? networkError(err as NodeJS.ErrnoException, url) : err,
      callback,
    );
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
