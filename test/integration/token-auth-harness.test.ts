import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CertificateFiles, makeCa, makeCert, makeSelfSigned } from '../harness/certs.js';
import type { RegistryServer } from '../harness/registry.js';
import {
  libtrustKeyId,
  startTokenRegistry,
  startTokenServer,
  type TokenServer,
} from '../harness/token-server.js';

/**
 * The token-auth and PKI harnesses, checked against the real Distribution registry with plain
 * node:http(s) requests (no project code), so failures elsewhere can be trusted to be the library's.
 */

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(
  method: string,
  url: string,
  options: { headers?: Record<string, string>; body?: string; tls?: https.RequestOptions } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const headers = { ...options.headers, ...(body ? { 'content-length': String(body.length) } : {}) };
    const req = url.startsWith('https:')
      ? https.request(url, { method, headers, agent: false, ...options.tls })
      : http.request(url, { method, headers, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.end(body);
  });
}

const json = (reply: Reply) => JSON.parse(reply.body.toString('utf8')) as Record<string, unknown>;
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

function claimsOf(token: string): Record<string, unknown> {
  const payload = token.split('.')[1];
  assert.ok(payload, 'a JWT has three parts');
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
}

function headerOf(token: string): Record<string, unknown> {
  const head = token.split('.')[0];
  assert.ok(head, 'a JWT has three parts');
  return JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as Record<string, unknown>;
}

async function getToken(
  server: TokenServer,
  scopes: string[],
  extra: { authorization?: string; account?: string } = {},
): Promise<Reply> {
  const url = new URL(server.url);
  url.searchParams.set('service', server.service);
  for (const s of scopes) url.searchParams.append('scope', s);
  if (extra.account) url.searchParams.set('account', extra.account);
  return request('GET', url.href, {
    headers: extra.authorization ? { authorization: extra.authorization } : {},
  });
}

