import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { after, before, describe, it } from 'node:test';
import { makeCa, makeCert } from '../harness/certs.js';
import {
  type Fault,
  type FaultyProxy,
  type Plan,
  randomCuts,
  startFaultyProxy,
} from '../harness/fault-proxy.js';
import { tempDir } from '../harness/fixtures.js';
import { raw, rawPushBlob, sha256 } from '../harness/raw.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

/**
 * The fault-injecting TCP proxy, checked in front of the real Distribution registry with plain
 * node:http(s) requests (no project code): bytes pass unchanged, requests are classified, and each
 * fault does what it promises.
 */

interface Outcome {
  status?: number;
  headers?: http.IncomingHttpHeaders;
  body: Buffer;
  /** The response arrived whole. */
  complete: boolean;
  /** The error code (ECONNRESET, ECONNABORTED, ETIMEDOUT...) or message, when something failed. */
  error?: string;
  /** The error the socket itself saw (ECONNRESET for a TCP reset; none for a clean FIN). */
  socketError?: string;
  /** Body 'data' events. */
  arrivals: number;
  /** ms from the request to the response head and to the end. */
  headAt?: number;
  elapsed: number;
}

interface SendOptions {
  body?: Buffer;
  /** Send the body chunked, in pieces of this size. */
  chunked?: number;
  headers?: Record<string, string>;
  agent?: http.Agent | false;
  timeoutMs?: number;
  tls?: https.RequestOptions;
}

/** One request that never rejects: whatever happened is in the outcome. */
function send(method: string, url: string, options: SendOptions = {}): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const out: Outcome = { body: Buffer.alloc(0), complete: false, arrivals: 0, elapsed: 0 };
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      out.body = Buffer.concat(chunks);
      out.elapsed = Date.now() - started;
      if (error) out.error = (error as NodeJS.ErrnoException).code ?? error.message;
      resolve(out);
    };
    const headers: Record<string, string> = { ...options.headers };
    if (options.chunked === undefined) headers['content-length'] = String(options.body?.length ?? 0);
    const agent = options.agent ?? false;
    const req = url.startsWith('https:')
      ? https.request(url, { method, headers, agent: agent as https.Agent | false, ...options.tls })
      : http.request(url, { method, headers, agent });
    if (options.timeoutMs !== undefined) {
      req.setTimeout(options.timeoutMs, () =>
        req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })),
      );
    }
    req.on('socket', (socket) =>
      socket.on('error', (err: NodeJS.ErrnoException) => {
        out.socketError ??= err.code ?? err.message;
      }),
    );
    req.on('error', (err) => finish(err));
    req.on('response', (res) => {
      out.status = res.statusCode;
      out.headers = res.headers;
      out.headAt = Date.now() - started;
      res.on('data', (c: Buffer) => {
        out.arrivals += 1;
        chunks.push(c);
      });
      res.on('error', (err) => finish(err));
      res.on('aborted', () => finish(Object.assign(new Error('aborted'), { code: 'ECONNABORTED' })));
      res.on('end', () => {
        out.complete = res.complete;
        if (!res.complete) finish(Object.assign(new Error('aborted'), { code: 'ECONNABORTED' }));
        else finish();
      });
      res.on('close', () => finish(res.complete ? undefined : new Error('closed early')));
    });
    if (options.chunked !== undefined && options.body) {
      for (let i = 0; i < options.body.length; i += options.chunked) {
        req.write(options.body.subarray(i, i + options.chunked));
      }
      req.end();
    } else req.end(options.body);
  });
}

let registry: RegistryServer;
const BLOB = randomBytes(20_000);
let blobDigest: string;

before(async () => {
  registry = await startRegistry();
  blobDigest = await rawPushBlob(registry.host, 'faults/base', BLOB);
});
after(async () => {
  await registry?.stop();
});

async function withProxy<T>(plan: Plan | undefined, body: (proxy: FaultyProxy) => Promise<T>): Promise<T> {
  const proxy = await startFaultyProxy(registry.host, { plan });
  try {
    return await body(proxy);
  } finally {
    await proxy.stop();
  }
}

const blobUrl = (host: string) => `http://${host}/v2/faults/base/blobs/${blobDigest}`;

