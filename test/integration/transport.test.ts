import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hasCode } from '../../src/errors.js';
import { pull } from '../../src/ops/pull.js';
import { push } from '../../src/ops/push.js';
import { IN_MEMORY_LIMIT } from '../../src/wasm/pack.js';
import { basic, startBasicAuthRegistry } from '../harness/auth.js';
import { fakeClock } from '../harness/clock.js';
import { HELLO_WASM, tempDir, writeLargeWasm } from '../harness/fixtures.js';
import { startFaultProxy, startForwardProxy, startRedirector } from '../harness/proxies.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

let registry: RegistryServer;
let secured: RegistryServer;
let dir: Awaited<ReturnType<typeof tempDir>>;
const fast = { retry: { baseDelayMs: 5 } };

before(async () => {
  dir = await tempDir();
  registry = await startRegistry();
  secured = await startBasicAuthRegistry(dir.path, { bob: 'hunter2-secret' });
  await push({ file: HELLO_WASM, reference: `${registry.host}/hello:v1` });
  await push({
    file: HELLO_WASM,
    reference: `${secured.host}/hello:v1`,
    credentials: async () => ({ username: 'bob', password: 'hunter2-secret' }),
  });
});
after(async () => {
  await registry?.stop();
  await secured?.stop();
  await dir?.remove();
});

describe('retries', () => {
  it('retries 503 (Retry-After) and a connection reset, then succeeds', async () => {
    const faults = await startFaultProxy(registry.host, (method, path, nth) => {
      if (method !== 'GET' || !path.includes('/manifests/')) return undefined;
      if (nth === 1) return { status: 503, retryAfter: '0' };
      if (nth === 2) return 'reset';
      return undefined;
    });
    try {
      const out = join(dir.path, 'retried.wasm');
      await pull({ reference: `${faults.host}/hello:v1`, output: out, ...fast });
      assert.deepEqual(await readFile(out), await readFile(HELLO_WASM));
      assert.equal(faults.seen.filter((s) => s === 'GET /v2/hello/manifests/v1').length, 3);
    } finally {
      await faults.stop();
    }
  });

  it('honours Retry-After on 429', async () => {
    const faults = await startFaultProxy(registry.host, (method, path, nth) =>
      method === 'GET' && path.includes('/manifests/') && nth === 1
        ? { status: 429, retryAfter: '1' }
        : undefined,
    );
    try {
      // The retry's waits are recorded, not slept: the second the registry asked for is what was waited.
      const clock = fakeClock();
      await pull({
        reference: `${faults.host}/hello:v1`,
        output: join(dir.path, 'r429.wasm'),
        ...fast,
        clock,
      });
      assert.ok(
        clock.sleeps.length === 1 && (clock.sleeps[0] as number) >= 950,
        `waited the second the registry asked for (${clock.sleeps})`,
      );
    } finally {
      await faults.stop();
    }
  });

  it('gives up after a bounded number of attempts with the registry’s message', async () => {
    const faults = await startFaultProxy(registry.host, (method, path) =>
      method === 'GET' && path.includes('/manifests/') ? { status: 500 } : undefined,
    );
    try {
      await assert.rejects(
        pull({ reference: `${faults.host}/hello:v1`, output: join(dir.path, 'never.wasm'), ...fast }),
        (err: Error) =>
          hasCode(err, 'REGISTRY') && /HTTP 500 \(UNAVAILABLE: injected 500\)/.test(err.message),
      );
      assert.equal(faults.seen.filter((s) => s === 'GET /v2/hello/manifests/v1').length, 4);
    } finally {
      await faults.stop();
    }
  });

  it('sends a streamed upload again from the file after a 503, within the retry budget', async () => {
    const file = join(dir.path, 'big.wasm');
    await writeLargeWasm(file, IN_MEMORY_LIMIT + 1024);
    const faults = await startFaultProxy(registry.host, (method) =>
      method === 'PATCH' ? { status: 503 } : undefined,
    );
    try {
      await assert.rejects(push({ file, reference: `${faults.host}/big:v1`, ...fast }), (err: Error) =>
        /HTTP 503/.test(err.message),
      );
      // Each try opens a new session and sends the file again; the tag never moved.
      assert.equal(faults.seen.filter((s) => s.startsWith('PATCH')).length, 4);
      assert.equal(faults.seen.filter((s) => s.startsWith('PUT /v2/big/manifests')).length, 0);
    } finally {
      await faults.stop();
    }
  });
});

describe('redirects', () => {
  it('follows a blob redirect to another host without the registry’s credentials', async () => {
    const front = await startRedirector(secured.host, `Basic ${basic('bob', 'hunter2-secret')}`);
    try {
      const out = join(dir.path, 'redirected.wasm');
      await pull({
        reference: `${front.host}/hello:v1`,
        output: out,
        credentials: async () => ({ username: 'bob', password: 'hunter2-secret' }),
      });
      assert.deepEqual(await readFile(out), await readFile(HELLO_WASM));
      assert.equal(front.storageRequests.length, 1, 'the blob came from the storage host');
      assert.equal(
        front.storageRequests[0]?.authorization,
        undefined,
        'no credentials followed the redirect',
      );
    } finally {
      await front.stop();
    }
  });
});

describe('proxies', () => {
  it('sends plain-HTTP requests for non-loopback hosts through HTTP_PROXY, with proxy credentials', async () => {
    const proxy = await startForwardProxy();
    try {
      const port = registry.host.split(':')[1];
      const proxyUrl = new URL(proxy.url);
      proxyUrl.username = 'proxyuser';
      proxyUrl.password = 'proxypass';
      const out = join(dir.path, 'proxied.wasm');
      await pull({
        reference: `registry.test:${port}/hello:v1`,
        output: out,
        plainHttp: true,
        env: { HTTP_PROXY: proxyUrl.href },
      });
      assert.deepEqual(await readFile(out), await readFile(HELLO_WASM));
      assert.ok(proxy.requests.some((u) => u === `http://registry.test:${port}/v2/hello/manifests/v1`));
      assert.ok(proxy.proxyAuth.every((a) => a === `Basic ${basic('proxyuser', 'proxypass')}`));
    } finally {
      await proxy.stop();
    }
  });

  it('bypasses the proxy for NO_PROXY hosts and for loopback', async () => {
    const proxy = await startForwardProxy();
    try {
      const port = registry.host.split(':')[1];
      await assert.rejects(
        pull({
          reference: `registry.test:${port}/hello:v1`,
          output: join(dir.path, 'never.wasm'),
          plainHttp: true,
          env: { HTTP_PROXY: proxy.url, NO_PROXY: '.test' },
          retry: { attempts: 1 },
        }),
        /cannot resolve host registry\.test/,
      );
      await pull({
        reference: `${registry.host}/hello:v1`,
        output: join(dir.path, 'direct.wasm'),
        env: { HTTP_PROXY: proxy.url },
      });
      assert.deepEqual(proxy.requests, []);
      assert.deepEqual(proxy.connects, []);
    } finally {
      await proxy.stop();
    }
  });
});
