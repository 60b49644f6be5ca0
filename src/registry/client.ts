import { Readable } from 'node:stream';
import { Authorizer, type CredentialSource } from '../auth/authorizer.js';
import { abortError, hasCode, WasmOciError } from '../errors.js';
import { isLoopback, registryApiHost } from '../reference.js';
import { discard, readCapped, readText } from '../transport/body.js';
import { NodeHttpEngine, type NodeHttpOptions } from '../transport/engine.js';
import { isTransient } from '../transport/errors.js';
import {
  DEFAULT_RETRY,
  RetryBudget,
  type RetryClock,
  type RetryPolicy,
  SYSTEM_CLOCK,
} from '../transport/retry.js';
import {
  type HttpBody,
  type HttpEngine,
  type HttpRequest,
  type HttpResponse,
  header,
} from '../transport/types.js';
import { USER_AGENT } from '../version.js';
import { api } from './api.js';
import { rateLimitError, responseError } from './errors.js';

export interface RegistryOptions extends Omit<NodeHttpOptions, 'log'> {
  /** The HTTP engine; by default a node:http(s) engine built from the TLS, proxy and timeout options. */
  engine?: HttpEngine | undefined;
  /**
   * Talk plain HTTP to this registry. Without it, loopback registries are tried with TLS first and
   * with plain HTTP when they do not speak TLS (the answer is kept in `memory`).
   */
  plainHttp?: boolean | undefined;
  /** Where credentials come from; anonymous when absent. */
  credentials?: CredentialSource | undefined;
  /** Debug log sink (secrets are redacted before they reach it). */
  log?: ((line: string) => void) | undefined;
  userAgent?: string | undefined;
  /** Retry policy for transient failures; `{ attempts: 1, resumes: 0 }` turns retries off. */
  retry?: Partial<RetryPolicy> | undefined;
  /** The clock, sleep and jitter of retries (tests pass their own). */
  clock?: RetryClock | undefined;
  /**
   * Talk to this origin instead of the one `registry` names (a Notary trust server, which speaks the
   * same auth protocol); `registry` then only names whose credentials to use.
   */
  baseUrl?: URL | undefined;
  /** What the clients of one command learn about registries (shared between source and destination). */
  memory?: RegistryMemory | undefined;
  /** Called once per distinct `Warning` header text a registry sends (RFC 7234 warn-text). */
  onWarning?: ((registry: string, text: string) => void) | undefined;
  /**
   * Extra headers for the registry's own origin (never for redirects, upload locations on other hosts
   * or token servers), lower-case names. The request's own headers (`accept`, `content-type`, `range`)
   * win over them; the ones listed in `checkExtraHeaders` are refused.
   */
  headers?: Record<string, string> | undefined;
}

/** Headers the client sets itself: credentials, the origin and the message framing. */
const RESERVED_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);

/** Refuses extra headers that would replace credentials, the host or the framing (USAGE). */
export function checkExtraHeaders(headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) {
    if (RESERVED_HEADERS.has(name.toLowerCase())) {
      throw new WasmOciError('USAGE', `the header ${name} cannot be set`, {
        hint:
          name.toLowerCase() === 'authorization'
            ? 'credentials come from login, the credential options or the Docker config, never from a raw header'
            : 'it is set by the HTTP client itself',
      });
    }
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(value)) {
      throw new WasmOciError('USAGE', `the header ${JSON.stringify(name)} is not a valid HTTP header`);
    }
  }
}

/** How a registry takes blob uploads, learnt by trying (see uploads.ts). */
export type UploadScheme = 'stream' | 'chunked' | 'monolithic';

/**
 * What is learnt about registries while talking to them: which loopback registries speak TLS, which
 * upload scheme each takes, which warnings were shown. Passed in, so nothing hides in module state.
 */
export interface RegistryMemory {
  schemes: Map<string, 'https' | 'http'>;
  uploads: Map<string, UploadScheme>;
  /**
   * Registries known not to finish an upload in its POST (`POST …/uploads/?digest=` with the bytes, as
   * the distribution spec allows): they get the POST + PUT pair for blobs whose digest is known.
   */
  noSinglePost: Set<string>;
  warned: Set<string>;
}

