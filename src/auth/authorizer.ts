import { WasmOciError } from '../errors.js';
import type { HttpEngine, HttpResponse } from '../http.js';
import { header, readText } from '../http.js';
import { type Challenge, parseChallenges } from './challenge.js';
import { normalizeScopes, scopeKey } from './scope.js';

/**
 * Registry authentication, reacting to the registry's 401 challenge as Docker and oras do. It knows
 * nothing of files or helper programs: credentials arrive through a `CredentialSource`, which the
 * credentials room (Docker config, helpers, flags) provides.
 */

export interface Credential {
  username?: string | undefined;
  password?: string | undefined;
  /** An OAuth2 refresh token (Docker config `identitytoken`, as ACR leaves it). */
  identityToken?: string | undefined;
}

/** Looks up the credential for a registry host (`host[:port]` as the user typed it). */
export type CredentialSource = (registry: string) => Promise<Credential | undefined>;

export const anonymous: CredentialSource = async () => undefined;

interface CachedToken {
  token: string;
  /** Epoch ms after which the token must not be used. */
  expiresAt: number;
}

interface HostState {
  /** The challenge the host answered with last; lets later requests authorize up front. */
  challenge?: Challenge;
  tokens: Map<string, CachedToken>;
  pending: Map<string, Promise<CachedToken>>;
}

export interface AuthorizerOptions {
  engine: HttpEngine;
  credentials?: CredentialSource | undefined;
  /** Clock for token expiry; tests pass their own. */
  now?: () => number;
  userAgent?: string;
}

/** Tokens are refreshed a little before they expire, so a request never races the expiry. */
const EXPIRY_MARGIN_MS = 5_000;
const DEFAULT_TOKEN_LIFETIME_S = 60;

export class Authorizer {
  private readonly engine: HttpEngine;
  private readonly credentials: CredentialSource;
  private readonly now: () => number;
  private readonly hosts = new Map<string, HostState>();
  private readonly credentialCache = new Map<string, Promise<Credential | undefined>>();
  private readonly problems = new Map<string, string>();
  private readonly userAgent: string | undefined;

  constructor(options: AuthorizerOptions) {
    this.engine = options.engine;
    this.credentials = options.credentials ?? anonymous;
    this.now = options.now ?? Date.now;
    this.userAgent = options.userAgent;
  }

  private state(registry: string): HostState {
    let state = this.hosts.get(registry);
    if (!state) {
      state = { tokens: new Map(), pending: new Map() };
      this.hosts.set(registry, state);
    }
    return state;
  }

  /**
   * The credential for a registry, looked up once. A lookup that fails (a broken credential helper)
   * means anonymous access; the reason is kept for `explain()`, in case the registry then refuses.
   */
  private credential(registry: string): Promise<Credential | undefined> {
    let pending = this.credentialCache.get(registry);
    if (!pending) {
      pending = this.credentials(registry).catch((err: unknown) => {
        this.problems.set(registry, err instanceof Error ? err.message : String(err));
        return undefined;
      });
      this.credentialCache.set(registry, pending);
    }
    return pending;
  }

  /**
   * Why a refused request may have been refused, for the error's hint: a credential lookup that failed,
   * or no credentials at all.
   */
  async explain(registry: string): Promise<string | undefined> {
    const credential = await this.credential(registry);
    const problem = this.problems.get(registry);
    if (problem) return `no credentials were used: ${problem}`;
    if (!credential) return `no credentials for ${registry}: log in with "wasm-to-oci login ${registry}"`;
    return undefined;
  }

  /** The Authorization header for a request with these scopes, when one is known without asking. */
  async authorization(
    registry: string,
    scopes: readonly string[],
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const state = this.hosts.get(registry);
    const challenge = state?.challenge;
    if (!state || !challenge) return undefined;
    if (challenge.scheme === 'basic') return this.basic(registry);
    if (challenge.scheme === 'bearer') {
      const token = await this.token(registry, state, challenge, scopes, false, signal);
      return `Bearer ${token.token}`;
    }
    return undefined;
  }

