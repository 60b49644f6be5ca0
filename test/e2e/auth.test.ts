import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  basic,
  type HelperBin,
  startBasicAuthRegistry,
  writeDockerConfig,
  writeHelpers,
} from '../harness/auth.js';
import { runCli } from '../harness/cli.js';
import { HELLO_WASM, tempDir } from '../harness/fixtures.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

const USER = 'alice';
const PASSWORD = 's3cret-Pa55-never-printed';

let registry: RegistryServer;
let open: RegistryServer;
let work: Awaited<ReturnType<typeof tempDir>>;
let helpers: HelperBin;

before(async () => {
  work = await tempDir();
  registry = await startBasicAuthRegistry(work.path, { [USER]: PASSWORD });
  open = await startRegistry();
  helpers = await writeHelpers(work.path);
});
after(async () => {
  await registry?.stop();
  await open?.stop();
  await work?.remove();
});

let n = 0;
/** A fresh DOCKER_CONFIG directory (and HOME) per case. */
async function home(config?: object): Promise<NodeJS.ProcessEnv> {
  const dir = join(work.path, `home${n++}`);
  if (config) await writeDockerConfig(join(dir, '.docker'), config);
  return {
    HOME: dir,
    DOCKER_CONFIG: join(dir, '.docker'),
    PATH: `${helpers.bin}:${process.env.PATH}`,
    DOCKER_TEST_HELPER_STORE: helpers.store,
    XDG_RUNTIME_DIR: '',
    REGISTRY_AUTH_FILE: '',
    XDG_CACHE_HOME: join(dir, 'cache'),
  };
}

function assertNoSecrets(...outputs: string[]): void {
  for (const out of outputs) {
    assert.ok(!out.includes(PASSWORD), 'the password leaked');
    assert.ok(!out.includes(basic(USER, PASSWORD)), 'the basic credentials leaked');
  }
}

const cli = (args: string[], env: NodeJS.ProcessEnv, input?: string) =>
  runCli(args, { env, input, cwd: work.path });

