import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { type Quirk, type QuirkProxy, RATE_LIMIT_BODY, startQuirkProxy } from '../harness/quirk-proxy.js';
import { raw, rawPushBlob, sha256 } from '../harness/raw.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

/**
 * The quirk proxy, checked in front of the real Distribution registry with raw requests (no project
 * code): each quirk changes what it promises and leaves the rest to the registry.
 */

let registry: RegistryServer;

before(async () => {
  registry = await startRegistry();
});
after(async () => {
  await registry?.stop();
});

async function withQuirk<T>(quirk: Quirk, body: (proxy: QuirkProxy) => Promise<T>): Promise<T> {
  const proxy = await startQuirkProxy(registry.host, quirk);
  try {
    return await body(proxy);
  } finally {
    await proxy.stop();
  }
}

async function startUpload(host: string, repo: string, headers: Record<string, string> = {}): Promise<URL> {
  const post = await raw('POST', `http://${host}/v2/${repo}/blobs/uploads/`, undefined, headers);
  assert.equal(post.status, 202, post.body.toString());
  return new URL(String(post.headers.location), `http://${host}`);
}

const patch = (url: URL | string, body: Buffer) =>
  raw('PATCH', String(url), body, { 'content-type': 'application/octet-stream' });

/** A PATCH with a chunked body (no Content-Length). */
function patchChunked(
  url: URL,
  body: Buffer,
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'PATCH', agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c: Buffer) => {
        text += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    req.write(body.subarray(0, 100));
    req.end(body.subarray(100));
  });
}

/** The registry's own view of an upload: its Range, asked directly (not through the proxy). */
async function realRange(upload: URL): Promise<string> {
  const status = await raw('GET', `http://${registry.host}${upload.pathname}${upload.search}`);
  assert.equal(status.status, 204, status.body.toString());
  return String(status.headers.range);
}

const blobExists = async (repo: string, digest: string) =>
  (await raw('HEAD', `http://${registry.host}/v2/${repo}/blobs/${digest}`)).status === 200;

interface Timed {
  status?: number;
  body: Buffer;
  headAt?: number;
  elapsed: number;
  error?: string;
}

function timedGet(url: string, timeoutMs?: number): Promise<Timed> {
  const started = Date.now();
  return new Promise((resolve) => {
    const out: Timed = { body: Buffer.alloc(0), elapsed: 0 };
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (error?: string) => {
      if (done) return;
      done = true;
      out.body = Buffer.concat(chunks);
      out.elapsed = Date.now() - started;
      if (error) out.error = error;
      resolve(out);
    };
    const req = http.request(url, { agent: false });
    if (timeoutMs !== undefined) req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', (err) => finish(err.message));
    req.on('response', (res) => {
      out.status = res.statusCode;
      out.headAt = Date.now() - started;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish());
      res.on('error', (err) => finish(err.message));
    });
    req.end();
  });
}