export function registryMemory(): RegistryMemory {
  return { schemes: new Map(), uploads: new Map(), noSinglePost: new Set(), warned: new Set() };
}

const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

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
  /** The response body is a blob: fast path, timed by idleness and rate instead of a deadline. */
  largeBody?: boolean;
  /** Chooses a sink for the body from the final response's head (see HttpRequest.sinkFor). */
  sinkFor?: HttpRequest['sinkFor'];
  /** Retry transient failures of this request (default: when the body can be sent again). */
  retry?: boolean;
  /**
   * The retry budget of the operation this request is part of (a download, a read of a small body),
   * so that its retries and the operation's own share one count instead of multiplying.
   */
  budget?: RetryBudget | undefined;
}

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Headers of the registry that must never follow a request to another host. */
const REGISTRY_ONLY_HEADERS = /^(authorization|cookie|docker-.*|x-.*)$/i;

/** A body that can be sent again: nothing, bytes in memory (streams and file uploads are sent once). */
function replayable(body: HttpBody | undefined): boolean {
  return body === undefined || body instanceof Uint8Array;
}

/** RFC 7234 `Warning: 299 - "text"` values (several may come, comma-separated or repeated). */
export function warningTexts(value: string | string[] | undefined): string[] {
  const values = Array.isArray(value) ? value : value === undefined ? [] : [value];
  const texts: string[] = [];
  for (const v of values) {
    for (const m of v.matchAll(/\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"/g)) {
      const text = (m[1] ?? '').replace(/\\(.)/g, '$1').trim();
      if (text) texts.push(text.slice(0, 500));
    }
  }
  return texts;
}

/**
 * One registry host: its base URL, its authorizer and the rule for attaching credentials. Credentials go
 * only to the registry's own origin, never to a redirect target or an upload location on another host.
 * Transient failures (408, 429, 5xx, resets, timeouts) are retried with jittered exponential backoff when
 * the request can be replayed; a used-up rate limit stops at once.
 */
export class RegistryClient {
  readonly registry: string;
  readonly engine: HttpEngine;
  readonly memory: RegistryMemory;
  readonly retryPolicy: RetryPolicy;
  readonly clock: RetryClock;
  private base: URL;
  /** Set while a loopback registry's scheme is still unknown (TLS is tried first). */
  private probing: boolean;
  /** The scheme came from memory (an earlier run) and no answer has confirmed it yet. */
  private remembered: boolean;
  private probed: Promise<void> | undefined;
  private readonly authorizer: Authorizer;
  private readonly ownsEngine: boolean;
  private readonly userAgent: string;
  private readonly onWarning: RegistryOptions['onWarning'];
  private readonly extraHeaders: Record<string, string>;

  constructor(registry: string, options: RegistryOptions = {}) {
    this.registry = registry;
    this.memory = options.memory ?? registryMemory();
    const host = registryApiHost(registry);
    const known = this.memory.schemes.get(host);
    const scheme = options.plainHttp ? 'http' : isLoopback(registry) ? (known ?? 'https') : 'https';
    const loopback = !options.baseUrl && !options.plainHttp && isLoopback(registry);
    this.probing = loopback && known === undefined;
    this.remembered = loopback && known !== undefined;
    this.base = options.baseUrl
      ? new URL(options.baseUrl.href.replace(/\/*$/, '/'))
      : new URL(`${scheme}://${host}/`);
    this.ownsEngine = options.engine === undefined;
    this.engine = options.engine ?? new NodeHttpEngine(options);
    this.userAgent = options.userAgent ?? USER_AGENT;
    this.retryPolicy = { ...DEFAULT_RETRY, ...options.retry };
    this.clock = options.clock ?? SYSTEM_CLOCK;
    this.onWarning = options.onWarning;
    if (options.headers) checkExtraHeaders(options.headers);
    this.extraHeaders = Object.fromEntries(
      Object.entries(options.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
    );
    this.authorizer = new Authorizer({
      engine: this.engine,
      credentials: options.credentials,
      userAgent: this.userAgent,
      registryUrl: () => this.base,
    });
  }

  get baseUrl(): URL {
    return this.base;
  }

  url(path: string): URL {
    return new URL(path, this.base);
  }

  /** A retry budget with this client's policy and clock. */
  budget(): RetryBudget {
    return new RetryBudget(this.retryPolicy, this.clock);
  }

  /**
   * Sends a request, answering a 401 challenge once and following redirects when asked. A streamed body
   * cannot be sent twice, so callers send streams only after an earlier request on the same scopes has
   * settled authorization.
   */
  async send(req: SendRequest): Promise<HttpResponse> {
    if (!this.remembered) return this.sendOnce(req);
    // A remembered scheme may be stale (the registry was restarted with or without TLS): the first
    // answer tells, and a mismatch is probed again and the request sent once more.
    let res: HttpResponse;
    try {
      res = await this.sendOnce(req);
    } catch (err) {
      if (!this.speaksPlainHttp(err) || !replayable(req.body)) throw err;
      this.forgetScheme();
      return this.sendOnce(req);
    }
    if (res.status === 400 && this.base.protocol === 'http:' && replayable(req.body)) {
      const text = await readText(res.body, 16 * 1024).catch(() => '');
      if (/HTTP request to an HTTPS server/i.test(text)) {
        this.forgetScheme();
        return this.sendOnce(req);
      }
      this.remembered = false;
      return { ...res, body: Readable.from([Buffer.from(text)]) };
    }
    this.remembered = false;
    return res;
  }

  private forgetScheme(): void {
    this.memory.schemes.delete(this.base.host);
    this.remembered = false;
    this.probing = true;
    this.probed = undefined;
    this.base = new URL(`https://${this.base.host}/`);
  }

  private async sendOnce(req: SendRequest): Promise<HttpResponse> {
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
      const headers: Record<string, string> = {
        'user-agent': this.userAgent,
        ...(sameOrigin ? this.extraHeaders : {}),
        ...(req.headers ?? {}),
      };
      let authorization: string | undefined;
      if (sameOrigin) {
        authorization = await this.authorizer.authorization(this.registry, req.scopes, req.signal);
        if (authorization) headers.authorization = authorization;
      } else {
        // Another host (a storage redirect, an upload location): none of the registry's headers.
        for (const name of Object.keys(headers)) if (REGISTRY_ONLY_HEADERS.test(name)) delete headers[name];
      }
      const res = await this.request(
        {
          method,
          url,
          headers,
          body,
          signal: req.signal,
          largeBody: req.largeBody,
          // Only the final answer's body goes to the sink: not a 401's or a redirect's.
          sinkFor: req.sinkFor
            ? (status, h) => (status >= 200 && status < 300 ? req.sinkFor?.(status, h) : undefined)
            : undefined,
        },
        req.retry ?? replayable(body),
        req.budget,
      );
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
        url = redirectTarget(location, url);
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
   * One request with the transport's policies: retries of transient failures when `retry` (never an
   * upload PATCH, whose session state would be corrupted), a stop at a used-up rate limit, and each
   * distinct registry warning passed on once.
   */
  private async request(req: HttpRequest, retry: boolean, budget = this.budget()): Promise<HttpResponse> {
    for (;;) {
      let res: HttpResponse;
      try {
        res = await this.engine.request(req);
      } catch (err) {
        if (!retry || !isTransient(err) || !budget.failed()) throw err;
        await budget.wait(req.signal);
        continue;
      }
      this.warnings(res);
      if (res.status === 429 && /^\s*0\s*(?:;|$)/.test(header(res, 'ratelimit-remaining') ?? '')) {
        throw await rateLimitError(res, this.registry, this.clock.now());
      }
      if (retry && RETRY_STATUSES.has(res.status) && budget.failed()) {
        const wait = retryAfterMs(header(res, 'retry-after'), this.clock.now());
        await discard(res.body);
        await budget.wait(req.signal, wait);
        continue;
      }
      return res;
    }
  }

  private warnings(res: HttpResponse): void {
    if (!this.onWarning) return;
    for (const text of warningTexts(res.headers.warning)) {
      const key = `${this.registry}\n${text}`;
      if (this.memory.warned.has(key)) continue;
      this.memory.warned.add(key);
      this.onWarning(this.registry, text);
    }
  }

  /**
   * Sends a request whose answer is small (a manifest, a tag page, an upload status) and reads the whole
   * body, capped: a connection lost while the body arrives is retried like one lost before the answer.
   */
  async read(
    req: SendRequest,
    options: { cap: number; what: string; ok?: readonly number[] },
  ): Promise<{ res: HttpResponse; bytes: Buffer }> {
    const budget = this.budget();
    for (;;) {
      const res = await this.send({ ...req, budget });
      if (options.ok && !options.ok.includes(res.status)) return { res, bytes: Buffer.alloc(0) };
      try {
        return { res, bytes: await readCapped(res.body, options.cap, { what: options.what }) };
      } catch (err) {
        if (!(req.retry ?? replayable(req.body)) || !isTransient(err) || !budget.failed()) throw err;
        await budget.wait(req.signal);
      }
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
   * For a loopback registry of unknown scheme: a TLS handshake first, and plain HTTP when the answer
   * shows the registry does not speak TLS (as Docker does for localhost). A certificate problem is not
   * a reason to fall back: it is reported.
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
            url: new URL(api.ping(), this.base),
            headers: { 'user-agent': this.userAgent, ...this.extraHeaders },
            signal,
          });
          await discard(res.body);
          tls = true;
        } catch (err) {
          if (!this.speaksPlainHttp(err)) throw err;
          tls = false;
        }
      }
      this.memory.schemes.set(host, tls ? 'https' : 'http');
      if (!tls) this.base = new URL(`http://${host}/`);
    })();
    this.probed.catch(() => {
      // Reported by the request that waits for it; a later request probes again.
      this.probing = true;
    });
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
    if (res.status === 400 && !err.hint && this.base.protocol === 'http:' && (await this.speaksTls())) {
      // A HEAD's 400 has no body to say why: a GET of /v2/ asks once more, for its text.
      return new WasmOciError(err.code, err.message, {
        status: err.status,
        hint: 'the registry speaks TLS: drop the `plainHttp` option',
      });
    }
    if (res.status !== 401 && res.status !== 403) return err;
    const why = await this.authorizer.explain(this.registry);
    if (!why) return err;
    return new WasmOciError(err.code, err.message, {
      status: err.status,
      hint: why,
      ...(err.details ? { details: err.details } : {}),
    });
  }

  /** True when a plain-HTTP `GET /v2/` is answered "Client sent an HTTP request to an HTTPS server". */
  private async speaksTls(): Promise<boolean> {
    try {
      const res = await this.sendOnce({ method: 'GET', url: api.ping(), scopes: [], retry: false });
      const text = await readText(res.body, 16 * 1024).catch(() => '');
      return res.status === 400 && /HTTP request to an HTTPS server/i.test(text);
    } catch {
      return false;
    }
  }

  /** `GET /v2/`: checks that the host is a registry and that we may talk to it. */
  async ping(signal?: AbortSignal): Promise<void> {
    const res = await this.expect(
      { method: 'GET', url: api.ping(), scopes: [], signal },
      [200],
      `ping ${this.registry}`,
    );
    await discard(res.body);
  }

  /** Sleeps before a retry, failing at once when the operation is cancelled. */
  async pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) throw abortError(signal);
    await this.clock.sleep(ms, signal);
  }

  close(): void {
    if (this.ownsEngine) this.engine.close?.();
  }
}

/** `Retry-After` in milliseconds: delta seconds or an HTTP date. */
export function retryAfterMs(value: string | undefined, now: number): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Where a redirect points; only http(s) targets are followed. */
function redirectTarget(location: string, from: URL): URL {
  let url: URL;
  try {
    url = new URL(location, from);
  } catch {
    throw new WasmOciError('REGISTRY', `${from.host} sent a malformed redirect`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new WasmOciError('REGISTRY', `${from.host} redirected to a ${url.protocol} URL; refused`);
  }
  return url;
}
