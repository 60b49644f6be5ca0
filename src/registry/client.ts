import { setTimeout as sleep } from 'node:timers/promises';
import { Authorizer, type CredentialSource } from '../auth/authorizer.js';
import { abortError, hasCode, WasmOciError } from '../errors.js';
import {
  discard,
  type HttpBody,
  type HttpEngine,
  type HttpResponse,
  header,
  NodeHttpEngine,
  type NodeHttpOptions,
} from '../http.js';
import { isLoopback, registryApiHost } from '../reference.js';
import { USER_AGENT } from '../version.js';
import { responseError } from './errors.js';

export interface RegistryOptions extends Omit<NodeHttpOptions, 'log'> {
  /** The HTTP engine; by default a node:http(s) engine built from the TLS and proxy options. */
  engine?: HttpEngine | undefined;
  /**
   * Talk plain HTTP to this registry. Without it, loopback registries are tried with TLS first and
   * with plain HTTP when they do not speak TLS (the answer is remembered for the process).
   */
  plainHttp?: boolean | undefined;
  /** Where credentials come from; anonymous when absent. */
  credentials?: CredentialSource | undefined;
  /** Debug log sink (secrets are redacted before they reach it). */
  log?: ((line: string) => void) | undefined;
  userAgent?: string | undefined;
  /** Retry policy for transient failures; `{ attempts: 1 }` turns retries off. */
  retry?: Partial<RetryPolicy> | undefined;
  /**
   * Talk to this origin instead of the one `registry` names (a Notary trust server, which speaks the
   * same auth protocol); `registry` then only names whose credentials to use.
   */
  baseUrl?: URL | undefined;
}

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** First backoff; doubled each time, with ±50 % jitter. */
  baseDelayMs: number;
  /** No retry starts once this much time has passed since the first try. */
  budgetMs: number;
  /** Upper bound for one wait, `Retry-After` included. */
  maxDelayMs: number;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 250, budgetMs: 60_000, maxDelayMs: 20_000 };
const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
const RETRY_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);

export interface SendRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  /** A path under the registry's base URL, or an absolute URL (upload locations). */
  url: string | URL;
  headers?: Record<string, string>;
  body?: HttpBody | undefined;
  /** Token scopes this request needs. */
  scopes: readonly string[];
  signal?: AbortSignal | undefined;
  /** Follow redirects (blob downloads are redirected to storage hosts). */
  followRedirects?: boolean;
  /** The response body is a blob: let the engine use its fast path for large bodies. */
  largeBody?: boolean;
  /** Deliver a 2xx body to this synchronous sink (see HttpRequest.sink). */
  sink?: ((chunk: Buffer) => void) | undefined;
}

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** What each loopback registry turned out to speak, remembered for the rest of the process. */
const loopbackSchemes = new Map<string, 'https' | 'http'>();

/** Headers of the registry that must never follow a request to another host. */
const REGISTRY_ONLY_HEADERS = /^(authorization|cookie|docker-.*|x-.*)$/i;

