import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { basic, startBasicAuthRegistry } from '../harness/auth.js';
import { type CertificateAuthority, makeCa, makeCert } from '../harness/certs.js';
import { runCli } from '../harness/cli.js';
import { HELLO_WASM, TESTDATA, tempDir } from '../harness/fixtures.js';
import { startRecordingProxy, startScriptedServer } from '../harness/hostile.js';
import { startForwardProxy } from '../harness/proxies.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

/**
 * One regression test per finding of the security review (issue 11), each an attack against the built
 * CLI: hostile servers and layouts written here, the real Distribution registry where one is needed.
 */

const USER = 'alice';
const PASSWORD = 'correct horse battery staple';

let work: Awaited<ReturnType<typeof tempDir>>;
let open: RegistryServer;
let private_: RegistryServer;
let ca: CertificateAuthority;

before(async () => {
  work = await tempDir();
  open = await startRegistry();
  private_ = await startBasicAuthRegistry(work.path, { [USER]: PASSWORD });
  ca = await makeCa(work.path);
});
after(async () => {
  await open?.stop();
  await private_?.stop();
  await work?.remove();
});

let homes = 0;
async function home(config?: object): Promise<NodeJS.ProcessEnv> {
  const dir = join(work.path, `home${homes++}`);
  await mkdir(join(dir, '.docker'), { recursive: true });
  if (config) await writeFile(join(dir, '.docker', 'config.json'), JSON.stringify(config));
  return {
    HOME: dir,
    DOCKER_CONFIG: join(dir, '.docker'),
    XDG_CACHE_HOME: join(dir, 'cache'),
    XDG_RUNTIME_DIR: '',
    REGISTRY_AUTH_FILE: '',
    HTTPS_PROXY: '',
    HTTP_PROXY: '',
    SSL_CERT_FILE: '',
    NODE_EXTRA_CA_CERTS: '',
  };
}

const cli = (args: string[], env: NodeJS.ProcessEnv, input?: string, cwd = work.path) =>
  runCli(args, { env, input, cwd });

/** A failure a user can act on: exit 1 or 2, one error line (and a hint), never a stack or the bug hint. */
function assertPlainFailure(res: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.ok(res.code === 1 || res.code === 2, `exit ${res.code}: ${res.stderr}`);
  assert.match(res.stderr, pattern);
  assert.doesNotMatch(res.stderr, /looks like a bug|\n\s+at /);
  assert.ok(res.stderr.split('\n').filter((l) => l.startsWith('Error:')).length === 1, res.stderr);
}

async function pushHello(registry: string, repo: string, env: NodeJS.ProcessEnv, extra: string[] = []) {
  const res = await cli(['push', HELLO_WASM, `${registry}/${repo}`, ...extra], env, `${PASSWORD}\n`);
  assert.equal(res.code, 0, res.stderr);
}

describe('1. explicit credentials go to their registry only', () => {
  it('copy refuses a bare -u, and --to-* credentials never reach the source registry', async () => {
    const source = await startRecordingProxy(open.host);
    try {
      const env = await home();
      await pushHello(source.host, 'app:v1', env);
      const bare = await cli(
        ['copy', `${source.host}/app:v1`, `${private_.host}/app:v1`, '-u', USER, '--password-stdin'],
        env,
        PASSWORD,
      );
      assertPlainFailure(bare, /--username does not say which/);
      assert.match(bare.stderr, /--from-username .* --to-username/);
      const seen = source.requests.length;
      const copied = await cli(
        [
          'copy',
          `${source.host}/app:v1`,
          `${private_.host}/app:v1`,
          '--to-username',
          USER,
          '--to-password-stdin',
        ],
        env,
        PASSWORD,
      );
      assert.equal(copied.code, 0, copied.stderr);
      assert.ok(source.requests.length > seen, 'the copy read the source');
      assert.deepEqual(source.authorizations(), [], 'the source received no credentials at all');
      // And the other way round: --from-* credentials for a private source, an open destination.
      const back = await startRecordingProxy(open.host);
      try {
        const res = await cli(
          [
            'copy',
            `${private_.host}/app:v1`,
            `${back.host}/back:v1`,
            '--from-username',
            USER,
            '--from-password-stdin',
          ],
          env,
          PASSWORD,
        );
        assert.equal(res.code, 0, res.stderr);
        assert.deepEqual(back.authorizations(), []);
      } finally {
        await back.stop();
      }
    } finally {
      await source.stop();
    }
  });

  it('pull --sign -u sends the registry password to the registry, never to the trust server', async () => {
    const trust = await startScriptedServer((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="trust"', 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
    });
    try {
      const env = await home();
      await pushHello(private_.host, 'signed:v1', env, ['-u', USER, '--password-stdin']);
      const res = await cli(
        [
          'pull',
          `${private_.host}/signed:v1`,
          '--sign',
          '--server',
          trust.url,
          '-d',
          join(work.path, 'trust'),
          '-u',
          USER,
          '--password-stdin',
          '-o',
          join(work.path, 'signed.wasm'),
        ],
        env,
        PASSWORD,
      );
      assert.equal(res.code, 1, res.stderr);
      assert.ok(trust.requests.length > 0, 'the trust server was asked');
      assert.deepEqual(trust.authorizations(), [], 'the trust server received no credentials');
    } finally {
      await trust.stop();
    }
  });
});

