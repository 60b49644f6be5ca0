import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeCa, makeCert } from '../harness/certs.js';
import { tempDir } from '../harness/fixtures.js';
import {
  type NotaryResult,
  runNotary,
  startNotaryServer,
  startTrustFixture,
  trustPath,
} from '../harness/notary.js';
import { startTokenServer } from '../harness/token-server.js';

/**
 * The notary harness checked against the real notary-server and notary CLI (no project code): a
 * publish and list over plain HTTP, TLS with a test CA, the tampering proxy's record and replay, and
 * the server's token-auth challenge.
 */

function get(url: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
  });
}

function ok(result: NotaryResult, what: string): void {
  assert.equal(result.code, 0, `${what} failed:\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
}

test('notary CLI publishes to and lists from notary-server over plain HTTP', async () => {
  const server = await startNotaryServer();
  const dir = await tempDir();
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const gun = '127.0.0.1:5000/smoke';
    const trust = join(dir.path, 'trust');
    const file = join(dir.path, 'hello.txt');
    await writeFile(file, 'hello, notary\n');
    const run = (args: string[]) => runNotary(args, { server: server.url, dir: trust });
    ok(await run(['init', gun]), 'init');
    ok(await run(['add', gun, 'hello.txt', file]), 'add');
    ok(await run(['publish', gun]), 'publish');
    const list = await run(['list', gun]);
    ok(list, 'list');
    const row = list.stdout.split('\n').find((line) => line.startsWith('hello.txt '));
    assert.ok(row, `no row for hello.txt in:\n${list.stdout}`);
    assert.match(row, /^hello\.txt\s+[0-9a-f]{64}\s+14\s+targets\s*$/);
    const verify = await runNotary(['verify', gun, 'hello.txt'], {
      server: server.url,
      dir: trust,
      stdin: 'hello, notary\n',
    });
    ok(verify, 'verify');
    assert.equal(verify.stdout, 'hello, notary\n', 'verify echoes the verified content');
    const tampered = await runNotary(['verify', gun, 'hello.txt'], {
      server: server.url,
      dir: trust,
      stdin: 'goodbye\n',
    });
    assert.equal(tampered.code, 1);
    assert.match(tampered.stdout, /^\n\* fatal: .*did not match/);
  } finally {
    await server.stop();
    await dir.remove();
  }
});

test('notary-server serves TLS with a test CA', async () => {
  const dir = await tempDir();
  const ca = await makeCa(dir.path);
  const cert = await makeCert(ca, dir.path, 'notary-server', { sans: ['127.0.0.1'] });
  const server = await startNotaryServer({ tls: { certificate: cert.certPath, key: cert.keyPath } });
  try {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const trust = join(dir.path, 'trust');
    const missing = await runNotary(['list', '127.0.0.1:5000/missing'], {
      server: server.url,
      dir: trust,
      tlscacert: ca.certPath,
    });
    assert.equal(missing.code, 1);
    assert.match(
      missing.stdout,
      new RegExp(`127\\.0\\.0\\.1:${server.port} does not have trust data for 127\\.0\\.0\\.1:5000/missing`),
    );
    // Without the CA the CLI cannot reach the server: it logs why and says it is offline.
    const untrusted = await runNotary(['list', '127.0.0.1:5000/missing'], { server: server.url, dir: trust });
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /certificate signed by unknown authority/);
    assert.match(untrusted.stdout, /\* fatal: client is offline/);
  } finally {
    await server.stop();
    await dir.remove();
  }
});

test('the trust fixture records and replays metadata', async () => {
  const server = await startNotaryServer();
  const fixture = await startTrustFixture(server.url);
  const dir = await tempDir();
  try {
    const gun = '127.0.0.1:5000/fixture';
    const trust = join(dir.path, 'trust');
    const file = join(dir.path, 'a.txt');
    await writeFile(file, 'a');
    const run = (args: string[]) => runNotary(args, { server: fixture.url, dir: trust });
    ok(await run(['init', gun]), 'init');
    ok(await run(['add', gun, 'a.txt', file]), 'add');
    ok(await run(['publish', gun]), 'publish');
    assert.ok(
      fixture.requests.some((r) => r.method === 'POST' && r.status === 200),
      'the multipart publish went through the proxy',
    );

    const timestamp = trustPath(gun, 'timestamp');
    const first = await get(`${fixture.url}${timestamp}`);
    assert.equal(first.status, 200);
    const snapshot = fixture.record();
    assert.deepEqual(snapshot.get(timestamp), first.body);

    ok(await run(['add', gun, 'b.txt', file]), 'add b');
    ok(await run(['publish', gun]), 'publish b');
    const fresh = await get(`${fixture.url}${timestamp}`);
    assert.equal(fresh.status, 200);
    assert.notDeepEqual(fresh.body, first.body, 'a new publish makes a new timestamp');

    const reader = join(dir.path, 'reader');
    ok(await runNotary(['list', gun], { server: fixture.url, dir: reader }), 'list by a reader');

    fixture.replay(snapshot);
    const stale = await get(`${fixture.url}${timestamp}`);
    assert.equal(stale.status, 200);
    assert.deepEqual(stale.body, first.body);
    assert.equal(fixture.requests.at(-1)?.source, 'replay');
    // The reader has cached timestamp version 2 and refuses the replayed version 1.
    const rollback = await runNotary(['list', gun], { server: fixture.url, dir: reader });
    assert.equal(rollback.code, 1);
    assert.match(rollback.stdout, /\* fatal: version 1 is lower than current version 2/);

    fixture.override(timestamp, (body) => Buffer.concat([body, Buffer.from(' ')]));
    const altered = await get(`${fixture.url}${timestamp}`);
    assert.deepEqual(altered.body, Buffer.concat([fresh.body, Buffer.from(' ')]));
    fixture.override(timestamp, '{}', { status: 404 });
    assert.equal((await get(`${fixture.url}${timestamp}`)).status, 404);

    fixture.clear();
    assert.deepEqual((await get(`${fixture.url}${timestamp}`)).body, fresh.body);
  } finally {
    await fixture.stop();
    await server.stop();
    await dir.remove();
  }
});

test('notary-server with token auth challenges anonymous clients', async () => {
  const tokens = await startTokenServer({
    service: 'wasm-to-oci-test-notary',
    issuer: 'wasm-to-oci-test-token-issuer',
    users: { alice: 'alice-password' },
  });
  const server = await startNotaryServer({
    auth: {
      realm: tokens.url,
      service: tokens.service,
      issuer: tokens.issuer,
      rootCertBundle: tokens.rootCertPath,
    },
  });
  const dir = await tempDir();
  try {
    const gun = '127.0.0.1:5000/auth';
    const reply = await get(`${server.url}${trustPath(gun, 'root')}`);
    assert.equal(reply.status, 401);
    const challenge = reply.headers['www-authenticate'] ?? '';
    assert.match(challenge, /^Bearer /);
    assert.ok(challenge.includes(`realm="${tokens.url}"`), challenge);
    assert.ok(challenge.includes(`service="${tokens.service}"`), challenge);
    assert.ok(challenge.includes(`scope="repository:${gun}:pull"`), challenge);

    // The CLI fetches tokens itself with NOTARY_AUTH (base64 `user:password`).
    const trust = join(dir.path, 'trust');
    const file = join(dir.path, 'a.txt');
    await writeFile(file, 'a');
    const env = { NOTARY_AUTH: Buffer.from('alice:alice-password').toString('base64') };
    const run = (args: string[]) => runNotary(args, { server: server.url, dir: trust, env });
    ok(await run(['init', gun]), 'init');
    ok(await run(['add', gun, 'a.txt', file]), 'add');
    ok(await run(['publish', gun]), 'publish');
    // A fresh trust directory, so that the CLI cannot fall back to cached metadata.
    const list = await runNotary(['list', gun], { server: server.url, dir: join(dir.path, 'reader'), env });
    ok(list, 'list');
    assert.match(list.stdout, /^a\.txt\s+[0-9a-f]{64}\s+1\s+targets/m);
    assert.ok(
      tokens.requests.some((r) => r.user === 'alice' && r.status === 200),
      'the CLI got a token for alice',
    );
  } finally {
    await server.stop();
    await tokens.stop();
    await dir.remove();
  }
});