  /**
   * Handles a 401: remembers the challenge and gets what it asks for. Returns true when the request
   * should be retried with a fresh `authorization()`; false when there is nothing more to try.
   */
  async onUnauthorized(
    registry: string,
    res: HttpResponse,
    scopes: readonly string[],
    hadAuthorization: boolean,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const challenges = parseChallenges(header(res, 'www-authenticate'));
    const challenge =
      challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (!challenge) return false;
    const state = this.state(registry);
    const previous = state.challenge;
    state.challenge = challenge;
    if (challenge.scheme === 'basic') {
      // Retrying makes sense only when we did not send basic credentials already.
      return !hadAuthorization && (await this.basic(registry)) !== undefined;
    }
    // The challenge may ask for more than we did (e.g. pull on a mount's source repository).
    const wanted = normalizeScopes([...scopes, ...(challenge.params.scope ? [challenge.params.scope] : [])]);
    const key = scopeKey(wanted);
    const stale = hadAuthorization && previous?.scheme === 'bearer';
    if (stale) state.tokens.delete(key);
    await this.token(registry, state, challenge, wanted, stale, signal);
    if (key !== scopeKey(scopes)) {
      // Remember the wider scope set under the narrower key too, so the retry finds it.
      const token = state.tokens.get(key);
      if (token) state.tokens.set(scopeKey(scopes), token);
    }
    return true;
  }

  private async basic(registry: string): Promise<string | undefined> {
    const cred = await this.credential(registry);
    if (!cred?.username || cred.password === undefined) return undefined;
    return `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`;
  }

  private async token(
    registry: string,
    state: HostState,
    challenge: Challenge,
    scopes: readonly string[],
    forceFresh: boolean,
    signal?: AbortSignal,
  ): Promise<CachedToken> {
    const key = scopeKey(scopes);
    const cached = state.tokens.get(key);
    if (!forceFresh && cached && cached.expiresAt > this.now()) return cached;
    let pending = state.pending.get(key);
    if (!pending) {
      pending = this.fetchToken(registry, challenge, normalizeScopes(scopes), signal).finally(() =>
        state.pending.delete(key),
      );
      state.pending.set(key, pending);
    }
    const token = await pending;
    state.tokens.set(key, token);
    return token;
  }

  private async fetchToken(
    registry: string,
    challenge: Challenge,
    scopes: string[],
    signal?: AbortSignal,
  ): Promise<CachedToken> {
    const realm = challenge.params.realm;
    if (!realm) throw new WasmOciError('REGISTRY', `${registry} sent a Bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch (cause) {
      throw new WasmOciError('REGISTRY', `${registry} sent an invalid token realm "${realm}"`, { cause });
    }
    const service = challenge.params.service;
    const cred = await this.credential(registry);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.userAgent) headers['user-agent'] = this.userAgent;
    let res: HttpResponse;
    if (cred?.identityToken) {
      // OAuth2 refresh-token grant (Distribution token spec, ACR).
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken });
      if (service) form.set('service', service);
      form.set('client_id', 'wasm-to-oci');
      if (scopes.length) form.set('scope', scopes.join(' '));
      headers['content-type'] = 'application/x-www-form-urlencoded';
      res = await this.engine.request({
        method: 'POST',
        url,
        headers,
        body: Buffer.from(form.toString()),
        signal,
      });
    } else {
      if (service) url.searchParams.set('service', service);
      for (const scope of scopes) url.searchParams.append('scope', scope);
      if (cred?.username && cred.password !== undefined) {
        headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`;
        url.searchParams.set('account', cred.username);
      }
      res = await this.engine.request({ method: 'GET', url, headers, signal });
      if ((res.status === 404 || res.status === 405) && cred?.username && cred.password !== undefined) {
        // This realm only speaks OAuth2 POST: use the password grant.
        await readText(res.body);
        const form = new URLSearchParams({
          grant_type: 'password',
          username: cred.username,
          password: cred.password,
        });
        if (service) form.set('service', service);
        form.set('client_id', 'wasm-to-oci');
        if (scopes.length) form.set('scope', scopes.join(' '));
        const { authorization: _basic, ...plain } = headers;
        res = await this.engine.request({
          method: 'POST',
          url: new URL(realm),
          headers: { ...plain, 'content-type': 'application/x-www-form-urlencoded' },
          body: Buffer.from(form.toString()),
          signal,
        });
      }
    }
    const text = await readText(res.body);
    if (res.status !== 200) {
      const code = res.status === 401 ? 'UNAUTHORIZED' : res.status === 403 ? 'DENIED' : 'REGISTRY';
      throw new WasmOciError(code, `token request to ${url.host} failed with HTTP ${res.status}`, {
        status: res.status,
        hint: cred
          ? 'check the credentials for this registry'
          : 'this registry may need credentials: log in first',
      });
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(text);
    } catch (cause) {
      throw new WasmOciError('REGISTRY', `token server ${url.host} answered with invalid JSON`, { cause });
    }
    const token = typeof body.token === 'string' ? body.token : body.access_token;
    if (typeof token !== 'string' || token === '') {
      throw new WasmOciError('REGISTRY', `token server ${url.host} sent no token`);
    }
    const lifetime =
      typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_LIFETIME_S;
    return { token, expiresAt: this.now() + lifetime * 1000 - EXPIRY_MARGIN_MS };
  }
}