describe('credentials against a registry with htpasswd basic auth', () => {
  it('without credentials: exit 1 and a hint to log in', async () => {
    const env = await home();
    const res = await cli(['push', HELLO_WASM, `${registry.host}/private/hello:v1`], env);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^Error: .*HTTP 401/);
    assert.match(
      res.stderr,
      new RegExp(
        `Hint: no credentials for ${registry.host}: log in with "wasm-to-oci login ${registry.host}"`,
      ),
    );
  });

  it('from an auths entry (base64 auth), then pull', async () => {
    const env = await home({ auths: { [registry.host]: { auth: basic(USER, PASSWORD) } } });
    const push = await cli(['push', HELLO_WASM, `${registry.host}/private/hello:v1`, '-v'], env);
    assert.equal(push.code, 0, push.stderr);
    assertNoSecrets(push.stdout, push.stderr);
    assert.match(
      push.stderr,
      /authorization":"Basic <redacted>"/,
      'the verbose log shows the header, redacted',
    );
    const pull = await cli(
      ['pull', `${registry.host}/private/hello:v1`, '-o', join(env.HOME as string, 'out.wasm')],
      env,
    );
    assert.equal(pull.code, 0, pull.stderr);
    assert.deepEqual(await readFile(join(env.HOME as string, 'out.wasm')), await readFile(HELLO_WASM));
  });

  it('from an auths entry keyed with a scheme and username/password fields', async () => {
    const env = await home({
      auths: { [`http://${registry.host}/v2/`]: { username: USER, password: PASSWORD } },
    });
    const res = await cli(
      ['pull', `${registry.host}/private/hello:v1`, '-o', join(env.HOME as string, 'o.wasm')],
      env,
    );
    assert.equal(res.code, 0, res.stderr);
  });

  it('from -u and --password-stdin, and -p with a warning', async () => {
    const env = await home();
    const viaStdin = await cli(
      ['push', HELLO_WASM, `${registry.host}/private/stdin:v1`, '-u', USER, '--password-stdin'],
      env,
      `${PASSWORD}\n`,
    );
    assert.equal(viaStdin.code, 0, viaStdin.stderr);
    assertNoSecrets(viaStdin.stdout, viaStdin.stderr);
    const viaFlag = await cli(
      [
        'pull',
        `${registry.host}/private/stdin:v1`,
        '-u',
        USER,
        '-p',
        PASSWORD,
        '-o',
        join(work.path, 'pulled.wasm'),
      ],
      env,
    );
    assert.equal(viaFlag.code, 0, viaFlag.stderr);
    assert.match(viaFlag.stderr, /WARNING! Using --password on the command line is insecure/);
  });

  it('leaks nothing into Node’s own debug log (NODE_DEBUG) or --verbose', async () => {
    const env = { ...(await home()), NODE_DEBUG: 'http,https,net,tls,stream' };
    const res = await cli(
      ['push', HELLO_WASM, `${registry.host}/private/debug:v1`, '-u', USER, '--password-stdin', '-v'],
      env,
      PASSWORD,
    );
    assert.equal(res.code, 0, res.stderr);
    assert.ok(res.stderr.length > 1000, 'the debug log was written');
    assertNoSecrets(res.stdout, res.stderr);
  });

  it('from a credential helper on PATH (credHelpers)', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(helpers.store, JSON.stringify({ [registry.host]: { Username: USER, Secret: PASSWORD } }));
    const env = await home({ credHelpers: { [registry.host]: 'wtotest' } });
    const res = await cli(
      ['pull', `${registry.host}/private/hello:v1`, '-o', join(work.path, 'pulled.wasm'), '-v'],
      env,
    );
    assert.equal(res.code, 0, res.stderr);
    assertNoSecrets(res.stdout, res.stderr);
    assert.match(await readFile(`${helpers.store}.log`, 'utf8'), new RegExp(`get ${registry.host}`));
  });

  it('from podman’s auth file when Docker’s config has nothing', async () => {
    const env = await home({ auths: {} });
    const authFile = join(env.HOME as string, 'auth.json');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(
      authFile,
      JSON.stringify({ auths: { [registry.host]: { auth: basic(USER, PASSWORD) } } }),
    );
    const res = await cli(
      ['pull', `${registry.host}/private/hello:v1`, '-o', join(work.path, 'pulled.wasm')],
      {
        ...env,
        REGISTRY_AUTH_FILE: authFile,
      },
    );
    assert.equal(res.code, 0, res.stderr);
  });

  it('a wrong password: exit 1 and a clear message', async () => {
    const env = await home({ auths: { [registry.host]: { auth: basic(USER, 'wrong') } } });
    const res = await cli(['pull', `${registry.host}/private/hello:v1`, '-o', 'never.wasm'], env);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^Error: get manifest .*: HTTP 401/);
    assert.doesNotMatch(res.stderr, /\n\s+at /);
  });

  it('a failing helper: anonymous access goes on, and the refusal says why', async () => {
    const env = await home({ credsStore: 'broken' });
    const anonymous = await cli(['push', HELLO_WASM, `${open.host}/public/hello:v1`], env);
    assert.equal(anonymous.code, 0, 'a public registry still works');
    const refused = await cli(['pull', `${registry.host}/private/hello:v1`, '-o', 'never.wasm'], env);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /Hint: no credentials were used: credential helper docker-credential-broken get failed: the keychain is locked/,
    );
  });
});

