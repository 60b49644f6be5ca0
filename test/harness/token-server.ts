import {
  createHash,
  createPrivateKey,
  type KeyObject,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSelfSigned } from './certs.js';
import { type RegistryConfig, type RegistryServer, startRegistry } from './registry.js';

/**
 * A token server for the real registry's `auth: token:` mode (Distribution 2.8), on a free loopback
 * port. `/token` answers the Docker token protocol: GET with optional Basic credentials and
 * repeated `scope` parameters, and the OAuth2 POST form (`grant_type=password` or
 * `grant_type=refresh_token`). Tokens are JWTs signed with a self-signed key the registry trusts
 * through its `rootcertbundle`.
 *
 * How Distribution 2.8 checks a token (registry/auth/token/token.go): `iss` must equal the configured
 * issuer, `aud` (a single string) the configured service, `exp` + 60 s leeway must not have passed,
 * `nbf` - 60 s must have; then the signing key comes from the header: `x5c` (a chain verified up to
 * the bundle's certificates), else `jwk`, else `kid` looked up among the bundle's public keys by their
 * libtrust key ID; finally the signature is checked for `alg`. Because of the leeway, a token whose
 * `exp` is less than a minute old still works: tests that need a rejected token use
 * `tokenLifetime` below -60 or `mint({ expiresAt })`.
 */

export type TokenAlgorithm = 'RS256' | 'ES256';

/** One entry of a token's `access` claim. */
export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenServerOptions {
  /** Accounts for Basic auth on GET and `grant_type=password`: name -> password. */
  users?: Record<string, string>;
  /** Identity tokens accepted by `grant_type=refresh_token`: token -> user name. */
  refreshTokens?: Record<string, string>;
  /**
   * Repositories anonymous clients may pull. An entry matches a name exactly, or, when it ends in
   * `/` or `*`, as a prefix (`public/` matches `public/x` and `public/a/b`).
   */
  publicRepositories?: string[];
  /** Seconds a token is valid: the `expires_in` answered and the distance from `iat` to `exp` (default 300). */
  expiresIn?: number;
  /**
   * Seconds from `iat` to the `exp` claim when it should differ from `expiresIn` (the lifetime the
   * client is told). Below -60 the registry rejects every token at once (its leeway is 60 s).
   */
  tokenLifetime?: number;
  /** The `aud` claim and the registry's `service` (default `wasm-to-oci-test-registry`). */
  service?: string;
  /** The `iss` claim and the registry's `issuer` (default `wasm-to-oci-test-token-issuer`). */
  issuer?: string;
  /** RS256 (an RSA 2048 key, default) or ES256 (a P-256 key). */
  algorithm?: TokenAlgorithm;
  /** How the JWT header names its key: `kid` (libtrust key ID, default) or `x5c` (the certificate itself). */
  keyReference?: 'kid' | 'x5c';
}

/** One request to `/token`, as the server saw and answered it. */
export interface TokenRequest {
  method: string;
  /** Requested scopes, each `type:name:actions`, in the order sent (space-separated lists split). */
  scopes: string[];
  /** The `account` query parameter (GET) or the `username` form field (POST password grant). */
  account?: string;
  /** `grant_type` of a POST. */
  grant?: string;
  /** The Authorization header, verbatim. */
  authorization?: string;
  /** The `service` parameter sent. */
  service?: string;
  /** The `client_id` form field of a POST. */
  clientId?: string;
  /** The `access_type` form field of a POST. */
  accessType?: string;
  /** Whom the token was issued to (absent for anonymous tokens and refusals). */
  user?: string;
  /** What the issued token grants (absent on refusals). */
  granted?: AccessEntry[];
  /** The HTTP status answered. */
  status: number;
}

export interface MintOptions {
  subject?: string;
  access?: AccessEntry[];
  /** Unix seconds; default now. */
  issuedAt?: number;
  /** Unix seconds; default `issuedAt`. */
  notBefore?: number;
  /** Unix seconds; default `issuedAt + expiresIn`. */
  expiresAt?: number;
  /** Default the server's service. */
  audience?: string;
  /** Default the server's issuer. */
  issuer?: string;
}