describe('2. TLS identity is the registry’s, through a proxy too', () => {
  it('a registry named by an IP literal must present a certificate for that IP, not for the proxy', async () => {
    const forProxy = await makeCert(ca, work.path, 'proxyname', { sans: ['127.0.0.1'] });
    const forIp = await makeCert(ca, work.path, 'ipname', { sans: ['IP:10.9.9.9', '127.0.0.1'] });
    const impostor = await startRegistry({ tls: { certificate: forProxy.certPath, key: forProxy.keyPath } });
    const genuine = await startRegistry({ tls: { certificate: forIp.certPath, key: forIp.keyPath } });
    const proxy = await startForwardProxy();
    try {
      const env = await home();
      for (const r of [impostor, genuine]) {
        const res = await cli(['push', HELLO_WASM, `${r.host}/app:v1`, '--ca-file', ca.certPath], env);
        assert.equal(res.code, 0, res.stderr);
      }
      const viaProxy = { ...env, HTTPS_PROXY: proxy.url };
      // The forward proxy serves every host from 127.0.0.1: 10.9.9.9:<port> reaches the registry on <port>.
      const refused = await cli(
        [
          'pull',
          `10.9.9.9:${impostor.port}/app:v1`,
          '--ca-file',
          ca.certPath,
          '-o',
          join(work.path, 'impostor.wasm'),
        ],
        viaProxy,
      );
      assertPlainFailure(
        refused,
        /TLS with 10\.9\.9\.9:\d+ failed: its certificate is for another host name/,
      );
      assert.ok(proxy.connects.includes(`10.9.9.9:${impostor.port}`), 'the request went through the proxy');
      const accepted = await cli(
        [
          'pull',
          `10.9.9.9:${genuine.port}/app:v1`,
          '--ca-file',
          ca.certPath,
          '-o',
          join(work.path, 'ip.wasm'),
        ],
        viaProxy,
      );
      assert.equal(accepted.code, 0, accepted.stderr);
      assert.deepEqual(await readFile(join(work.path, 'ip.wasm')), await readFile(HELLO_WASM));
    } finally {
      await proxy.stop();
      await impostor.stop();
      await genuine.stop();
    }
  });
});

describe('3. a hostile layout cannot rewrite the destination’s index.json', () => {
  it('refuses an index entry whose platform fields are not strings, and leaves the victim unchanged', async () => {
    const env = await home();
    const victim = join(work.path, 'victim');
    assert.equal((await cli(['push', HELLO_WASM, `oci:${victim}:prod`], env)).code, 0);
    const hostile = join(work.path, 'hostile');
    assert.equal((await cli(['push', join(TESTDATA, 'exit3.wasm'), `oci:${hostile}:v1`], env)).code, 0);
    const index = JSON.parse(await readFile(join(hostile, 'index.json'), 'utf8'));
    const prodDigest = JSON.parse(await readFile(join(victim, 'index.json'), 'utf8')).manifests[0].digest;
    // A variant that an encoder trusting a `json` key would write raw, moving the victim's "prod".
    index.manifests[0].platform = {
      architecture: 'wasm',
      os: 'wasip1',
      variant: {
        json: `"},"annotations":{"org.opencontainers.image.ref.name":"prod"}},{"mediaType":"x","digest":"${prodDigest}","size":1,"platform":{"architecture":"a","os":"b"}`,
      },
    };
    await writeFile(join(hostile, 'index.json'), JSON.stringify(index));
    const before = await readFile(join(victim, 'index.json'));
    const res = await cli(['copy', `oci:${hostile}:v1`, `oci:${victim}:mine`], env);
    assertPlainFailure(res, /platform variant is not a string/);
    assert.deepEqual(await readFile(join(victim, 'index.json')), before, 'index.json untouched');
  });
});

