import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { basic, writeDockerConfig } from '../harness/auth.js';
import { type CertificateAuthority, makeCa, makeCert } from '../harness/certs.js';
import { runCli } from '../harness/cli.js';
import { HELLO_WASM, tempDir } from '../harness/fixtures.js';
import { type NotaryServer, startNotaryServer } from '../harness/notary.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';
import { startTokenServer, type TokenServer } from '../harness/token-server.js';

/**
 * The trust server as deployed: over TLS with its own CA (`--tlscacert`), and behind token auth with
 * the credentials the Docker config holds for the trust server's host.
 */

const PASSPHRASES = {
  SIGNY_ROOT_PASSPHRASE: 'root-passphrase-1',
  SIGNY_TARGETS_PASSPHRASE: 'targets-passphrase-1',
  SIGNY_SNAPSHOT_PASSPHRASE: 'snapshot-passphrase-1',
};
const PASSWORD = 'notary-Password-never-printed';

let registry: RegistryServer;
let tlsServer: NotaryServer;
let authServer: NotaryServer;
let tokens: TokenServer;
let ca: CertificateAuthority;
let work: Awaited<ReturnType<typeof tempDir>>;

before(async () => {
  work = await tempDir();
  ca = await makeCa(work.path);
  const cert = await makeCert(ca, work.path, 'notary', { sans: ['127.0.0.1', 'localhost'] });
  tokens = await startTokenServer({ service: 'notary-server', users: { alice: PASSWORD } });
  [registry, tlsServer, authServer] = await Promise.all([
    startRegistry(),
    startNotaryServer({ tls: { certificate: cert.certPath, key: cert.keyPath } }),
    startNotaryServer({
      auth: {
        realm: tokens.url,
        service: tokens.service,
        issuer: tokens.issuer,
        rootCertBundle: tokens.rootCertPath,
      },
    }),
  ]);
});
after(async () => {
  await Promise.all([registry?.stop(), tlsServer?.stop(), authServer?.stop(), tokens?.stop()]);
  await work?.remove();
});

let n = 0;
async function user(config?: object) {
  const home = join(work.path, `user${n++}`);
  if (config) await writeDockerConfig(join(home, '.docker'), config);
  return {
    HOME: home,
    DOCKER_CONFIG: join(home, '.docker'),
    XDG_CACHE_HOME: join(home, 'cache'),
    ...PASSPHRASES,
  };
}
const cli = (args: string[], env: NodeJS.ProcessEnv) => runCli(args, { env, cwd: work.path });

describe('trust server over TLS', () => {
  it('--tlscacert trusts the server’s CA; without it the certificate is refused', async () => {
    const env = await user();
    const ref = `${registry.host}/tls/hello:v1`;
    const flags = ['--sign', '--server', tlsServer.url, '--tlscacert', ca.certPath];
    const push = await cli(['push', HELLO_WASM, ref, ...flags], env);
    assert.equal(push.code, 0, push.stderr);
    const out = join(work.path, 'tls.wasm');
    const pull = await cli(['pull', ref, '-o', out, ...flags], await user());
    assert.equal(pull.code, 0, pull.stderr);
    assert.deepEqual(await readFile(out), await readFile(HELLO_WASM));

    const refused = await cli(
      ['pull', ref, '-o', join(work.path, 'x.wasm'), '--sign', '--server', tlsServer.url],
      await user(),
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /certificate/i);
    // --tlscacert replaces the system's roots for the trust server: a CA that did not sign its
    // certificate is not enough.
    const otherDir = join(work.path, 'other');
    await mkdir(otherDir);
    const other = await makeCa(otherDir);
    const wrong = await cli(
      [
        'pull',
        ref,
        '-o',
        join(work.path, 'x.wasm'),
        '--sign',
        '--server',
        tlsServer.url,
        '--tlscacert',
        other.certPath,
      ],
      await user(),
    );
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /certificate/i);
  });
});

describe('trust server with token auth', () => {
  it('answers the challenge with the Docker config’s credentials for the trust server’s host', async () => {
    const host = new URL(authServer.url).host;
    const env = await user({
      auths: { [host]: { auth: Buffer.from(`alice:${PASSWORD}`).toString('base64') } },
    });
    const ref = `${registry.host}/auth/hello:v1`;
    tokens.requests.length = 0;
    const push = await cli(['push', HELLO_WASM, ref, '--sign', '--server', authServer.url], env);
    assert.equal(push.code, 0, push.stderr);
    assert.ok(
      tokens.requests.some(
        (r) => r.user === 'alice' && r.scopes.some((s) => s.includes(`${registry.host}/auth/hello`)),
      ),
      'a token was asked for the collection as alice',
    );
    for (const out of [push.stdout, push.stderr]) {
      assert.ok(!out.includes(PASSWORD));
      assert.ok(!out.includes(basic('alice', PASSWORD)));
    }
    const out = join(work.path, 'auth.wasm');
    const pull = await cli(['pull', ref, '-o', out, '--sign', '--server', authServer.url], env);
    assert.equal(pull.code, 0, pull.stderr);

    // Without credentials the trust server refuses, and the message says how to fix it.
    const anonymous = await cli(
      ['pull', ref, '-o', join(work.path, 'anon.wasm'), '--sign', '--server', authServer.url],
      await user(),
    );
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stderr, new RegExp(`no credentials for ${host.replace(/\./g, '\\.')}`));
  });
});
