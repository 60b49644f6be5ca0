import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pull } from '../../src/ops/pull.js';
import { RegistryClient } from '../../src/registry/client.js';
import { RemoteRepository } from '../../src/registry/repository.js';
import { writeDockerConfig } from '../harness/auth.js';
import { runCli } from '../harness/cli.js';
import { HELLO_WASM, tempDir } from '../harness/fixtures.js';
import type { RegistryServer } from '../harness/registry.js';
import { startTokenRegistry, startTokenServer, type TokenServer } from '../harness/token-server.js';

const PASSWORD = 'alice-Pa55-never-printed';
const REFRESH = 'refresh-token-never-printed';

let tokens: TokenServer;
let registry: RegistryServer;
let work: Awaited<ReturnType<typeof tempDir>>;

before(async () => {
  work = await tempDir();
  tokens = await startTokenServer({
    users: { alice: PASSWORD },
    refreshTokens: { [REFRESH]: 'alice' },
    publicRepositories: ['public/'],
  });
  registry = await startTokenRegistry(tokens);
});
after(async () => {
  await registry?.stop();
  await tokens?.stop();
  await work?.remove();
});

let n = 0;
async function env(config?: object): Promise<NodeJS.ProcessEnv> {
  const dir = join(work.path, `h${n++}`);
  if (config) await writeDockerConfig(join(dir, '.docker'), config);
  return {
    HOME: dir,
    DOCKER_CONFIG: join(dir, '.docker'),
    XDG_CACHE_HOME: join(dir, 'c'),
    REGISTRY_AUTH_FILE: '',
  };
}
const cli = (args: string[], e: NodeJS.ProcessEnv, input?: string) =>
  runCli(args, { cwd: work.path, env: e, input });
const tokenRequests = () => tokens.requests.filter((r) => r.status === 200);

function assertNoSecrets(...outputs: string[]) {
  for (const out of outputs) {
    assert.ok(!out.includes(PASSWORD), 'password leaked');
    assert.ok(!out.includes(REFRESH), 'identity token leaked');
    assert.ok(!/Bearer [A-Za-z0-9_-]{20,}/.test(out), 'a bearer token leaked');
  }
}