describe('login and logout', () => {
  it('round trip through the config file (0600, directory created)', async () => {
    const env = await home();
    const login = await cli(['login', registry.host, '-u', USER, '--password-stdin'], env, PASSWORD);
    assert.equal(login.code, 0, login.stderr);
    const configPath = join(env.DOCKER_CONFIG as string, 'config.json');
    assert.equal(login.stdout, `Login Succeeded: ${registry.host}\nStored in: ${configPath}\n`);
    assertNoSecrets(login.stdout, login.stderr);
    const config = JSON.parse(await readFile(configPath, 'utf8'));
    assert.deepEqual(config.auths[registry.host], { auth: basic(USER, PASSWORD) });
    assert.equal((await stat(configPath)).mode & 0o777, 0o600);

    const push = await cli(['push', HELLO_WASM, `${registry.host}/private/login:v1`], env);
    assert.equal(push.code, 0, push.stderr);

    const logout = await cli(['logout', registry.host], env);
    assert.equal(logout.code, 0, logout.stderr);
    assert.equal(JSON.parse(await readFile(configPath, 'utf8')).auths[registry.host], undefined);
    const again = await cli(['logout', registry.host], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /not logged in/);
    const refused = await cli(['pull', `${registry.host}/private/login:v1`, '-o', 'never.wasm'], env);
    assert.equal(refused.code, 1);
  });

  it('round trip through a credsStore helper', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(helpers.store, '{}');
    const env = await home({ credsStore: 'wtotest' });
    const login = await cli(['login', registry.host, '-u', USER, '--password-stdin'], env, PASSWORD);
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /Stored in: docker-credential-wtotest/);
    const stored = JSON.parse(await readFile(helpers.store, 'utf8'));
    assert.deepEqual(stored[registry.host], { Username: USER, Secret: PASSWORD });
    const config = JSON.parse(await readFile(join(env.DOCKER_CONFIG as string, 'config.json'), 'utf8'));
    assert.deepEqual(config.auths[registry.host], {}, 'no secret in the config file');
    assert.equal(config.credsStore, 'wtotest', 'the rest of the config is kept');
    const pull = await cli(
      ['pull', `${registry.host}/private/hello:v1`, '-o', join(work.path, 'pulled.wasm')],
      env,
    );
    assert.equal(pull.code, 0, pull.stderr);
    const logout = await cli(['logout', registry.host], env);
    assert.equal(logout.code, 0, logout.stderr);
    assert.deepEqual(JSON.parse(await readFile(helpers.store, 'utf8')), {});
  });

  it('prompts on a terminal without echoing the password (under script(1))', async () => {
    const { execFile } = await import('node:child_process');
    const { CLI } = await import('../harness/cli.js');
    const env = await home();
    const typed = `sleep 1; printf '${USER}\\r'; sleep 0.7; printf '${PASSWORD}\\r'; sleep 2`;
    const command = `(${typed}) | script -qec "${process.execPath} ${CLI} login ${registry.host}" /dev/null`;
    const out = await new Promise<string>((resolve, reject) =>
      execFile('sh', ['-c', command], { env: { ...process.env, ...env } }, (err, stdout) =>
        err ? reject(err) : resolve(stdout),
      ),
    );
    assert.match(out, /Username: /);
    assert.match(out, /Password: /);
    assert.match(out, /Login Succeeded/);
    assertNoSecrets(out);
    const config = JSON.parse(await readFile(join(env.DOCKER_CONFIG as string, 'config.json'), 'utf8'));
    assert.deepEqual(config.auths[registry.host], { auth: basic(USER, PASSWORD) });
  });

  it('refuses wrong credentials and stores nothing', async () => {
    const env = await home();
    const res = await cli(['login', registry.host, '-u', USER, '--password-stdin'], env, 'nope');
    assert.equal(res.code, 1);
    assert.match(res.stderr, /login to .* failed: the registry refused the username or password/);
    await assert.rejects(stat(join(env.DOCKER_CONFIG as string, 'config.json')), { code: 'ENOENT' });
  });

  it('without a terminal and without --password-stdin it is a usage error', async () => {
    const env = await home();
    const res = await cli(['login', registry.host, '-u', USER], env);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /--password-stdin/);
  });
});
