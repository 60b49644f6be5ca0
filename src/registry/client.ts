import { Authorizer, type CredentialSource } from '../auth/authorizer.js';
import { WasmOciError } from '../errors.js';
import {
  discard,
  type HttpBody,
  type HttpEngine,
  type HttpResponse,
  header,
  NodeHttpEngine,
} from '../http.js';
import { isLoopback, registryApiHost } from '../reference.js';
import { USER_AGENT } from '../version.js';
import { responseError } from './errors.js';

export interface RegistryOptions {
  /** The HTTP engine; by default a node:http(s) engine built from the TLS options below. */
  engine?: HttpEngine | undefined;
  /** Talk plain HTTP to this registry (loopback registries use it without asking). */
  plainHttp?: boolean | undefined;
  /** Skip TLS certificate verification. */
  insecure?: boolean | undefined;
  /** Where credentials come from; anonymous when absent. */
  credentials?: CredentialSource | undefined;
  /** Debug log sink (secrets are redacted before they reach it). */
  log?: ((line: string) => void) | undefined;
  userAgent?: string | undefined;
}

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

/**
 * One registry host: its base URL, its authorizer and the rule for attaching credentials. Credentials go
 * only to the registry's own origin, never to a redirect target or an upload location on another host.
 */
export class RegistryClient {
  readonly registry: string;
  readonly baseUrl: URL;
  readonly engine: HttpEngine;
  private readonly authorizer: Authorizer;
  private readonly ownsEngine: boolean;
  private readonly userAgent: string;

  constructor(registry: string, options: RegistryOptions = {}) {
    this.registry = registry;
    const plain = options.plainHttp ?? isLoopback(registry);
    this.baseUrl = new URL(`${plain ? 'http' : 'https'}://${registryApiHost(registry)}/`);
    this.ownsEngine = options.engine === undefined;
    this.engine =
      options.engine ?? new NodeHttpEngine({ insecure: options.insecure ?? false, log: options.log });
    this.userAgent = options.userAgent ?? USER_AGENT;
    this.authorizer = new Authorizer({
      engine: this.engine,
      credentials: options.credentials,
      userAgent: this.userAgent,
    });
  }

  url(path: string): URL {
    return new URL(path, this.baseUrl);
  }

  /**
   * Sends a request, answering a 401 challenge once. A streamed body cannot be sent twice, so callers
   * send streams only after an earlier request on the same scopes has settled authorization.
   */
  async send(req: SendRequest): Promise<HttpResponse> {
    let url = typeof req.url === 'string' ? this.url(req.url) : req.url;
    let method = req.method;
    let body = req.body;
    let retriedAuth = false;
    for (let redirects = 0; ; ) {
      const sameOrigin = url.origin === this.baseUrl.origin;
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...(req.headers ?? {}) };
      let authorization: string | undefined;
      if (sameOrigin) {
        authorization = await this.authorizer.authorization(this.registry, req.scopes, req.signal);
        if (authorization) headers.authorization = authorization;
      } else {
        // Another host (a storage redirect, an upload location): none of the registry's headers.
        for (const name of Object.keys(headers))
          if (name !== 'user-agent' && name !== 'range') delete headers[name];
      }
      const res = await this.engine.request({
        method,
        url,
        headers,
        body,
        signal: req.signal,
        largeBody: req.largeBody,
        sink: req.sink,
      });
      if (res.status === 401 && sameOrigin && !retriedAuth) {
        retriedAuth = true;
        const replayable = body === undefined || body instanceof Uint8Array;
        let retry = false;
        try {
          retry =
            replayable &&
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

  /** Sends a request and fails unless the status is one of `ok`. */
  async expect(req: SendRequest, ok: readonly number[], what: string): Promise<HttpResponse> {
    const res = await this.send(req);
    if (!ok.includes(res.status)) throw await responseError(res, what);
    return res;
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