describe('Distribution with token auth (JWTs the real registry verifies)', () => {
  it('credentialed push asks for one token for the whole push, and logs no secret', async () => {
    const e = await env();
    tokens.requests.length = 0;
    const res = await cli(
      ['push', HELLO_WASM, `${registry.host}/public/hello:v1`, '-u', 'alice', '--password-stdin', '-v'],
      e,
      PASSWORD,
    );
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(
      tokenRequests().map((r) => r.scopes.join(' ')),
      ['repository:public/hello:pull,push'],
    );
    assert.equal(tokenRequests()[0]?.account, 'alice');
    assertNoSecrets(res.stdout, res.stderr);
    assert.match(res.stderr, /"authorization":"Bearer <redacted>"/);
  });

  it('anonymous pull of a public repository', async () => {
    const e = await env();
    tokens.requests.length = 0;
    const res = await cli(['pull', `${registry.host}/public/hello:v1`, '-o', 'anon.wasm'], e);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(await readFile(join(work.path, 'anon.wasm')), await readFile(HELLO_WASM));
    assert.deepEqual(
      tokenRequests().map((r) => [r.scopes.join(' '), r.account ?? null]),
      [['repository:public/hello:pull', null]],
    );
  });

  it('anonymous push is refused with a hint to log in', async () => {
    const res = await cli(['push', HELLO_WASM, `${registry.host}/private/hello:v1`], await env());
    assert.equal(res.code, 1);
    assert.match(res.stderr, /HTTP 401/);
    assert.match(res.stderr, /Hint: no credentials for .*: log in with "wasm-to-oci login/);
  });

  it('an identity token from the Docker config goes through the OAuth2 refresh-token grant', async () => {
    const e = await env({
      auths: {
        [registry.host]: { auth: Buffer.from('<token>:').toString('base64'), identitytoken: REFRESH },
      },
    });
    tokens.requests.length = 0;
    const res = await cli(['push', HELLO_WASM, `${registry.host}/private/acr:v1`, '-v'], e);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(
      tokenRequests().map((r) => [r.method, r.grant]),
      [['POST', 'refresh_token']],
    );
    assertNoSecrets(res.stdout, res.stderr);
  });

  it('a registry token from the Docker config is the bearer token itself: no token server is asked', async () => {
    const registryToken = tokens.mint({
      subject: 'alice',
      access: [{ type: 'repository', name: 'private/regtoken', actions: ['pull', 'push'] }],
    });
    const e = await env({ auths: { [registry.host]: { registrytoken: registryToken } } });
    tokens.requests.length = 0;
    const push = await cli(['push', HELLO_WASM, `${registry.host}/private/regtoken:v1`, '-v'], e);
    assert.equal(push.code, 0, push.stderr);
    const pull = await cli(
      ['pull', `${registry.host}/private/regtoken:v1`, '-o', join(work.path, 'rt.wasm')],
      e,
    );
    assert.equal(pull.code, 0, pull.stderr);
    assert.deepEqual(await readFile(join(work.path, 'rt.wasm')), await readFile(HELLO_WASM));
    assert.deepEqual(tokens.requests, [], 'the token server was never asked');
    assertNoSecrets(push.stdout, push.stderr, pull.stdout, pull.stderr);
    assert.ok(!push.stderr.includes(registryToken), 'the registry token is redacted in the log');
    // A token for another repository is refused by the registry once, and not retried endlessly.
    const other = await cli(['push', HELLO_WASM, `${registry.host}/private/elsewhere:v1`], e);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /HTTP 401|denied|unauthorized/i);
    assert.deepEqual(tokens.requests, [], 'still no token request');
  });

  it('login checks the password with the token server, then push needs no flags', async () => {
    const e = await env();
    const wrong = await cli(['login', registry.host, '-u', 'alice', '--password-stdin'], e, 'wrong');
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /login to .* failed/);
    const ok = await cli(['login', registry.host, '-u', 'alice', '--password-stdin'], e, PASSWORD);
    assert.equal(ok.code, 0, ok.stderr);
    assertNoSecrets(ok.stdout, ok.stderr);
    const push = await cli(['push', HELLO_WASM, `${registry.host}/private/after-login:v1`], e);
    assert.equal(push.code, 0, push.stderr);
  });

  it('reuses a token until it expires, then asks again', async () => {
    const short = await startTokenServer({
      users: { alice: PASSWORD },
      publicRepositories: ['public/'],
      expiresIn: 6,
    });
    const reg = await startTokenRegistry(short);
    const client = new RegistryClient(reg.host, {
      credentials: async () => ({ username: 'alice', password: PASSWORD }),
    });
    try {
      const repo = new RemoteRepository(client, 'public/x');
      const ask = () => repo.resolve('v1').catch(() => undefined);
      await ask();
      await ask();
      assert.equal(short.requests.filter((r) => r.status === 200).length, 1, 'the cached token serves both');
      // expires_in 6 s minus a 5 s safety margin: stale after a second.
      await new Promise((r) => setTimeout(r, 1200));
      await ask();
      assert.equal(short.requests.filter((r) => r.status === 200).length, 2);
    } finally {
      client.close();
      await reg.stop();
      await short.stop();
    }
  });

  it('a rejected token: a fresh one fails at once, a cached one is renewed once, then the registry’s message', async () => {
    const stale = await startTokenServer({ publicRepositories: ['public/'], tokenLifetime: -120 });
    const reg = await startTokenRegistry(stale);
    const client = new RegistryClient(reg.host);
    const granted = () => stale.requests.filter((r) => r.status === 200).length;
    try {
      await assert.rejects(
        pull({ reference: `${reg.host}/public/hello:v1`, output: join(work.path, 'never.wasm') }),
        (err: Error & { code?: string }) =>
          err.code === 'UNAUTHORIZED' && /HTTP 401 \(UNAUTHORIZED/.test(err.message),
      );
      assert.equal(granted(), 1, 'a token that was just issued is not asked for again');
      const repo = new RemoteRepository(client, 'public/hello');
      await assert.rejects(repo.resolve('v1'), { code: 'UNAUTHORIZED' });
      const before = granted();
      await assert.rejects(repo.resolve('v1'), { code: 'UNAUTHORIZED' });
      assert.equal(granted() - before, 1, 'the cached token was replaced once');
    } finally {
      client.close();
      await reg.stop();
      await stale.stop();
    }
  });
});