describe('quirk proxy', () => {
  it('patch-cap: PATCHes above the cap get 416 with a spec error body; smaller ones go through', async () => {
    await withQuirk({ type: 'patch-cap', maxBytes: 1024 }, async (proxy) => {
      const upload = await startUpload(proxy.host, 'quirks/cap');
      const big = await patch(upload, randomBytes(2000));
      assert.equal(big.status, 416);
      const error = JSON.parse(big.body.toString()) as { errors: Array<{ code: string }> };
      assert.equal(error.errors[0]?.code, 'BLOB_UPLOAD_INVALID');
      assert.ok(big.headers.location, 'the upload Location comes with it');
      const bigChunked = await patchChunked(upload, randomBytes(1500));
      assert.equal(bigChunked.status, 416, 'chunked bodies are judged by the bytes received');

      const data = randomBytes(1000);
      const small = await patch(upload, data);
      assert.equal(small.status, 202);
      assert.equal(small.headers.range, '0-999');
      const more = randomBytes(600);
      const next = new URL(String(small.headers.location), `http://${proxy.host}`);
      const chunked = await patchChunked(next, more);
      assert.equal(chunked.status, 202, chunked.body);
      const all = Buffer.concat([data, more]);
      const done = new URL(String(chunked.headers.location), `http://${proxy.host}`);
      done.searchParams.set('digest', sha256(all));
      assert.equal((await raw('PUT', done.href)).status, 201);
      assert.equal(await blobExists('quirks/cap', sha256(all)), true);
      assert.deepEqual(
        proxy.seen.map((s) => s.method),
        ['POST', 'PATCH', 'PATCH', 'PATCH', 'PATCH', 'PUT'],
      );
    });
  });

  it('no-patch: every PATCH is refused with the chosen status; monolithic uploads still work', async () => {
    for (const status of [416, 413, 400, 405, 501, undefined]) {
      await withQuirk({ type: 'no-patch', ...(status ? { status } : {}) }, async (proxy) => {
        const upload = await startUpload(proxy.host, 'quirks/nopatch');
        const res = await patch(upload, randomBytes(100));
        assert.equal(res.status, status ?? 405);
        assert.match(res.body.toString(), /"errors":\[\{"code":"UNSUPPORTED"/);
        const digest = await rawPushBlob(proxy.host, 'quirks/nopatch', randomBytes(300));
        assert.equal(await blobExists('quirks/nopatch', digest), true);
      });
    }
  });

  it("stuck-range: the 202's Range says 0-0 while the registry holds more", async () => {
    await withQuirk({ type: 'stuck-range' }, async (proxy) => {
      const upload = await startUpload(proxy.host, 'quirks/stuck');
      const first = await patch(upload, randomBytes(1000));
      assert.equal(first.status, 202);
      assert.equal(first.headers.range, '0-0');
      const next = new URL(String(first.headers.location), `http://${proxy.host}`);
      assert.equal(await realRange(next), '0-999');
      const second = await patch(next, randomBytes(500));
      assert.equal(second.headers.range, '0-0');
      assert.equal(await realRange(new URL(String(second.headers.location))), '0-1499');
    });
  });

  it('rate-limit: after `after` requests, 429 with the rate-limit headers and a TOOMANYREQUESTS body', async () => {
    await withQuirk({ type: 'rate-limit', after: 2 }, async (proxy) => {
      assert.equal((await raw('GET', `http://${proxy.host}/v2/`)).status, 200);
      assert.equal((await raw('GET', `http://${proxy.host}/v2/`)).status, 200);
      for (let i = 0; i < 2; i += 1) {
        const limited = await raw('GET', `http://${proxy.host}/v2/quirks/x/manifests/v1`);
        assert.equal(limited.status, 429);
        assert.equal(limited.headers['ratelimit-limit'], '100;w=21600');
        assert.equal(limited.headers['ratelimit-remaining'], '0;w=21600');
        assert.equal(limited.headers['docker-ratelimit-source'], '127.0.0.1');
        assert.equal(limited.body.toString(), RATE_LIMIT_BODY);
        assert.deepEqual(JSON.parse(limited.body.toString()), {
          errors: [{ code: 'TOOMANYREQUESTS', message: 'You have reached your pull rate limit.' }],
        });
      }
      assert.equal(proxy.seen.length, 4);
    });
  });

  it('warning: every answer carries one Warning header per text', async () => {
    await withQuirk({ type: 'warning', texts: ['first "quoted"', 'second'] }, async (proxy) => {
      const digest = await rawPushBlob(proxy.host, 'quirks/warn', randomBytes(50));
      const get = await new Promise<http.IncomingMessage>((resolve, reject) =>
        http
          .get(`http://${proxy.host}/v2/quirks/warn/blobs/${digest}`, { agent: false }, (res) => {
            res.resume();
            resolve(res);
          })
          .on('error', reject),
      );
      assert.equal(get.statusCode, 200);
      const warnings = get.rawHeaders.filter(
        (_, i) => i % 2 === 1 && /^warning$/i.test(get.rawHeaders[i - 1] ?? ''),
      );
      assert.deepEqual(warnings, ['299 - "first \\"quoted\\""', '299 - "second"']);
      const missing = await raw('GET', `http://${proxy.host}/v2/quirks/warn/manifests/none`);
      assert.equal(missing.status, 404);
      assert.match(String(missing.headers.warning), /299 - "second"/);
    });
  });

  it('foreign-location: upload Locations point to another host, which records what it received', async () => {
    await withQuirk({ type: 'foreign-location' }, async (proxy) => {
      const credentials = { authorization: 'Basic dXNlcjpzZWNyZXQ=' };
      const upload = await startUpload(proxy.host, 'quirks/foreign', credentials);
      assert.equal(upload.host, proxy.foreignHost);
      assert.notEqual(proxy.foreignHost, proxy.host);
      // a careful client sends no credentials to the other host
      const data = randomBytes(800);
      const patched = await patch(upload, data);
      assert.equal(patched.status, 202);
      const next = new URL(String(patched.headers.location), `http://${proxy.foreignHost}`);
      assert.equal(next.host, proxy.foreignHost);
      next.searchParams.set('digest', sha256(data));
      assert.equal((await raw('PUT', next.href)).status, 201);
      assert.equal(await blobExists('quirks/foreign', sha256(data)), true);
      assert.equal(proxy.seen.length, 1);
      assert.equal(proxy.seen[0]?.headers.authorization, credentials.authorization);
      assert.equal(proxy.foreignRequests.length, 2);
      assert.ok(proxy.foreignRequests.every((h) => h.authorization === undefined));
    });
  });

  it('silent: matching requests are never answered; others are; stop() closes them', async () => {
    const proxy = await startQuirkProxy(registry.host, { type: 'silent', paths: /\/manifests\// });
    const hung = await timedGet(`http://${proxy.host}/v2/quirks/silent/manifests/v1`, 200);
    assert.equal(hung.error, 'timeout');
    assert.equal(hung.status, undefined);
    assert.equal((await raw('GET', `http://${proxy.host}/v2/`)).status, 200);
    const pending = timedGet(`http://${proxy.host}/v2/quirks/silent/manifests/v2`);
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await proxy.stop();
    assert.ok(Date.now() - started < 1000);
    assert.ok((await pending).error, 'the open request ends with stop()');
  });

  it('slowloris: the head comes at once, the body one byte every `everyMs`', async () => {
    const data = randomBytes(25);
    const digest = await rawPushBlob(registry.host, 'quirks/slow', data);
    await withQuirk({ type: 'slowloris', paths: /\/blobs\/sha256:/, everyMs: 10 }, async (proxy) => {
      const got = await timedGet(`http://${proxy.host}/v2/quirks/slow/blobs/${digest}`);
      assert.equal(got.status, 200);
      assert.deepEqual(got.body, data);
      assert.ok((got.headAt ?? 1e9) < 200, `head after ${got.headAt} ms`);
      assert.ok(got.elapsed >= 200 && got.elapsed < 3000, `body after ${got.elapsed} ms`);
      const v2 = await timedGet(`http://${proxy.host}/v2/`);
      assert.ok(v2.elapsed < 200, 'other paths are not slowed');
    });
  });

  it('endless-tags: pages of valid made-up tags with a Link that is always new', async () => {
    await withQuirk({ type: 'endless-tags', pageSize: 5 }, async (proxy) => {
      let next = '/v2/quirks/endless/tags/list';
      const targets = new Set<string>();
      const tags = new Set<string>();
      for (let page = 0; page < 20; page += 1) {
        const res = await raw('GET', `http://${proxy.host}${next}`);
        assert.equal(res.status, 200);
        const body = JSON.parse(res.body.toString()) as { name: string; tags: string[] };
        assert.equal(body.name, 'quirks/endless');
        assert.equal(body.tags.length, 5);
        for (const tag of body.tags) {
          assert.match(tag, /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/);
          assert.ok(!tags.has(tag), `tag ${tag} repeated`);
          tags.add(tag);
        }
        assert.deepEqual([...body.tags].sort(), body.tags, 'sorted, as the spec wants');
        const link = /^<([^>]+)>; rel="next"$/.exec(String(res.headers.link));
        assert.ok(link?.[1], String(res.headers.link));
        assert.ok(!targets.has(link[1]), 'never the same page twice');
        targets.add(link[1]);
        next = link[1];
      }
      const small = await raw('GET', `http://${proxy.host}/v2/quirks/endless/tags/list?n=2`);
      assert.equal((JSON.parse(small.body.toString()) as { tags: string[] }).tags.length, 2);
    });
  });

  it('mutate: answers what the function answers and forwards the rest', async () => {
    await withQuirk(
      {
        type: 'mutate',
        fn: (req, res) => {
          if (!req.url?.includes('/teapot/')) return false;
          req.resume();
          res.writeHead(418, { 'content-type': 'text/plain' });
          res.end('short and stout');
          return true;
        },
      },
      async (proxy) => {
        const tea = await raw('GET', `http://${proxy.host}/v2/teapot/manifests/v1`);
        assert.equal(tea.status, 418);
        assert.equal(tea.body.toString(), 'short and stout');
        assert.equal((await raw('GET', `http://${proxy.host}/v2/`)).status, 200);
        assert.deepEqual(
          proxy.seen.map((s) => `${s.method} ${s.path}`),
          ['GET /v2/teapot/manifests/v1', 'GET /v2/'],
        );
      },
    );
  });
});