export interface TokenServer {
  /** The realm: `http://127.0.0.1:<port>/token`. */
  url: string;
  service: string;
  issuer: string;
  /** The signer's self-signed certificate (PEM file), for the registry's `rootcertbundle`. */
  rootCertPath: string;
  /** The libtrust key ID of the signing key (the `kid` header in `kid` mode). */
  keyId: string;
  /** Every `/token` request so far, oldest first. Tests may clear it (`requests.length = 0`). */
  requests: TokenRequest[];
  /** Signs a token with the server's key and any claims, e.g. one that expired long ago. */
  mint(options?: MintOptions): string;
  stop(): Promise<void>;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32NoPadding(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32[(buffer >> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * The libtrust key ID of a public key: SHA-256 of its DER SubjectPublicKeyInfo, the first 240 bits,
 * base32 without padding, in groups of four joined by `:` (the last group takes any remainder).
 */
export function libtrustKeyId(spkiDer: Uint8Array): string {
  const digest = createHash('sha256').update(spkiDer).digest().subarray(0, 30);
  const s = base32NoPadding(digest);
  const groups: string[] = [];
  let i = 0;
  for (; i < Math.floor(s.length / 4) - 1; i++) groups.push(s.slice(i * 4, i * 4 + 4));
  groups.push(s.slice(i * 4));
  return groups.join(':');
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/** `type:name:actions`, where type may carry a class (`repository(plugin)`) and name may not hold `:`. */
function parseScope(scope: string): AccessEntry | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const actions = scope
    .slice(last + 1)
    .split(',')
    .filter((a) => a !== '');
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions };
}

function splitScopes(values: string[]): string[] {
  return values.flatMap((v) => v.split(' ')).filter((s) => s !== '');
}

function parseBasic(header: string): { user: string; password: string } | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(header.trim());
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function readBody(req: http.IncomingMessage, limit = 64 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startTokenServer(options: TokenServerOptions = {}): Promise<TokenServer> {
  const service = options.service ?? 'wasm-to-oci-test-registry';
  const issuer = options.issuer ?? 'wasm-to-oci-test-token-issuer';
  const algorithm = options.algorithm ?? 'RS256';
  const keyReference = options.keyReference ?? 'kid';
  const expiresIn = options.expiresIn ?? 300;
  const tokenLifetime = options.tokenLifetime ?? expiresIn;
  const users = options.users ?? {};
  const publicRepositories = options.publicRepositories ?? [];
  /** Refresh (identity) tokens -> user: the configured ones and those handed out. */
  const refreshTokens = new Map<string, string>(Object.entries(options.refreshTokens ?? {}));
  const requests: TokenRequest[] = [];

  const dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-token-server-'));
  let signer: Awaited<ReturnType<typeof makeSelfSigned>>;
  try {
    signer = await makeSelfSigned(dir, 'token-signer', { keyType: algorithm === 'ES256' ? 'ec' : 'rsa' });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const privateKey: KeyObject = createPrivateKey(signer.keyPem);
  const certificate = new X509Certificate(signer.certPem);
  const keyId = libtrustKeyId(certificate.publicKey.export({ type: 'spki', format: 'der' }));
  const header =
    keyReference === 'x5c'
      ? { typ: 'JWT', alg: algorithm, x5c: [certificate.raw.toString('base64')] }
      : { typ: 'JWT', alg: algorithm, kid: keyId };
  const encodedHeader = b64url(JSON.stringify(header));

  const mint = (m: MintOptions = {}): string => {
    const iat = m.issuedAt ?? Math.floor(Date.now() / 1000);
    const claims = {
      iss: m.issuer ?? issuer,
      sub: m.subject ?? '',
      aud: m.audience ?? service,
      exp: m.expiresAt ?? iat + tokenLifetime,
      nbf: m.notBefore ?? iat,
      iat,
      jti: randomBytes(16).toString('hex'),
      access: m.access ?? [],
    };
    const input = `${encodedHeader}.${b64url(JSON.stringify(claims))}`;
    // JWS ES256 wants the raw r||s pair, not DER; RS256 is PKCS#1 v1.5 with SHA-256.
    const signature =
      algorithm === 'ES256'
        ? sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' })
        : sign('sha256', Buffer.from(input), privateKey);
    return `${input}.${signature.toString('base64url')}`;
  };

  const isPublic = (name: string) =>
    publicRepositories.some((p) =>
      p.endsWith('/') ? name.startsWith(p) : p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p,
    );

  /** What a user (or anonymous, `undefined`) gets for the scopes asked: unions per resource, empty grants dropped. */
  const grant = (user: string | undefined, scopes: string[]): AccessEntry[] => {
    const out: AccessEntry[] = [];
    for (const scope of scopes) {
      const wanted = parseScope(scope);
      if (!wanted) continue;
      let actions = wanted.actions;
      if (user === undefined) {
        actions =
          wanted.type === 'repository' && isPublic(wanted.name) ? actions.filter((a) => a === 'pull') : [];
      }
      if (actions.length === 0) continue;
      const existing = out.find((e) => e.type === wanted.type && e.name === wanted.name);
      if (existing) {
        for (const a of actions) if (!existing.actions.includes(a)) existing.actions.push(a);
      } else {
        out.push({ type: wanted.type, name: wanted.name, actions: [...new Set(actions)] });
      }
    }
    return out;
  };

  const send = (
    res: http.ServerResponse,
    status: number,
    body: unknown,
    headers: http.OutgoingHttpHeaders = {},
  ) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      ...headers,
    });
    res.end(text);
  };

  const answerToken = (
    res: http.ServerResponse,
    record: TokenRequest,
    user: string | undefined,
    refreshToken: string | undefined,
  ) => {
    const issuedAt = Math.floor(Date.now() / 1000);
    const access = grant(user, record.scopes);
    const token = mint({ subject: user ?? '', access, issuedAt });
    record.status = 200;
    record.granted = access;
    if (user !== undefined) record.user = user;
    requests.push(record);
    send(res, 200, {
      token,
      access_token: token,
      expires_in: expiresIn,
      issued_at: new Date(issuedAt * 1000).toISOString(),
      ...(refreshToken !== undefined ? { refresh_token: refreshToken } : {}),
    });
  };

  const refuse = (res: http.ServerResponse, record: TokenRequest, status: number, body: unknown) => {
    record.status = status;
    requests.push(record);
    const headers: http.OutgoingHttpHeaders =
      status === 401 && record.method === 'GET'
        ? { 'www-authenticate': 'Basic realm="wasm-to-oci test token server"' }
        : {};
    send(res, status, body, headers);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://token-server');
    if (url.pathname !== '/token') {
      req.resume();
      send(res, 404, { errors: [{ code: 'NOT_FOUND', message: `no such endpoint ${url.pathname}` }] });
      return;
    }
    const authorization = req.headers.authorization;
    if (req.method === 'GET') {
      req.resume();
      const record: TokenRequest = {
        method: 'GET',
        scopes: splitScopes(url.searchParams.getAll('scope')),
        status: 0,
      };
      const account = url.searchParams.get('account');
      const askedService = url.searchParams.get('service');
      if (account !== null) record.account = account;
      if (askedService !== null) record.service = askedService;
      if (authorization !== undefined) record.authorization = authorization;
      if (authorization === undefined) {
        answerToken(res, record, undefined, undefined);
        return;
      }
      const basic = parseBasic(authorization);
      if (!basic || users[basic.user] === undefined || users[basic.user] !== basic.password) {
        refuse(res, record, 401, {
          errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password' }],
        });
        return;
      }
      answerToken(res, record, basic.user, undefined);
      return;
    }
    if (req.method === 'POST') {
      const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
      const body = await readBody(req);
      const form = new URLSearchParams(body);
      const record: TokenRequest = {
        method: 'POST',
        scopes: splitScopes(form.getAll('scope')),
        status: 0,
      };
      const grantType = form.get('grant_type');
      const username = form.get('username');
      const askedService = form.get('service');
      const clientId = form.get('client_id');
      const accessType = form.get('access_type');
      if (grantType !== null) record.grant = grantType;
      if (username !== null) record.account = username;
      if (askedService !== null) record.service = askedService;
      if (clientId !== null) record.clientId = clientId;
      if (accessType !== null) record.accessType = accessType;
      if (authorization !== undefined) record.authorization = authorization;
      if (type !== 'application/x-www-form-urlencoded') {
        refuse(res, record, 400, {
          error: 'invalid_request',
          error_description: `expected application/x-www-form-urlencoded, got ${type || 'no content type'}`,
        });
        return;
      }
      const offline = accessType === 'offline';
      if (grantType === 'password') {
        const password = form.get('password');
        if (
          username === null ||
          password === null ||
          users[username] === undefined ||
          users[username] !== password
        ) {
          refuse(res, record, 401, {
            error: 'invalid_grant',
            error_description: 'incorrect username or password',
          });
          return;
        }
        const refreshToken = randomBytes(24).toString('base64url');
        refreshTokens.set(refreshToken, username);
        answerToken(res, record, username, refreshToken);
        return;
      }
      if (grantType === 'refresh_token') {
        const refreshToken = form.get('refresh_token');
        const user = refreshToken === null ? undefined : refreshTokens.get(refreshToken);
        if (refreshToken === null || user === undefined) {
          refuse(res, record, 401, {
            error: 'invalid_grant',
            error_description: 'unknown or revoked refresh token',
          });
          return;
        }
        answerToken(res, record, user, offline ? refreshToken : undefined);
        return;
      }
      refuse(res, record, 400, {
        error: 'unsupported_grant_type',
        error_description: `grant_type ${JSON.stringify(grantType)} is not supported`,
      });
      return;
    }
    req.resume();
    send(
      res,
      405,
      { errors: [{ code: 'UNSUPPORTED', message: `method ${req.method} not allowed` }] },
      { allow: 'GET, POST' },
    );
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) res.destroy();
      else send(res, 500, { error: 'server_error', error_description: String(err) });
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootCertPath: signer.certPath,
    keyId,
    requests,
    mint,
    stop: async () => {
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts the real registry with `auth: token:` pointing at `tokenServer` (realm, service, issuer,
 * rootcertbundle). The rest of `config` goes to startRegistry as it is; `config.extraYaml`, if any,
 * is appended after the auth section and must be top-level YAML too.
 */
export function startTokenRegistry(
  tokenServer: Pick<TokenServer, 'url' | 'service' | 'issuer' | 'rootCertPath'>,
  config: RegistryConfig = {},
): Promise<RegistryServer> {
  const auth = [
    'auth:',
    '  token:',
    `    realm: ${JSON.stringify(tokenServer.url)}`,
    `    service: ${JSON.stringify(tokenServer.service)}`,
    `    issuer: ${JSON.stringify(tokenServer.issuer)}`,
    `    rootcertbundle: ${JSON.stringify(tokenServer.rootCertPath)}`,
    '',
  ].join('\n');
  return startRegistry({ ...config, extraYaml: `${auth}${config.extraYaml ?? ''}` });
}