function postToken(server: TokenServer, form: Record<string, string>): Promise<Reply> {
  return request('POST', server.url, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('token server in front of the real registry (RS256, kid)', () => {
  let tokens: TokenServer;
  let registry: RegistryServer;

  before(async () => {
    tokens = await startTokenServer({
      users: { alice: 'wonderland' },
      refreshTokens: { 'alice-identity-token': 'alice' },
      publicRepositories: ['public/'],
    });
    registry = await startTokenRegistry(tokens);
  });
  after(async () => {
    await registry?.stop();
    await tokens?.stop();
  });

  it('the registry challenges /v2/ with the token server as realm', async () => {
    const reply = await request('GET', `http://${registry.host}/v2/`);
    assert.equal(reply.status, 401);
    assert.equal(
      reply.headers['www-authenticate'],
      `Bearer realm="${tokens.url}",service="${tokens.service}"`,
    );
  });

  it('the kid header is the libtrust key ID of the certificate in rootcertbundle', async () => {
    const reply = await getToken(tokens, []);
    assert.equal(reply.status, 200);
    const token = String(json(reply).token);
    const header = headerOf(token);
    assert.equal(header.alg, 'RS256');
    assert.equal(header.kid, tokens.keyId);
    assert.match(tokens.keyId, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
  });

  it('an anonymous pull token for a public repository is accepted (404 NAME_UNKNOWN, not 401)', async () => {
    const challenge = await request('GET', `http://${registry.host}/v2/public/x/tags/list`);
    assert.equal(challenge.status, 401);
    assert.match(String(challenge.headers['www-authenticate']), /scope="repository:public\/x:pull"/);

    tokens.requests.length = 0;
    const reply = await getToken(tokens, ['repository:public/x:pull']);
    assert.equal(reply.status, 200);
    const body = json(reply);
    assert.equal(body.token, body.access_token);
    assert.equal(body.expires_in, 300);
    assert.equal(typeof body.issued_at, 'string');
    assert.equal(body.refresh_token, undefined);
    const claims = claimsOf(String(body.token));
    assert.equal(claims.iss, tokens.issuer);
    assert.equal(claims.aud, tokens.service);
    assert.equal(claims.sub, '');
    assert.deepEqual(claims.access, [{ type: 'repository', name: 'public/x', actions: ['pull'] }]);

    const tags = await request('GET', `http://${registry.host}/v2/public/x/tags/list`, {
      headers: bearer(String(body.token)),
    });
    assert.equal(tags.status, 404);
    assert.equal((json(tags).errors as Array<{ code: string }>)[0]?.code, 'NAME_UNKNOWN');

    assert.equal(tokens.requests.length, 1);
    assert.deepEqual(tokens.requests[0], {
      method: 'GET',
      scopes: ['repository:public/x:pull'],
      service: tokens.service,
      granted: [{ type: 'repository', name: 'public/x', actions: ['pull'] }],
      status: 200,
    });
  });

  it('anonymous push gets an empty grant (200), which the registry refuses with insufficient_scope', async () => {
    const reply = await getToken(tokens, ['repository:private/y:pull,push', 'repository:public/z:pull,push']);
    assert.equal(reply.status, 200);
    const token = String(json(reply).token);
    assert.deepEqual(claimsOf(token).access, [{ type: 'repository', name: 'public/z', actions: ['pull'] }]);
    const upload = await request('POST', `http://${registry.host}/v2/private/y/blobs/uploads/`, {
      headers: bearer(token),
    });
    assert.equal(upload.status, 401);
    assert.match(String(upload.headers['www-authenticate']), /error="insufficient_scope"/);
  });

  it('alice (Basic auth on the GET) gets pull,push and may start an upload (202)', async () => {
    tokens.requests.length = 0;
    const reply = await getToken(tokens, ['repository:private/y:pull,push'], {
      authorization: basic('alice', 'wonderland'),
      account: 'alice',
    });
    assert.equal(reply.status, 200);
    const token = String(json(reply).token);
    assert.equal(claimsOf(token).sub, 'alice');
    const upload = await request('POST', `http://${registry.host}/v2/private/y/blobs/uploads/`, {
      headers: bearer(token),
    });
    assert.equal(upload.status, 202);
    assert.ok(upload.headers.location);

    const seen = tokens.requests[0];
    assert.equal(tokens.requests.length, 1);
    assert.equal(seen?.account, 'alice');
    assert.equal(seen?.user, 'alice');
    assert.equal(seen?.authorization, basic('alice', 'wonderland'));
    assert.deepEqual(seen?.scopes, ['repository:private/y:pull,push']);
  });

  it('a refresh-token POST works the same, and returns the refresh token only for access_type=offline', async () => {
    tokens.requests.length = 0;
    const reply = await postToken(tokens, {
      grant_type: 'refresh_token',
      refresh_token: 'alice-identity-token',
      service: tokens.service,
      scope: 'repository:private/y:pull,push repository:private/other:pull',
      client_id: 'token-auth-harness-test',
    });
    assert.equal(reply.status, 200);
    const body = json(reply);
    assert.equal(body.refresh_token, undefined);
    assert.deepEqual(claimsOf(String(body.access_token)).access, [
      { type: 'repository', name: 'private/y', actions: ['pull', 'push'] },
      { type: 'repository', name: 'private/other', actions: ['pull'] },
    ]);
    const upload = await request('POST', `http://${registry.host}/v2/private/y/blobs/uploads/`, {
      headers: bearer(String(body.access_token)),
    });
    assert.equal(upload.status, 202);
    assert.equal(tokens.requests[0]?.grant, 'refresh_token');
    assert.equal(tokens.requests[0]?.clientId, 'token-auth-harness-test');
    assert.deepEqual(tokens.requests[0]?.scopes, [
      'repository:private/y:pull,push',
      'repository:private/other:pull',
    ]);

    const offline = await postToken(tokens, {
      grant_type: 'refresh_token',
      refresh_token: 'alice-identity-token',
      service: tokens.service,
      scope: 'repository:private/y:pull',
      client_id: 'token-auth-harness-test',
      access_type: 'offline',
    });
    assert.equal(offline.status, 200);
    assert.equal(json(offline).refresh_token, 'alice-identity-token');
  });

  it('a password-grant POST returns a refresh token that works for a later refresh grant', async () => {
    const reply = await postToken(tokens, {
      grant_type: 'password',
      username: 'alice',
      password: 'wonderland',
      service: tokens.service,
      scope: 'repository:private/y:push,pull',
      client_id: 'token-auth-harness-test',
      access_type: 'offline',
    });
    assert.equal(reply.status, 200);
    const refresh = json(reply).refresh_token;
    assert.equal(typeof refresh, 'string');
    const again = await postToken(tokens, {
      grant_type: 'refresh_token',
      refresh_token: String(refresh),
      service: tokens.service,
      scope: 'repository:private/y:pull,push',
      client_id: 'token-auth-harness-test',
    });
    assert.equal(again.status, 200);
    const upload = await request('POST', `http://${registry.host}/v2/private/y/blobs/uploads/`, {
      headers: bearer(String(json(again).token)),
    });
    assert.equal(upload.status, 202);
  });

  it('wrong passwords and unknown refresh tokens get 401 with a JSON error from the token server', async () => {
    tokens.requests.length = 0;
    const get = await getToken(tokens, ['repository:private/y:pull'], {
      authorization: basic('alice', 'nope'),
    });
    assert.equal(get.status, 401);
    assert.ok(json(get).errors);
    const unknownUser = await getToken(tokens, [], { authorization: basic('mallory', 'wonderland') });
    assert.equal(unknownUser.status, 401);
    const post = await postToken(tokens, {
      grant_type: 'password',
      username: 'alice',
      password: 'nope',
      service: tokens.service,
      client_id: 'token-auth-harness-test',
    });
    assert.equal(post.status, 401);
    assert.equal(json(post).error, 'invalid_grant');
    const refresh = await postToken(tokens, {
      grant_type: 'refresh_token',
      refresh_token: 'no-such-token',
      service: tokens.service,
      client_id: 'token-auth-harness-test',
    });
    assert.equal(refresh.status, 401);
    assert.equal(json(refresh).error, 'invalid_grant');
    assert.deepEqual(
      tokens.requests.map((r) => r.status),
      [401, 401, 401, 401],
    );
    assert.ok(tokens.requests.every((r) => r.granted === undefined && r.user === undefined));
  });

  it('the registry rejects an expired token (past its 60 s leeway) and one from another issuer', async () => {
    const now = Math.floor(Date.now() / 1000);
    const access = [{ type: 'repository', name: 'private/y', actions: ['pull', 'push'] }];
    const url = `http://${registry.host}/v2/private/y/blobs/uploads/`;

    const fresh = await request('POST', url, { headers: bearer(tokens.mint({ subject: 'alice', access })) });
    assert.equal(fresh.status, 202, 'a minted token with default claims is accepted');

    const expired = tokens.mint({ subject: 'alice', access, issuedAt: now - 600, expiresAt: now - 120 });
    const reply = await request('POST', url, { headers: bearer(expired) });
    assert.equal(reply.status, 401);
    assert.match(String(reply.headers['www-authenticate']), /error="invalid_token"/);

    const good = tokens.mint({ subject: 'alice', access });
    const [head, payload, signature] = good.split('.');
    const flipped = `${signature?.startsWith('A') ? 'B' : 'A'}${signature?.slice(1)}`;
    const tampered = await request('POST', url, { headers: bearer(`${head}.${payload}.${flipped}`) });
    assert.equal(tampered.status, 401, 'a bad signature is refused');

    const foreign = tokens.mint({ subject: 'alice', access, issuer: 'someone-else' });
    assert.equal((await request('POST', url, { headers: bearer(foreign) })).status, 401);
  });
});

describe('token server variants (ES256 with x5c, lifetime below the leeway)', () => {
  let tokens: TokenServer;
  let registry: RegistryServer;
  let stale: TokenServer;
  let staleRegistry: RegistryServer;

  before(async () => {
    [tokens, stale] = await Promise.all([
      startTokenServer({ algorithm: 'ES256', keyReference: 'x5c', publicRepositories: ['public/'] }),
      startTokenServer({ publicRepositories: ['public/'], expiresIn: 1, tokenLifetime: -120 }),
    ]);
    [registry, staleRegistry] = await Promise.all([startTokenRegistry(tokens), startTokenRegistry(stale)]);
  });
  after(async () => {
    await registry?.stop();
    await staleRegistry?.stop();
    await tokens?.stop();
    await stale?.stop();
  });

  it('an ES256 token naming its key by x5c is accepted', async () => {
    const reply = await getToken(tokens, ['repository:public/x:pull']);
    const token = String(json(reply).token);
    const header = headerOf(token);
    assert.equal(header.alg, 'ES256');
    assert.equal(header.kid, undefined);
    assert.ok(Array.isArray(header.x5c));
    const tags = await request('GET', `http://${registry.host}/v2/public/x/tags/list`, {
      headers: bearer(token),
    });
    assert.equal(tags.status, 404);
  });

  it('tokenLifetime below -60 s makes tokens the registry already rejects', async () => {
    const reply = await getToken(stale, ['repository:public/x:pull']);
    assert.equal(json(reply).expires_in, 1);
    const tags = await request('GET', `http://${staleRegistry.host}/v2/public/x/tags/list`, {
      headers: bearer(String(json(reply).token)),
    });
    assert.equal(tags.status, 401);
  });
});

describe('test PKI (certs.ts)', () => {
  let dir: string;
  let ca: CertificateFiles;
  let server: CertificateFiles;
  let client: CertificateFiles;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-certs-test-'));
    ca = await makeCa(dir);
    [server, client] = await Promise.all([
      makeCert(ca, dir, 'registry', { sans: ['127.0.0.1', 'localhost', 'registry.test'] }),
      makeCert(ca, dir, 'alice-client', { sans: [], client: true }),
    ]);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function serve(options: https.ServerOptions): Promise<{ port: number; stop(): Promise<void> }> {
    const s = https.createServer(options, (req, res) => {
      const tls = req.socket as import('node:tls').TLSSocket;
      const peer = tls.getPeerCertificate();
      res.end(peer && 'subject' in peer && peer.subject ? `hello ${peer.subject.CN}` : 'hello');
    });
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    return {
      port: (s.address() as AddressInfo).port,
      stop: () =>
        new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        }),
    };
  }

  it('a leaf carries the SANs and extended key usage asked for', () => {
    const leaf = new X509Certificate(server.certPem);
    assert.equal(leaf.subjectAltName, 'IP Address:127.0.0.1, DNS:localhost, DNS:registry.test');
    assert.ok(leaf.checkIssued(new X509Certificate(ca.certPem)));
    assert.equal(leaf.ca, false);
    assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    assert.deepEqual(new X509Certificate(client.certPem).keyUsage, ['1.3.6.1.5.5.7.3.2']);
  });

  it('a self-signed certificate verifies with its own key and yields a libtrust key ID', async () => {
    const self = await makeSelfSigned(dir, 'signer');
    const cert = new X509Certificate(self.certPem);
    assert.ok(cert.verify(cert.publicKey));
    assert.match(
      libtrustKeyId(cert.publicKey.export({ type: 'spki', format: 'der' })),
      /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/,
    );
  });

  it('an https server with a CA-signed leaf is trusted with the CA and refused without it', async () => {
    const s = await serve({ cert: server.certPem, key: server.keyPem });
    try {
      const ok = await request('GET', `https://127.0.0.1:${s.port}/`, { tls: { ca: ca.certPem } });
      assert.equal(ok.status, 200);
      const byName = await request('GET', `https://127.0.0.1:${s.port}/`, {
        tls: { ca: ca.certPem, servername: 'registry.test' },
      });
      assert.equal(byName.status, 200);
      await assert.rejects(
        request('GET', `https://127.0.0.1:${s.port}/`, { tls: { ca: ca.certPem, servername: 'other.test' } }),
        (err: NodeJS.ErrnoException) => {
          assert.equal(err.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
          return true;
        },
      );
      await assert.rejects(request('GET', `https://127.0.0.1:${s.port}/`), (err: NodeJS.ErrnoException) => {
        assert.equal(err.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
        return true;
      });
    } finally {
      await s.stop();
    }
  });

  it('mutual TLS: the client certificate is required, checked against the CA and must be for clientAuth', async () => {
    const s = await serve({
      cert: server.certPem,
      key: server.keyPem,
      ca: ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
    });
    try {
      const ok = await request('GET', `https://127.0.0.1:${s.port}/`, {
        tls: { ca: ca.certPem, cert: client.certPem, key: client.keyPem },
      });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.toString(), 'hello alice-client');
      await assert.rejects(request('GET', `https://127.0.0.1:${s.port}/`, { tls: { ca: ca.certPem } }));
      await assert.rejects(
        request('GET', `https://127.0.0.1:${s.port}/`, {
          tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem },
        }),
      );
    } finally {
      await s.stop();
    }
    // Why the server certificate was refused as a client certificate: its extendedKeyUsage.
    const lenient = https.createServer(
      {
        cert: server.certPem,
        key: server.keyPem,
        ca: ca.certPem,
        requestCert: true,
        rejectUnauthorized: false,
      },
      (req, res) => res.end(String((req.socket as import('node:tls').TLSSocket).authorizationError)),
    );
    await new Promise<void>((resolve) => lenient.listen(0, '127.0.0.1', resolve));
    try {
      const port = (lenient.address() as AddressInfo).port;
      const reply = await request('GET', `https://127.0.0.1:${port}/`, {
        tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem },
      });
      assert.equal(reply.body.toString(), 'INVALID_PURPOSE');
    } finally {
      lenient.closeAllConnections();
      await new Promise<void>((resolve) => lenient.close(() => resolve()));
    }
  });
});