describe('4. credentials never go in clear text to a foreign realm', () => {
  it('an https registry whose token realm is http on another host gets no password; ftp realms are refused', async () => {
    const cert = await makeCert(ca, work.path, 'hostile', { sans: ['127.0.0.1'] });
    let realm = 'http://token.example.com:8080/token';
    const hostile = await startScriptedServer(
      (_req, res) => {
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="${realm}",service="registry",scope="repository:app:pull"`,
        });
        res.end();
      },
      { tls: { cert: cert.certPem, key: cert.keyPem } },
    );
    try {
      const args = [
        'pull',
        `${hostile.host}/app:v1`,
        '--ca-file',
        ca.certPath,
        '-o',
        join(work.path, 'x.wasm'),
      ];
      const env = await home();
      const withPassword = await cli([...args, '-u', USER, '--password-stdin'], env, PASSWORD);
      assertPlainFailure(
        withPassword,
        /asks for credentials to be sent in clear text to http:\/\/token\.example\.com:8080; refused/,
      );
      const refresh = await cli(
        args,
        await home({ auths: { [hostile.host]: { identitytoken: 'refresh-secret' } } }),
      );
      assertPlainFailure(refresh, /clear text/);
      realm = 'ftp://127.0.0.1/token';
      const ftp = await cli(args, env);
      assertPlainFailure(ftp, /token realm with scheme "ftp"; only http and https are used/);
    } finally {
      await hostile.stop();
    }
  });
});

describe('6. private files', () => {
  it('the cache is 0700/0600, and run keeps the pulled module in a private directory', async () => {
    const env = await home();
    await pushHello(open.host, 'private:v1', env);
    const pulled = await cli(['pull', `${open.host}/private:v1`, '-o', join(work.path, 'p.wasm')], env);
    assert.equal(pulled.code, 0, pulled.stderr);
    const cache = join(env.XDG_CACHE_HOME as string, 'wasm-to-oci', 'oci');
    assert.equal((await stat(cache)).mode & 0o777, 0o700);
    assert.equal((await stat(join(cache, 'blobs', 'sha256'))).mode & 0o777, 0o700);
    const hex = createHash('sha256')
      .update(await readFile(HELLO_WASM))
      .digest('hex');
    assert.equal((await stat(join(cache, 'blobs', 'sha256', hex))).mode & 0o777, 0o600);

    // probe.wasm reads in.txt from its preopen: a FIFO holds it while the test looks at TMPDIR.
    await pushHello(open.host, 'probe:v1', env);
    const probe = await cli(['push', join(TESTDATA, 'probe.wasm'), `${open.host}/probe:v1`], env);
    assert.equal(probe.code, 0, probe.stderr);
    const tmp = join(work.path, 'tmp');
    const sandbox = join(work.path, 'fifo-sandbox');
    await mkdir(tmp);
    await mkdir(sandbox);
    execFileSync('mkfifo', [join(sandbox, 'in.txt')]);
    const running = cli(['run', `${open.host}/probe:v1`, '--no-cache', '--dir', `${sandbox}:/`], {
      ...env,
      TMPDIR: tmp,
    });
    // Wait until the pulled module is in place (the run then blocks on the FIFO).
    let dirs: string[] = [];
    for (let i = 0; i < 400; i++) {
      const found = (await readdir(tmp)).filter((d) => d.startsWith('wasm-to-oci-run-'));
      const files = found.length ? await readdir(join(tmp, found[0] as string)).catch(() => []) : [];
      if (files.includes('module.wasm')) {
        dirs = found;
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(dirs.length, 1, 'run made one private directory');
    const dir = join(tmp, dirs[0] as string);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    for (const f of await readdir(dir)) assert.equal((await stat(join(dir, f))).mode & 0o077, 0, f);
    await writeFile(join(sandbox, 'in.txt'), 'hello through a fifo');
    const res = await running;
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /hello through a fifo/);
    assert.deepEqual(await readdir(tmp), [], 'nothing left behind');
  });
});

describe('7. run --dir', () => {
  it('refuses a preopen holding a symbolic link that leads outside it', async () => {
    const sandbox = join(work.path, 'sandbox');
    await mkdir(sandbox, { recursive: true });
    await symlink('/etc', join(sandbox, 'esc'));
    const res = await cli(['run', join(TESTDATA, 'probe.wasm'), '--dir', `${sandbox}:/`], await home());
    assertPlainFailure(res, /esc leads outside it \(to \/etc\)/);
    assert.doesNotMatch(res.stdout, /./, 'the module did not run');
  });
});

describe('8. outside keys stay plain keys', () => {
  it('inspect lists imports from modules named __proto__, constructor and toString', async () => {
    const { default: wabt } = await import('wabt');
    const w = await wabt();
    const mod = w.parseWat(
      'proto.wat',
      '(module (import "__proto__" "a" (func)) (import "constructor" "b" (func)) (import "toString" "c" (func)))',
    );
    const file = join(work.path, 'proto.wasm');
    await writeFile(file, Buffer.from(mod.toBinary({}).buffer));
    const res = await cli(['inspect', file], await home());
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /__proto__: a/);
    assert.match(res.stdout, /constructor: b/);
    assert.match(res.stdout, /toString: c/);
    const json = await cli(['inspect', file, '--json'], await home());
    assert.deepEqual(Object.keys(JSON.parse(json.stdout).wasm.importsByModule), [
      '__proto__',
      'constructor',
      'toString',
    ]);
  });
});

describe('9. registry text never drives the terminal', () => {
  it('escape sequences in errors, warnings and tag lists are shown, not obeyed', async () => {
    const evil =
      '\u001b[2J\u001b]0;pwned\u0007\u001b]8;;https://evil.example\u001b\\click\u001b]8;;\u001b\\\u009b31m\u202e';
    const hostile = await startScriptedServer((req, res) => {
      // Header values can carry only C1 controls (latin1 0x80-0x9f): Node refuses to send the others.
      const headers = {
        'content-type': 'application/json',
        warning: '299 - "mind the \u009b31mred\u009b0m"',
      };
      if (req.url?.includes('/tags/list')) {
        res.writeHead(200, headers);
        res.end(JSON.stringify({ name: 'app', tags: ['v1', `v2${evil}`, 'v3'] }));
        return;
      }
      res.writeHead(400, headers);
      res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID', message: `gone ${evil}` }] }));
    });
    try {
      const env = await home();
      const pull = await cli(
        ['pull', `${hostile.host}/app:v1`, '--plain-http', '-o', join(work.path, 'e.wasm')],
        env,
      );
      assert.equal(pull.code, 1);
      const tags = await cli(['tags', `${hostile.host}/app`, '--plain-http'], env);
      assert.equal(tags.code, 0, tags.stderr);
      assert.equal(tags.stdout, 'v1\nv3\n', 'a tag outside the grammar is dropped');
      for (const out of [pull.stderr, pull.stdout, tags.stderr, tags.stdout]) {
        assert.doesNotMatch(out, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
      }
      assert.match(pull.stderr, /Warning: 127\.0\.0\.1:\d+: mind the \\u\{9b\}31mred/);
      assert.match(pull.stderr, /gone \\u\{1b\}\[2J/);
    } finally {
      await hostile.stop();
    }
  });
});

describe('10. login writes through a symlinked config.json', () => {
  it('keeps the link and updates the file it leads to', async () => {
    const env = await home();
    const real = join(work.path, 'dotfiles', 'docker-config.json');
    await mkdir(join(work.path, 'dotfiles'), { recursive: true });
    await writeFile(real, JSON.stringify({ auths: {}, custom: 'kept' }));
    const link = join(env.DOCKER_CONFIG as string, 'config.json');
    await symlink(real, link);
    const res = await cli(['login', private_.host, '-u', USER, '--password-stdin'], env, PASSWORD);
    assert.equal(res.code, 0, res.stderr);
    assert.ok((await lstat(link)).isSymbolicLink(), 'the link is still a link');
    assert.equal(await readlink(link), real);
    const saved = JSON.parse(await readFile(real, 'utf8'));
    assert.equal(saved.auths[private_.host].auth, basic(USER, PASSWORD));
    assert.equal(saved.custom, 'kept');
  });
});

describe('11. credential helpers', () => {
  it('a helper name with a path is refused, never run', async () => {
    const cwd = join(work.path, 'helpercwd', 'sub');
    await mkdir(join(cwd, 'docker-credential-x'), { recursive: true });
    const marker = join(work.path, 'helpercwd', 'ran');
    await writeFile(join(work.path, 'helpercwd', 'evil'), `#!/bin/sh\ntouch ${marker}\necho '{}'\n`);
    await chmod(join(work.path, 'helpercwd', 'evil'), 0o755);
    const env = await home({ credsStore: 'x/../../evil' });
    const res = await cli(['pull', `${private_.host}/app:v1`, '-o', join(work.path, 'h.wasm')], env, '', cwd);
    assertPlainFailure(res, /HTTP 401/);
    assert.match(res.stderr, /not a plain name/);
    await assert.rejects(stat(marker), 'the program was not run');
  });

  it('a helper gets PATH, HOME and DOCKER_*/XDG_* variables, not our secrets', async () => {
    const bin = join(work.path, 'envbin');
    await mkdir(bin, { recursive: true });
    const dump = join(work.path, 'helper-env.txt');
    await writeFile(
      join(bin, 'docker-credential-envdump'),
      `#!/bin/sh\nenv > ${dump}\necho "credentials not found"\nexit 1\n`,
    );
    await chmod(join(bin, 'docker-credential-envdump'), 0o755);
    const env = {
      ...(await home({ credsStore: 'envdump' })),
      PATH: `${bin}:${process.env.PATH}`,
      SIGNY_ROOT_PASSPHRASE: 'root-secret',
      COSIGN_PASSWORD: 'cosign-secret',
      WASM_TO_OCI_SOMETHING: 'ours',
      DOCKER_HOST: 'kept',
    };
    await cli(['pull', `${private_.host}/app:v1`, '-o', join(work.path, 'env.wasm')], env);
    const seen = await readFile(dump, 'utf8');
    assert.match(seen, /^PATH=/m);
    assert.match(seen, /^HOME=/m);
    assert.match(seen, /^DOCKER_HOST=kept$/m);
    assert.doesNotMatch(seen, /root-secret|cosign-secret|WASM_TO_OCI_SOMETHING/);
  });
});

describe('12. malformed answers are one-line errors, not internal ones', () => {
  let hostile: Awaited<ReturnType<typeof startScriptedServer>>;
  let mode = '';
  before(async () => {
    hostile = await startScriptedServer((req, res) => {
      const url = req.url ?? '';
      if (url.startsWith('/token')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ token: 'abc\r\nX-Injected: 1' }));
        return;
      }
      if (mode === 'crlf-token' && !req.headers.authorization) {
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="http://${req.headers.host}/token",service="x"`,
        });
        res.end();
        return;
      }
      if (mode === 'tags') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"name": "app", "tags": [1, 2');
        return;
      }
      if (mode === 'deep') {
        const body = Buffer.from(`{"schemaVersion":2,"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
        res.writeHead(200, {
          'content-type': 'application/vnd.oci.image.manifest.v1+json',
          'docker-content-digest': `sha256:${createHash('sha256').update(body).digest('hex')}`,
        });
        res.end(body);
        return;
      }
      res.writeHead(404);
      res.end();
    });
  });
  after(() => hostile?.stop());

  it('a token with a line break', async () => {
    mode = 'crlf-token';
    const res = await cli(
      ['pull', `${hostile.host}/app:v1`, '--plain-http', '-o', join(work.path, 'm.wasm')],
      await home(),
    );
    assertPlainFailure(res, /sent a malformed token/);
  });

  it('a tag list that is not JSON', async () => {
    mode = 'tags';
    const res = await cli(['tags', `${hostile.host}/app`, '--plain-http'], await home());
    assertPlainFailure(res, /sent a tag list that is not JSON/);
  });

  it('a manifest nested 100,000 levels deep under manifest get --pretty', async () => {
    mode = 'deep';
    const res = await cli(
      ['manifest', 'get', `${hostile.host}/app:v1`, '--plain-http', '--pretty'],
      await home(),
    );
    assertPlainFailure(res, /nests deeper than 512 levels/);
  });

  it('a reference whose host no URL can hold', async () => {
    const res = await cli(['pull', `127.0.0.127.0.0.1:5000/a/b@sha256:${'a'.repeat(64)}`], await home());
    assertPlainFailure(res, /is not a valid registry host/);
    assert.equal(res.code, 2);
  });

  it('a config entry whose "auth" is a number', async () => {
    const env = await home({ auths: { [private_.host]: { auth: 123 } } });
    const res = await cli(['pull', `${private_.host}/app:v1`, '-o', join(work.path, 'c.wasm')], env);
    assertPlainFailure(res, /HTTP 401/);
    assert.match(res.stderr, /"auth" of the "auths" entry .* is not a string/);
  });
});
