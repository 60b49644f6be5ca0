import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pull } from '../../src/ops/pull.js';
import { push } from '../../src/ops/push.js';
import { HELLO_WASM, tempDir } from '../harness/fixtures.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';
import { startTokenProxy, type TokenProxy } from '../harness/token-proxy.js';

let registry: RegistryServer;
let proxy: TokenProxy;
let dir: Awaited<ReturnType<typeof tempDir>>;

before(async () => {
  registry = await startRegistry();
  proxy = await startTokenProxy(registry.host);
  dir = await tempDir();
});
after(async () => {
  await proxy?.stop();
  await registry?.stop();
  await dir?.remove();
});

describe('anonymous bearer tokens (a token front on the real registry)', () => {
  it('push answers the challenge with one token for the whole push', async () => {
    proxy.tokenRequests.length = 0;
    const pushed = await push({ file: HELLO_WASM, reference: `${proxy.host}/anon/hello:v1` });
    assert.equal(pushed.size, (await readFile(HELLO_WASM)).length);
    assert.deepEqual(proxy.tokenRequests, ['repository:anon/hello:pull,push']);
  });

  it('pull gets a pull token once and reuses it', async () => {
    proxy.tokenRequests.length = 0;
    const out = join(dir.path, 'anon.wasm');
    await pull({ reference: `${proxy.host}/anon/hello:v1`, output: out });
    assert.deepEqual(await readFile(out), await readFile(HELLO_WASM));
    assert.deepEqual(proxy.tokenRequests, ['repository:anon/hello:pull']);
  });

  it('a revoked token is replaced once, then the request succeeds', async () => {
    proxy.tokenRequests.length = 0;
    const { RegistryClient } = await import('../../src/registry/client.js');
    const { RemoteRepository } = await import('../../src/registry/repository.js');
    const client = new RegistryClient(proxy.host);
    try {
      const repo = new RemoteRepository(client, 'anon/hello');
      await repo.resolve('v1');
      proxy.revokeAll();
      await repo.resolve('v1');
      assert.deepEqual(proxy.tokenRequests, ['repository:anon/hello:pull', 'repository:anon/hello:pull']);
    } finally {
      client.close();
    }
  });
});