function retryAfterMs(res: HttpResponse): number | undefined {
  const value = header(res, 'retry-after');
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** A body that can be sent again: nothing, bytes in memory (streams and file uploads with observers are not). */
function replayable(body: HttpBody | undefined): boolean {
  return body === undefined || body instanceof Uint8Array;
}

/**
 * One registry host: its base URL, its authorizer and the rule for attaching credentials. Credentials go
 * only to the registry's own origin, never to a redirect target or an upload location on another host.
 * Transient failures (408, 429, 5xx, connection resets) are retried with jittered exponential backoff
 * when the request can be replayed.
 */
export class RegistryClient {
  readonly registry: string;
  readonly engine: HttpEngine;
  private base: URL;
  /** Set while a loopback registry's scheme is still unknown (TLS is tried first). */
  private probing: boolean;
  private probed: Promise<void> | undefined;
  private readonly authorizer: Authorizer;
  private readonly ownsEngine: boolean;
  private readonly userAgent: string;
  private readonly retry: RetryPolicy;

  constructor(registry: string, options: RegistryOptions = {}) {
    this.registry = registry;
    const host = registryApiHost(registry);
    const known = loopbackSchemes.get(host);
    const scheme = options.plainHttp ? 'http' : isLoopback(registry) ? (known ?? 'https') : 'https';
    this.probing = !options.baseUrl && !options.plainHttp && isLoopback(registry) && known === undefined;
    this.base = options.baseUrl
      ? new URL(options.baseUrl.href.replace(/\/*$/, '/'))
      : new URL(`${scheme}://${host}/`);
    this.ownsEngine = options.engine === undefined;
    this.engine = options.engine ?? new NodeHttpEngine(options);
    this.userAgent = options.userAgent ?? USER_AGENT;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.authorizer = new Authorizer({
      engine: this.engine,
      credentials: options.credentials,
      userAgent: this.userAgent,
    });
  }

  get baseUrl(): URL {
    return this.base;
  }

  url(path: string): URL {
    return new URL(path, this.base);
  }

  /**
   * Sends a request, answering a 401 challenge once and following redirects when asked. A streamed body
   * cannot be sent twice, so callers send streams only after an earlier request on the same scopes has
   * settled authorization.
   */
  async send(req: SendRequest): Promise<HttpResponse> {
    await this.probe(req.signal);
    let url = typeof req.url === 'string' ? this.url(req.url) : req.url;
    if (url.host === this.base.host && url.protocol !== this.base.protocol) {
      // Built before the loopback probe settled the scheme.
      url = new URL(url.pathname + url.search, this.base);
    }
    let method = req.method;
    let body = req.body;
    let retriedAuth = false;
    for (let redirects = 0; ; ) {
      const sameOrigin = url.origin === this.base.origin;
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...(req.headers ?? {}) };
      let authorization: string | undefined;
      if (sameOrigin) {
        authorization = await this.authorizer.authorization(this.registry, req.scopes, req.signal);
        if (authorization) headers.authorization = authorization;
      } else {
        // Another host (a storage redirect, an upload location): none of the registry's headers.
        for (const name of Object.keys(headers)) if (REGISTRY_ONLY_HEADERS.test(name)) delete headers[name];
      }
      const res = await this.request(url, {
        method,
        url,
        headers,
        body,
        signal: req.signal,
        largeBody: req.largeBody,
        sink: req.sink,
      });
      if (res.status === 401 && url.origin === this.base.origin && !retriedAuth) {
        retriedAuth = true;
        let retry = false;
        try {
          retry =
            replayable(body) &&
            (await this.authorizer.onUnauthorized(
              this.registry,
              res,
              req.scopes,
              authorization !== undefined,
              req.signal,
            ));
        } catch (err) {
          await discard(res.body);
          throw err;
        }
        if (retry) {
          await discard(res.body);
          continue;
        }
        return res;
      }
      if (req.followRedirects && REDIRECT_STATUSES.has(res.status)) {
        const location = header(res, 'location');
        await discard(res.body);
        if (!location) throw new WasmOciError('REGISTRY', `${url.host} sent a redirect without a Location`);
        if (++redirects > MAX_REDIRECTS)
          throw new WasmOciError('REGISTRY', `too many redirects from ${url.host}`);
        url = new URL(location, url);
        if (res.status === 303) {
          method = 'GET';
          body = undefined;
        }
        continue;
      }
      return res;
    }
  }

  /**
   * One request with the transport's policies: the loopback TLS probe, and retries of transient failures
   * for replayable requests (never an upload PATCH, whose session state would be corrupted).
   */
  private async request(url: URL, req: Parameters<HttpEngine['request']>[0]): Promise<HttpResponse> {
    const started = Date.now();
    const canRetry = replayable(req.body) && req.method !== 'PATCH';
    for (let attempt = 1; ; attempt++) {
      let res: HttpResponse;
      try {
        res = await this.engine.request({ ...req, url });
      } catch (err) {
        const code = ((err as WasmOciError).cause as NodeJS.ErrnoException | undefined)?.code ?? '';
        if (
          !canRetry ||
          !hasCode(err, 'NETWORK') ||
          !RETRY_CODES.has(code) ||
          !this.mayRetry(attempt, started)
        ) {
          throw err;
        }
        await this.backoff(attempt, undefined, req.signal);
        continue;
      }
      if (canRetry && RETRY_STATUSES.has(res.status) && this.mayRetry(attempt, started)) {
        const wait = retryAfterMs(res);
        await discard(res.body);
        await this.backoff(attempt, wait, req.signal);
        continue;
      }
      return res;
    }
  }

  private mayRetry(attempt: number, started: number): boolean {
    return attempt < this.retry.attempts && Date.now() - started < this.retry.budgetMs;
  }

  private async backoff(attempt: number, retryAfter: number | undefined, signal: AbortSignal | undefined) {
    const exponential = this.retry.baseDelayMs * 2 ** (attempt - 1);
    const jittered = exponential * (0.5 + Math.random());
    const delay = Math.min(this.retry.maxDelayMs, retryAfter ?? jittered);
    try {
      await sleep(delay, undefined, { signal });
    } catch {
      throw abortError(signal);
    }
  }

  /** A TLS handshake answered in plain HTTP: the loopback registry has no TLS. */
  private speaksPlainHttp(err: unknown): boolean {
    if (hasCode(err, 'TLS')) return err.details?.plainHttpPeer === true;
    // Some plain-HTTP servers just drop a TLS hello.
    const code = ((err as WasmOciError).cause as NodeJS.ErrnoException | undefined)?.code;
    return hasCode(err, 'NETWORK') && code === 'ECONNRESET';
  }

  /**
   * For a loopback registry of unknown scheme: `GET /v2/` over TLS first, and plain HTTP when the
   * answer shows the registry does not speak TLS (as Docker does for localhost). A certificate problem
   * is not a reason to fall back: it is reported.
   */
  private probe(signal: AbortSignal | undefined): Promise<void> {
    if (!this.probing) return this.probed ?? Promise.resolve();
    this.probing = false;
    this.probed = (async () => {
      const host = this.base.host;
      let tls: boolean;
      if (this.engine.speaksTls) tls = await this.engine.speaksTls(this.base, signal);
      else {
        // An engine without a handshake probe: ask `GET /v2/` over TLS and see how it fails.
        try {
          const res = await this.engine.request({
            method: 'GET',
            url: new URL('/v2/', this.base),
            headers: { 'user-agent': this.userAgent },
            signal,
          });
          await discard(res.body);
          tls = true;
        } catch (err) {
          if (!this.speaksPlainHttp(err)) throw err;
          tls = false;
        }
      }
      loopbackSchemes.set(host, tls ? 'https' : 'http');
      if (!tls) this.base = new URL(`http://${host}/`);
    })();
    return this.probed;
  }

  /** Sends a request and fails unless the status is one of `ok`. */
  async expect(req: SendRequest, ok: readonly number[], what: string): Promise<HttpResponse> {
    const res = await this.send(req);
    if (!ok.includes(res.status)) throw await this.responseError(res, what);
    return res;
  }

  /**
   * The error for an unexpected answer; a refusal (401, 403) says why credentials may be missing: none
   * configured, or a credential helper that failed (anonymous access was tried instead).
   */
  async responseError(res: HttpResponse, what: string): Promise<WasmOciError> {
    const err = await responseError(res, what);
    if (res.status !== 401 && res.status !== 403) return err;
    const why = await this.authorizer.explain(this.registry);
    if (!why) return err;
    return new WasmOciError(err.code, err.message, {
      status: err.status,
      hint: why,
      ...(err.details ? { details: err.details } : {}),
    });
  }

  /** `GET /v2/`: checks that the host is a registry and that we may talk to it. */
  async ping(signal?: AbortSignal): Promise<void> {
    const res = await this.expect(
      { method: 'GET', url: '/v2/', scopes: [], signal },
      [200],
      `ping ${this.registry}`,
    );
    await discard(res.body);
  }

  close(): void {
    if (this.ownsEngine && this.engine instanceof NodeHttpEngine) this.engine.close();
  }
}