/** Starts an upload through `host`; returns the upload URL (absolute, as the registry gives it). */
async function startUpload(host: string, repo: string, agent?: http.Agent): Promise<URL> {
  const post = await send('POST', `http://${host}/v2/${repo}/blobs/uploads/`, { agent: agent ?? false });
  assert.equal(post.status, 202, post.error);
  return new URL(String(post.headers?.location), `http://${host}`);
}

const exists = async (repo: string, digest: string) =>
  (await raw('HEAD', `http://${registry.host}/v2/${repo}/blobs/${digest}`)).status === 200;

describe('fault proxy: transparent forwarding', () => {
  it('passes every byte unchanged and classifies the requests of one keep-alive connection', async () => {
    await withProxy(undefined, async (proxy) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const data = randomBytes(7_000);
        const digest = sha256(data);
        const upload = await startUpload(proxy.host, 'faults/plain', agent);
        assert.equal(upload.host, proxy.host, 'the registry builds Locations from the Host header');
        upload.searchParams.set('digest', digest);
        const put = await send('PUT', upload.href, { body: data, agent });
        assert.equal(put.status, 201);
        // a chunked PATCH (framing counted), then more requests on the same connection
        const upload2 = await startUpload(proxy.host, 'faults/plain', agent);
        const patch = await send('PATCH', upload2.href, { body: BLOB, chunked: 3000, agent });
        assert.equal(patch.status, 202);
        const done = new URL(String(patch.headers?.location), `http://${proxy.host}`);
        done.searchParams.set('digest', blobDigest);
        assert.equal((await send('PUT', done.href, { agent })).status, 201);
        const head = await send('HEAD', `http://${proxy.host}/v2/faults/plain/blobs/${digest}`, { agent });
        assert.equal(head.status, 200);
        const get = await send('GET', `http://${proxy.host}/v2/faults/plain/blobs/${digest}`, { agent });
        assert.ok(get.complete);
        assert.deepEqual(get.body, data);
        const manifest = await send('GET', `http://${proxy.host}/v2/faults/plain/manifests/nope`, { agent });
        assert.equal(manifest.status, 404);
        const tags = await send('GET', `http://${proxy.host}/v2/faults/plain/tags/list`, { agent });
        assert.ok(tags.status === 200 || tags.status === 404, String(tags.status));
        assert.equal(proxy.connections(), 1, 'all of it on one connection');
        // the client closing the connection after a request
        const last = await send('GET', `http://${proxy.host}/v2/faults/plain/blobs/${digest}`, {
          agent,
          headers: { connection: 'close' },
        });
        assert.deepEqual(last.body, data);
        const v2 = await send('GET', `http://${proxy.host}/v2/`, { agent });
        assert.equal(v2.status, 200);
        assert.equal(proxy.connections(), 2);

        assert.deepEqual(
          proxy.events.map((e) => [e.kind, e.method, e.status]),
          [
            ['upload-post', 'POST', 202],
            ['upload-put', 'PUT', 201],
            ['upload-post', 'POST', 202],
            ['upload-patch', 'PATCH', 202],
            ['upload-put', 'PUT', 201],
            ['blob-head', 'HEAD', 200],
            ['blob-get', 'GET', 200],
            ['manifest-get', 'GET', 404],
            ['tags', 'GET', tags.status],
            ['blob-get', 'GET', 200],
            ['other', 'GET', 200],
          ],
        );
        assert.equal(proxy.events[1]?.requestBodyBytes, data.length);
        assert.ok((proxy.events[3]?.requestBodyBytes ?? 0) > BLOB.length, 'chunk framing is counted');
        assert.equal(proxy.events[5]?.bodyBytes, 0, 'HEAD answers have no body');
        assert.equal(proxy.events[6]?.bodyBytes, data.length);
        assert.equal(proxy.events[6]?.path, `/v2/faults/plain/blobs/${digest}`);
        assert.equal(proxy.faults().total, 0);
      } finally {
        agent.destroy();
      }
    });
  });

  it('gives the plan kind, per-kind count and global index', async () => {
    const planned: string[] = [];
    await withProxy(
      (r) => {
        planned.push(`${r.kind}#${r.n}@${r.index}`);
        return undefined;
      },
      async (proxy) => {
        await send('GET', blobUrl(proxy.host));
        await send('HEAD', blobUrl(proxy.host));
        await send('GET', blobUrl(proxy.host));
        await send('GET', `http://${proxy.host}/token?scope=x`);
      },
    );
    assert.deepEqual(planned, ['blob-get#1@1', 'blob-head#1@2', 'blob-get#2@3', 'token#1@4']);
  });
});

