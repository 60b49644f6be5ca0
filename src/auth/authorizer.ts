import { codeForStatus, WasmOciError } from '../errors.js';
import { isLoopback } from '../reference.js';
import { discard, readCapped } from '../transport/body.js';
import { type HttpEngine, type HttpResponse, header } from '../transport/types.js';
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
  /**
   * A bearer token for the registry itself (Docker config `registrytoken`): sent as it is to a
   * bearer challenge, with no token server asked, as Docker does.
   */
  registryToken?: string | undefined;
}

/** Looks up the credential for a registry host (`host[:port]` as the user typed it). */
export type CredentialSource = (registry: string) => Promise<Credential | undefined>;

export const anonymous: CredentialSource = async () => undefined;

export interface CachedToken {
  token: string;
  /** Epoch ms after which the token must not be used. */
  expiresAt: number;
}

/** What a token request asks for: the realm, the service it names, the scopes wanted. */
interface TokenAsk {
  realm: URL;
  service: string | undefined;
  scopes: string[];
  signal: AbortSignal | undefined;
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
  /** The registry's own base URL (its scheme decides whether a plain-HTTP realm may get secrets). */
  registryUrl?: () => URL;
}

/** Tokens are refreshed a little before they expire, so a request never races the expiry. */
const EXPIRY_MARGIN_MS = 5_000;
const DEFAULT_TOKEN_LIFETIME_S = 60;
/** Tokens are not trusted to live longer than a day, whatever the server says. */
const MAX_TOKEN_LIFETIME_S = 24 * 60 * 60;

export class Authorizer {
  private readonly engine: HttpEngine;
  private readonly credentials: CredentialSource;
  private readonly now: () => number;
  private readonly hosts = new Map<string, HostState>();
  private readonly credentialCache = new Map<string, Promise<Credential | undefined>>();
  private readonly problems = new Map<string, string>();
  private readonly userAgent: string | undefined;
  private readonly registryUrl: (() => URL) | undefined;

