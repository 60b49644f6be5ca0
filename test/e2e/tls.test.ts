import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CertificateAuthority, type CertificateFiles, makeCa, makeCert } from '../harness/certs.js';
import { runCli } from '../harness/cli.js';
import { HELLO_WASM, tempDir, writeLargeWasm } from '../harness/fixtures.js';
import { type ForwardProxy, startForwardProxy } from '../harness/proxies.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

let work: Awaited<ReturnType<typeof tempDir>>;
let ca: CertificateAuthority;
let server: CertificateFiles;
let client: CertificateFiles;
let tlsRegistry: RegistryServer;
let mtlsRegistry: RegistryServer;
let proxy: ForwardProxy;

before(async () => {
  work = await tempDir();
  ca = await makeCa(work.path);
  server = await makeCert(ca, work.path, 'registry', { sans: ['127.0.0.1', 'localhost', 'registry.test'] });
  client = await makeCert(ca, work.path, 'client', { sans: ['wasm-to-oci-client'], client: true });
  tlsRegistry = await startRegistry({ tls: { certificate: server.certPath, key: server.keyPath } });
  mtlsRegistry = await startRegistry({
    tls: { certificate: server.certPath, key: server.keyPath, clientCas: [ca.certPath] },
  });
  proxy = await startForwardProxy();
});
after(async () => {
  await tlsRegistry?.stop();
  await mtlsRegistry?.stop();
  await proxy?.stop();
  await work?.remove();
});

const env = () => ({
  HOME: work.path,
  DOCKER_CONFIG: join(work.path, 'docker'),
  XDG_CACHE_HOME: join(work.path, 'c'),
});
const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
  runCli(args, { cwd: work.path, env: { ...env(), SSL_CERT_FILE: '', NODE_EXTRA_CA_CERTS: '', ...extra } });

describe('TLS registries', () => {
  it('a loopback registry speaking TLS works without --plain-http, trusting --ca-file', async () => {
    const big = join(work.path, 'five.wasm');
    await writeLargeWasm(big, 5 * 1024 * 1024);
    const push = await cli(['push', big, `${tlsRegistry.host}/tls/hello:v1`, '--ca-file', ca.certPath]);
    assert.equal(push.code, 0, push.stderr);
    const pull = await cli([
      'pull',
      `${tlsRegistry.host}/tls/hello:v1`,
      '--ca-file',
      ca.certPath,
      '-o',
      'tls.wasm',
    ]);
    assert.equal(pull.code, 0, pull.stderr);
    assert.deepEqual(await readFile(join(work.path, 'tls.wasm')), await readFile(big));
  });

  it('fails clearly without the CA, and names the flags that help', async () => {
    const res = await cli(['pull', `${tlsRegistry.host}/tls/hello:v1`, '-o', 'never.wasm']);
    assert.equal(res.code, 1);
    assert.match(
      res.stderr,
      new RegExp(`^Error: TLS with ${tlsRegistry.host} failed: .*(self.signed|certificate)`, 'i'),
    );
    assert.match(res.stderr, /Hint: .*--ca-file.*--insecure/);
  });

  it('works with --insecure, and with SSL_CERT_FILE', async () => {
    const insecure = await cli(['pull', `${tlsRegistry.host}/tls/hello:v1`, '-k', '-o', 'k.wasm']);
    assert.equal(insecure.code, 0, insecure.stderr);
    const envCa = await cli(['pull', `${tlsRegistry.host}/tls/hello:v1`, '-o', 'e.wasm'], {
      SSL_CERT_FILE: ca.certPath,
    });
    assert.equal(envCa.code, 0, envCa.stderr);
  });

  it('--plain-http against a TLS registry says to drop it', async () => {
    const res = await cli(['pull', `${tlsRegistry.host}/tls/hello:v1`, '--plain-http', '-o', 'never.wasm']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /Hint: the registry speaks TLS: drop --plain-http/);
  });

  it('mutual TLS: refused without a client certificate, accepted with --cert/--key', async () => {
    const push = await cli([
      'push',
      HELLO_WASM,
      `${mtlsRegistry.host}/mtls/hello:v1`,
      '--ca-file',
      ca.certPath,
      '--cert',
      client.certPath,
      '--key',
      client.keyPath,
    ]);
    assert.equal(push.code, 0, push.stderr);
    const refused = await cli([
      'pull',
      `${mtlsRegistry.host}/mtls/hello:v1`,
      '--ca-file',
      ca.certPath,
      '-o',
      'n.wasm',
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^Error: /);
    assert.match(refused.stderr, /--cert/);
  });

  it('reaches a TLS registry through HTTPS_PROXY with a CONNECT tunnel', async () => {
    const port = tlsRegistry.host.split(':')[1];
    const res = await cli(
      ['pull', `registry.test:${port}/tls/hello:v1`, '--ca-file', ca.certPath, '-o', 'p.wasm'],
      {
        HTTPS_PROXY: proxy.url,
      },
    );
    assert.equal(res.code, 0, res.stderr);
    assert.ok(proxy.connects.includes(`registry.test:${port}`), `CONNECTs: ${proxy.connects.join(', ')}`);
  });
});