describe('fault proxy: faults', () => {
  const onBlobGet =
    (fault: Fault): Plan =>
    (r) =>
      r.kind === 'blob-get' ? fault : undefined;

  it('cut response, close: the client gets exactly `at` body bytes and a short body', async () => {
    await withProxy(onBlobGet({ type: 'cut', side: 'response', at: 1234, how: 'close' }), async (proxy) => {
      const out = await send('GET', blobUrl(proxy.host));
      assert.equal(out.status, 200);
      assert.equal(out.complete, false);
      assert.ok(out.error);
      assert.equal(out.socketError, undefined, 'a clean FIN, not a reset');
      assert.deepEqual(out.body, BLOB.subarray(0, 1234));
      assert.equal(proxy.events[0]?.bodyBytes, 1234);
      assert.equal(proxy.events[0]?.faultApplied, true);
      assert.deepEqual(proxy.faults(), { total: 1, byType: { cut: 1 }, byKind: { 'blob-get': 1 } });
    });
  });

  it('cut response, reset: the client sees ECONNRESET with at most `at` bytes', async () => {
    await withProxy(onBlobGet({ type: 'cut', side: 'response', at: 5000, how: 'reset' }), async (proxy) => {
      const out = await send('GET', blobUrl(proxy.host));
      assert.equal(out.complete, false);
      assert.equal(out.socketError, 'ECONNRESET');
      assert.ok(out.body.length <= 5000);
      assert.deepEqual(out.body, BLOB.subarray(0, out.body.length));
      assert.equal(proxy.events[0]?.bodyBytes, 5000);
    });
  });

  it('cut before the head (-1): no answer at all; the next connection is unharmed', async () => {
    await withProxy(
      (r) =>
        r.kind === 'blob-get' && r.n === 1
          ? { type: 'cut', side: 'response', at: -1, how: 'reset' }
          : undefined,
      async (proxy) => {
        const out = await send('GET', blobUrl(proxy.host));
        assert.equal(out.status, undefined);
        assert.equal(out.socketError, 'ECONNRESET');
        const again = await send('GET', blobUrl(proxy.host));
        assert.deepEqual(again.body, BLOB);
        assert.equal(proxy.events[0]?.status, 200, 'the registry did answer');
      },
    );
  });

  it('cut request: the registry gets `at` body bytes and stores nothing', async () => {
    const data = randomBytes(10_000);
    await withProxy(
      (r) => (r.kind === 'upload-put' ? { type: 'cut', side: 'request', at: 4000, how: 'close' } : undefined),
      async (proxy) => {
        const upload = await startUpload(proxy.host, 'faults/cut');
        upload.searchParams.set('digest', sha256(data));
        const out = await send('PUT', upload.href, { body: data });
        assert.equal(out.status, undefined);
        assert.ok(out.error);
        assert.equal(proxy.events[1]?.requestBodyBytes, 4000);
        assert.equal(await exists('faults/cut', sha256(data)), false);
      },
    );
  });

  it('lose-answer: the registry stores the blob while the client sees only an error', async () => {
    const data = randomBytes(3_000);
    await withProxy(
      (r) => (r.kind === 'upload-put' ? { type: 'lose-answer' } : undefined),
      async (proxy) => {
        const upload = await startUpload(proxy.host, 'faults/lost');
        upload.searchParams.set('digest', sha256(data));
        const out = await send('PUT', upload.href, { body: data });
        assert.equal(out.status, undefined);
        assert.equal(out.socketError, 'ECONNRESET');
        assert.equal(proxy.events[1]?.status, 201, 'the registry answered 201');
        assert.equal(proxy.events[1]?.requestBodyBytes, data.length);
        assert.equal(await exists('faults/lost', sha256(data)), true);
        assert.deepEqual(proxy.faults().byType, { 'lose-answer': 1 });
      },
    );
  });

  it('stall with ms: the answer pauses at the offset, then completes', async () => {
    await withProxy(onBlobGet({ type: 'stall', side: 'response', at: 100, ms: 300 }), async (proxy) => {
      const out = await send('GET', blobUrl(proxy.host));
      assert.ok(out.complete);
      assert.deepEqual(out.body, BLOB);
      assert.ok(out.elapsed >= 280, `took ${out.elapsed} ms`);
    });
  });

  it('stall forever: the client gives up holding `at` bytes, and stop() still returns', async () => {
    const proxy = await startFaultyProxy(registry.host, {
      plan: onBlobGet({ type: 'stall', side: 'response', at: 100 }),
    });
    const out = await send('GET', blobUrl(proxy.host), { timeoutMs: 250 });
    assert.equal(out.error, 'ETIMEDOUT');
    assert.equal(out.body.length, 100);
    assert.ok(out.elapsed >= 240 && out.elapsed < 2000, `took ${out.elapsed} ms`);
    // another stalled request still open while stopping
    const pending = send('GET', blobUrl(proxy.host));
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await proxy.stop();
    assert.ok(Date.now() - started < 1000);
    assert.ok((await pending).error);
  });

  it('stall on the request side holds the body back from the registry', async () => {
    const data = randomBytes(2_000);
    await withProxy(
      (r) => (r.kind === 'upload-put' ? { type: 'stall', side: 'request', at: 1000, ms: 250 } : undefined),
      async (proxy) => {
        const upload = await startUpload(proxy.host, 'faults/stall');
        upload.searchParams.set('digest', sha256(data));
        const out = await send('PUT', upload.href, { body: data });
        assert.equal(out.status, 201);
        assert.ok((out.headAt ?? 0) >= 230, `answered after ${out.headAt} ms`);
      },
    );
  });

  it('drip: `bytes` every `everyMs`, within generous bounds', async () => {
    const data = randomBytes(1_000);
    const digest = await rawPushBlob(registry.host, 'faults/drip', data);
    await withProxy(
      (r) =>
        r.kind === 'blob-get'
          ? { type: 'drip', side: 'response', at: 0, bytes: 200, everyMs: 40 }
          : undefined,
      async (proxy) => {
        const out = await send('GET', `http://${proxy.host}/v2/faults/drip/blobs/${digest}`);
        assert.deepEqual(out.body, data);
        // five slices, four pauses of 40 ms
        assert.ok(out.elapsed >= 150 && out.elapsed < 3000, `took ${out.elapsed} ms`);
        assert.ok(out.arrivals >= 4, `${out.arrivals} arrivals`);
      },
    );
  });

  it('drip on the request side slows the upload', async () => {
    const data = randomBytes(600);
    await withProxy(
      (r) =>
        r.kind === 'upload-put'
          ? { type: 'drip', side: 'request', at: 0, bytes: 200, everyMs: 50 }
          : undefined,
      async (proxy) => {
        const upload = await startUpload(proxy.host, 'faults/drip');
        upload.searchParams.set('digest', sha256(data));
        const out = await send('PUT', upload.href, { body: data });
        assert.equal(out.status, 201);
        assert.ok(out.elapsed >= 90, `took ${out.elapsed} ms`);
        assert.equal(await exists('faults/drip', sha256(data)), true);
      },
    );
  });

  it('an offset past the end of the message cuts at its end', async () => {
    await withProxy(onBlobGet({ type: 'cut', side: 'response', at: 1e9, how: 'close' }), async (proxy) => {
      const out = await send('GET', blobUrl(proxy.host));
      assert.deepEqual(out.body, BLOB);
      assert.equal(proxy.events[0]?.faultApplied, true);
    });
  });
});