  constructor(options: AuthorizerOptions) {
    this.engine = options.engine;
    this.credentials = options.credentials ?? anonymous;
    this.now = options.now ?? Date.now;
    this.userAgent = options.userAgent;
    this.registryUrl = options.registryUrl;
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
    // A refused registry token cannot be renewed: there is nothing more to try.
    if (stale && (await this.credential(registry))?.registryToken) return false;
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
    return basicAuthorization(cred.username, cred.password);
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

  /**
   * A token from the challenge's realm (Distribution token spec), by the one grant the credential
   * allows: the refresh-token grant for an identity token; for a user name and password a `GET` with
   * Basic credentials, falling back to the OAuth2 password grant on a realm that answers 404 or 405;
   * without credentials an anonymous `GET`.
   */
  private async fetchToken(
    registry: string,
    challenge: Challenge,
    scopes: string[],
    signal?: AbortSignal,
  ): Promise<CachedToken> {
    const cred = await this.credential(registry);
    if (cred?.registryToken) {
      return { token: cred.registryToken, expiresAt: this.now() + MAX_TOKEN_LIFETIME_S * 1000 };
    }
    const realm = this.realm(registry, challenge);
    const secret = cred?.identityToken !== undefined || (cred?.username && cred.password !== undefined);
    if (secret) this.checkRealmForSecrets(registry, realm);
    const ask: TokenAsk = { realm, service: challenge.params.service, scopes, signal };
    let res: HttpResponse;
    if (cred?.identityToken) res = await this.refreshTokenGrant(ask, cred.identityToken);
    else if (cred?.username && cred.password !== undefined)
      res = await this.basicGet(ask, cred.username, cred.password);
    else res = await this.anonymousGet(ask);
    return this.tokenOf(res, realm.host, Boolean(cred));
  }

  private tokenHeaders(): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.userAgent) headers['user-agent'] = this.userAgent;
    return headers;
  }

  /** The realm's URL with the `GET` parameters: `service`, each `scope`, and `account` when named. */
  private tokenUrl(ask: TokenAsk, account?: string): URL {
    const url = new URL(ask.realm);
    if (ask.service) url.searchParams.set('service', ask.service);
    for (const scope of ask.scopes) url.searchParams.append('scope', scope);
    if (account !== undefined) url.searchParams.set('account', account);
    return url;
  }

  /** The OAuth2 form of a grant: its own fields, then `service`, `client_id` and the scopes. */
  private tokenForm(ask: TokenAsk, grant: Record<string, string>): Buffer {
    const form = new URLSearchParams(grant);
    if (ask.service) form.set('service', ask.service);
    form.set('client_id', 'wasm-to-oci');
    if (ask.scopes.length) form.set('scope', ask.scopes.join(' '));
    return Buffer.from(form.toString());
  }

  private postForm(ask: TokenAsk, grant: Record<string, string>): Promise<HttpResponse> {
    return this.engine.request({
      method: 'POST',
      url: new URL(ask.realm),
      headers: { ...this.tokenHeaders(), 'content-type': 'application/x-www-form-urlencoded' },
      body: this.tokenForm(ask, grant),
      signal: ask.signal,
    });
  }

  private refreshTokenGrant(ask: TokenAsk, refreshToken: string): Promise<HttpResponse> {
    return this.postForm(ask, { grant_type: 'refresh_token', refresh_token: refreshToken });
  }

  private passwordGrant(ask: TokenAsk, username: string, password: string): Promise<HttpResponse> {
    return this.postForm(ask, { grant_type: 'password', username, password });
  }

  private anonymousGet(ask: TokenAsk): Promise<HttpResponse> {
    return this.engine.request({
      method: 'GET',
      url: this.tokenUrl(ask),
      headers: this.tokenHeaders(),
      signal: ask.signal,
    });
  }

  private async basicGet(ask: TokenAsk, username: string, password: string): Promise<HttpResponse> {
    const res = await this.engine.request({
      method: 'GET',
      url: this.tokenUrl(ask, username),
      headers: { ...this.tokenHeaders(), authorization: basicAuthorization(username, password) },
      signal: ask.signal,
    });
    if (res.status !== 404 && res.status !== 405) return res;
    // This realm only speaks OAuth2 POST: use the password grant.
    await discard(res.body);
    return this.passwordGrant(ask, username, password);
  }

  /** The token of a token server's answer, or the error its status calls for. */
  private async tokenOf(res: HttpResponse, host: string, hadCredentials: boolean): Promise<CachedToken> {
    const text = (
      await readCapped(res.body, MAX_TOKEN_RESPONSE, { what: `the answer of token server ${host}` })
    ).toString('utf8');
    if (res.status !== 200) {
      throw new WasmOciError(
        codeForStatus(res.status),
        `token request to ${host} failed with HTTP ${res.status}`,
        {
          status: res.status,
          hint: hadCredentials
            ? 'check the credentials for this registry'
            : 'this registry may need credentials: log in first',
        },
      );
    }
    return parseTokenResponse(text, host, this.now());
  }

  /** The challenge's realm as a URL; only http(s) realms are asked for tokens. */
  private realm(registry: string, challenge: Challenge): URL {
    const realm = challenge.params.realm;
    if (!realm) throw new WasmOciError('REGISTRY', `${registry} sent a Bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch (cause) {
      throw new WasmOciError('REGISTRY', `${registry} sent an invalid token realm "${realm.slice(0, 200)}"`, {
        cause,
      });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new WasmOciError(
        'REGISTRY',
        `${registry} sent a token realm with scheme "${url.protocol.replace(/:$/, '')}"; only http and https are used`,
        { hint: 'the registry is misconfigured or not what it claims to be' },
      );
    }
    return url;
  }

  /**
   * Secrets go to a plain-HTTP realm only when the registry itself speaks plain HTTP or the realm is on
   * this machine: an https registry must not have its users' passwords sent in clear text elsewhere.
   */
  private checkRealmForSecrets(registry: string, realm: URL): void {
    if (realm.protocol !== 'http:') return;
    if (this.registryUrl?.().protocol === 'http:' || isLoopback(realm.host)) return;
    throw new WasmOciError(
      'REGISTRY',
      `${registry} asks for credentials to be sent in clear text to ${realm.origin}; refused`,
      { hint: 'the token realm of an https registry must be https; nothing was sent' },
    );
  }
}

export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** Token responses are small; anything bigger is not one. */
const MAX_TOKEN_RESPONSE = 1024 * 1024;

/** A token is sent back in a header: visible ASCII only (JWTs and opaque token68 strings). */
const TOKEN_TEXT = /^[\x21-\x7e]{1,16384}$/;

/**
 * The token of a token server's answer (`token` or `access_token`) and its lifetime (`expires_in`,
 * default 60 s). Anything else is an error naming the server.
 */
export function parseTokenResponse(text: string, host: string, now: number): CachedToken {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (cause) {
    throw new WasmOciError('REGISTRY', `token server ${host} answered with invalid JSON`, { cause });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new WasmOciError('REGISTRY', `token server ${host} answered with something that is not a token`);
  }
  const fields = body as { token?: unknown; access_token?: unknown; expires_in?: unknown };
  const token = typeof fields.token === 'string' && fields.token !== '' ? fields.token : fields.access_token;
  if (typeof token !== 'string' || token === '') {
    throw new WasmOciError('REGISTRY', `token server ${host} sent no token`);
  }
  if (!TOKEN_TEXT.test(token)) {
    throw new WasmOciError('REGISTRY', `token server ${host} sent a malformed token`, {
      hint: 'a token must be printable ASCII without spaces or line breaks',
    });
  }
  const expires = fields.expires_in;
  const lifetime =
    typeof expires === 'number' && Number.isFinite(expires) && expires > 0
      ? Math.min(expires, MAX_TOKEN_LIFETIME_S)
      : DEFAULT_TOKEN_LIFETIME_S;
  return { token, expiresAt: now + lifetime * 1000 - EXPIRY_MARGIN_MS };
}