describe('fault proxy: randomCuts', () => {
  async function run(seed: number) {
    return withProxy(randomCuts({ seed, kinds: ['blob-get'], probability: 0.5 }), async (proxy) => {
      const outcomes: string[] = [];
      for (let i = 0; i < 12; i += 1) {
        const out = await send('GET', blobUrl(proxy.host));
        outcomes.push(out.complete ? 'ok' : 'cut');
        // HEADs are not in `kinds`: never cut
        assert.equal((await send('HEAD', blobUrl(proxy.host))).status, 200);
      }
      const cuts = proxy.events
        .filter((e) => e.fault)
        .map((e) => `${e.fault?.type === 'cut' ? e.fault.how : '?'}@${e.faultAt}`);
      return { outcomes, cuts, faults: proxy.faults(), events: proxy.events };
    });
  }

  it('is deterministic per seed, bounded by the body size, alternating reset and close', async () => {
    const a = await run(7);
    const b = await run(7);
    const c = await run(8);
    assert.deepEqual(a.cuts, b.cuts);
    assert.deepEqual(a.outcomes, b.outcomes);
    assert.notDeepEqual(a.cuts, c.cuts);
    assert.ok(a.faults.total > 0 && a.faults.total < 12, `${a.faults.total} cuts`);
    assert.equal(a.faults.byKind['blob-get'], a.faults.total);
    assert.equal(a.outcomes.filter((o) => o === 'cut').length, a.faults.total);
    for (const e of a.events.filter((e) => e.fault)) {
      assert.ok((e.faultAt ?? -1) >= 0 && (e.faultAt ?? 0) < BLOB.length, String(e.faultAt));
      assert.equal(e.bodyBytes, e.faultAt);
    }
    assert.deepEqual(
      a.cuts.map((c) => c.split('@')[0]),
      a.cuts.map((_, i) => (i % 2 === 0 ? 'reset' : 'close')),
    );
  });
});

describe('fault proxy: TLS (raw offsets)', () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  let tlsRegistry: RegistryServer;
  let tls: https.RequestOptions;
  const data = randomBytes(30_000);
  let digest: string;

  before(async () => {
    work = await tempDir();
    const ca = await makeCa(work.path);
    const cert = await makeCert(ca, work.path, 'registry', { sans: ['127.0.0.1'] });
    tlsRegistry = await startRegistry({ tls: { certificate: cert.certPath, key: cert.keyPath } });
    tls = { ca: ca.certPem };
    digest = sha256(data);
    const post = await send('POST', `https://${tlsRegistry.host}/v2/faults/tls/blobs/uploads/`, { tls });
    assert.equal(post.status, 202, post.error);
    const upload = new URL(String(post.headers?.location), `https://${tlsRegistry.host}`);
    upload.searchParams.set('digest', digest);
    const put = await send('PUT', upload.href, { body: data, tls });
    assert.equal(put.status, 201, put.error);
  });
  after(async () => {
    await tlsRegistry?.stop();
    await work?.remove();
  });

  it('forwards TLS untouched, and cuts a connection at a raw byte offset', async () => {
    const kinds: string[] = [];
    let cutAt = Number.POSITIVE_INFINITY;
    const proxy = await startFaultyProxy(tlsRegistry.host, {
      tls: true,
      plan: (r) => {
        kinds.push(r.kind);
        return r.n === 2 ? { type: 'cut', side: 'response', at: cutAt, how: 'close' } : undefined;
      },
    });
    try {
      const url = `https://${proxy.host}/v2/faults/tls/blobs/${digest}`;
      const whole = await send('GET', url, { tls });
      assert.ok(whole.complete, whole.error);
      assert.deepEqual(whole.body, data);
      const total = proxy.events[0]?.bodyBytes ?? 0;
      assert.ok(total > data.length, `${total} raw bytes for ${data.length} body bytes`);
      cutAt = total - 10_000;
      const cut = await send('GET', url, { tls });
      assert.equal(cut.status, 200, 'the head came through');
      assert.equal(cut.complete, false);
      assert.ok(cut.error);
      assert.ok(cut.body.length > 0 && cut.body.length < data.length, `${cut.body.length} bytes`);
      assert.deepEqual(cut.body, data.subarray(0, cut.body.length));
      assert.equal(proxy.events[1]?.bodyBytes, cutAt);
      assert.deepEqual(kinds, ['connection', 'connection']);
      assert.deepEqual(proxy.faults(), { total: 1, byType: { cut: 1 }, byKind: { connection: 1 } });
    } finally {
      await proxy.stop();
    }
  });
});
