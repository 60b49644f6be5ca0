import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pull } from '../../src/ops/pull.js';
import { push } from '../../src/ops/push.js';
import { listTags } from '../../src/ops/repository.js';
import { registryMemory } from '../../src/registry/client.js';
import type { RetryClock } from '../../src/transport/retry.js';
import { basic, startBasicAuthRegistry } from '../harness/auth.js';
import { runCli } from '../harness/cli.js';
import { HELLO_WASM, tempDir, writeLargeWasm } from '../harness/fixtures.js';
import { type SeenRequest, startQuirkProxy } from '../harness/quirk-proxy.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

/**
 * Real registries' deviations, imitated one at a time by a proxy in front of the real Distribution
 * registry: capped or refused PATCH bodies, a Range that stops advancing, a used-up rate limit,
 * Warning headers, an upload Location on another host, a silent server, a slowloris body, an endless
 * tag list. Each behaves as the transport issue describes.
 */

const SIZE = 20 * 1024 * 1024;
const instant: RetryClock = { now: () => Date.now(), sleep: async () => {}, random: () => 0.5 };
const plainHttp = true;

let work: Awaited<ReturnType<typeof tempDir>>;
let registry: RegistryServer;
let big = '';
let bigBytes: Buffer;

before(async () => {
  work = await tempDir();
  registry = await startRegistry();
  big = join(work.path, 'big.wasm');
  await writeLargeWasm(big, SIZE);
  bigBytes = await readFile(big);
});
after(async () => {
  await registry?.stop();
  await work?.remove();
});

/** Pushes the 20 MiB module through a quirk and checks the registry holds it, byte for byte. */
async function pushThrough(quirk: Parameters<typeof startQuirkProxy>[1], repo: string) {
  const proxy = await startQuirkProxy(registry.host, quirk);
  try {
    const res = await push({ file: big, reference: `${proxy.host}/${repo}:v1`, clock: instant, plainHttp });
    const out = join(work.path, `${repo.replace(/\W/g, '-')}.wasm`);
    await pull({ reference: `${registry.host}/${repo}:v1`, output: out, plainHttp });
    assert.ok((await readFile(out)).equals(bigBytes), 'the registry holds the exact bytes');
    return { res, seen: proxy.seen.slice() };
  } finally {
    await proxy.stop();
  }
}

const patches = (seen: SeenRequest[]) => seen.filter((s) => s.method === 'PATCH');

describe('upload quirks', () => {
  it('PATCH bodies capped at 4 MiB (416 above): the push goes on in 4 MiB chunks', async () => {
    const { seen } = await pushThrough({ type: 'patch-cap', maxBytes: 4 * 1024 * 1024 }, 'quirks/capped');
    // One refused streamed PATCH, then five chunks of at most 4 MiB.
    assert.equal(
      patches(seen).length,
      6,
      JSON.stringify(patches(seen).map((s) => s.headers['content-length'])),
    );
    for (const p of patches(seen).slice(1)) assert.ok(Number(p.headers['content-length']) <= 4 * 1024 * 1024);
  });

  for (const status of [405, 416, 413, 400, 501]) {
    it(`PATCH refused altogether (${status}): one monolithic PUT instead`, async () => {
      const { seen } = await pushThrough({ type: 'no-patch', status }, `quirks/nopatch${status}`);
      assert.equal(patches(seen).length, 2, 'a streamed PATCH and a first chunk, each refused');
      assert.ok(
        seen.some(
          (s) =>
            s.method === 'PUT' &&
            /\/blobs\/uploads\//.test(s.path) &&
            Number(s.headers['content-length']) === SIZE,
        ),
        'the module went up in one PUT',
      );
    });
  }

  it('a Range that stops advancing: one monolithic PUT instead', async () => {
    const { seen } = await pushThrough({ type: 'stuck-range' }, 'quirks/stuck');
    assert.ok(seen.some((s) => s.method === 'PUT' && Number(s.headers['content-length']) === SIZE));
  });

  it('an upload Location on another host gets no credentials', async () => {
    const dir = join(work.path, 'auth');
    await mkdir(dir, { recursive: true });
    const secured = await startBasicAuthRegistry(dir, { alice: 'wonderland-secret' });
    const proxy = await startQuirkProxy(secured.host, { type: 'foreign-location' });
    try {
      const env = {
        HOME: work.path,
        DOCKER_CONFIG: join(work.path, 'docker'),
        XDG_CACHE_HOME: join(work.path, 'c'),
      };
      const res = await runCli(
        [
          'push',
          HELLO_WASM,
          `${proxy.host}/quirks/foreign:v1`,
          '-u',
          'alice',
          '--password-stdin',
          '--plain-http',
        ],
        { env, input: 'wonderland-secret', cwd: work.path },
      );
      // The registry behind the other host wants credentials it never gets: the push fails cleanly.
      assert.equal(res.code, 1, res.stderr);
      assert.doesNotMatch(res.stderr, /looks like a bug/);
      assert.ok(proxy.foreignRequests.length > 0, 'the upload went to the other host');
      for (const headers of proxy.foreignRequests) {
        assert.equal(headers.authorization, undefined, 'no Authorization to another host');
        assert.ok(!JSON.stringify(headers).includes(basic('alice', 'wonderland-secret')));
      }
      assert.ok(
        proxy.seen.some((s) => s.headers.authorization?.startsWith('Basic ')),
        'the registry host got them',
      );
    } finally {
      await proxy.stop();
      await secured.stop();
    }
  });
});

describe('single-request uploads (POST ?digest= with the bytes)', () => {
  const blobPosts = (seen: SeenRequest[]) =>
    seen.filter((s) => s.method === 'POST' && /\/blobs\/uploads\/\?digest=/.test(s.path));
  const blobPuts = (seen: SeenRequest[]) =>
    seen.filter((s) => s.method === 'PUT' && /\/blobs\/uploads\//.test(s.path));

  /** Pushes hello.wasm through the proxy (`times` pushes, one memory), checking the bytes each time. */
  async function pushSmall(quirk: Parameters<typeof startQuirkProxy>[1], repo: string, times = 1) {
    const proxy = await startQuirkProxy(registry.host, quirk);
    const memory = registryMemory();
    const rounds: SeenRequest[][] = [];
    try {
      for (let i = 0; i < times; i++) {
        const from = proxy.seen.length;
        await push({ file: HELLO_WASM, reference: `${proxy.host}/${repo}${i}:v1`, plainHttp, memory });
        const out = join(work.path, `${repo.replace(/\W/g, '-')}${i}.wasm`);
        await pull({ reference: `${registry.host}/${repo}${i}:v1`, output: out, plainHttp });
        assert.ok((await readFile(out)).equals(await readFile(HELLO_WASM)), 'the registry holds the bytes');
        rounds.push(proxy.seen.slice(from));
      }
      return rounds;
    } finally {
      await proxy.stop();
    }
  }

  it('a registry that takes the single request gets each small blob in one: no PUT, no PATCH', async () => {
    const [seen = []] = await pushSmall({ type: 'post-digest', complete: true }, 'single/direct');
    assert.equal(blobPosts(seen).length, 2, 'the config and the module, one POST each');
    assert.equal(blobPuts(seen).length, 0);
    assert.equal(patches(seen).length, 0);
  });

  it('Distribution 2.8 opens a session instead (202): that session gets the PUT; remembered', async () => {
    for (const quirk of [
      { type: 'mutate', fn: () => false },
      { type: 'post-digest', ignore: true },
    ] as const) {
      const [first = [], second = []] = await pushSmall(quirk, `single/ignored-${quirk.type}`, 2);
      const paths = JSON.stringify(first.map((s) => `${s.method} ${s.path}`));
      // Both blobs go at once, so each may try it before the first 202 is known.
      assert.ok(blobPosts(first).length >= 1 && blobPosts(first).length <= 2, paths);
      assert.equal(blobPuts(first).length, 2, 'each blob went up in a PUT');
      assert.equal(
        first.filter((s) => s.method === 'POST').length,
        2,
        `one POST per blob (a 202 session is used for the PUT): ${paths}`,
      );
      assert.equal(blobPosts(second).length, 0, 'the next push does not try the single request again');
      assert.equal(blobPuts(second).length, 2);
    }
  });

  for (const status of [400, 404, 405]) {
    it(`a registry that refuses the single request (${status}): POST + PUT instead`, async () => {
      const [seen = []] = await pushSmall({ type: 'post-digest', status }, `single/refused${status}`);
      assert.equal(blobPuts(seen).length, 2, JSON.stringify(seen.map((s) => `${s.method} ${s.path}`)));
    });
  }
});

describe('answer quirks', () => {
  it('429 with RateLimit-Remaining: 0 stops at once and says when the limit resets', async () => {
    await push({ file: HELLO_WASM, reference: `${registry.host}/quirks/limited:v1`, plainHttp });
    const proxy = await startQuirkProxy(registry.host, { type: 'rate-limit' });
    try {
      await assert.rejects(
        pull({
          reference: `${proxy.host}/quirks/limited:v1`,
          output: join(work.path, 'l.wasm'),
          clock: instant,
          plainHttp,
        }),
        (err: Error & { code?: string }) =>
          err.code === 'RATE_LIMITED' &&
          /rate limit reached \(100 requests per window\); it resets within 6 h/.test(err.message),
      );
      assert.equal(proxy.seen.length, 1, 'no retry spent the quota');
    } finally {
      await proxy.stop();
    }
  });

  it('Warning headers are printed once each on stderr', async () => {
    await push({ file: HELLO_WASM, reference: `${registry.host}/quirks/warned:v1`, plainHttp });
    const proxy = await startQuirkProxy(registry.host, {
      type: 'warning',
      texts: ['this registry is deprecated', 'read-only at night'],
    });
    try {
      const env = {
        HOME: work.path,
        DOCKER_CONFIG: join(work.path, 'docker'),
        XDG_CACHE_HOME: join(work.path, 'c'),
      };
      const res = await runCli(
        ['pull', `${proxy.host}/quirks/warned:v1`, '-o', join(work.path, 'w.wasm'), '--plain-http'],
        {
          env,
          cwd: work.path,
        },
      );
      assert.equal(res.code, 0, res.stderr);
      assert.equal(
        res.stderr.match(/Warning: 127\.0\.0\.1:\d+: this registry is deprecated/g)?.length,
        1,
        res.stderr,
      );
      assert.equal(res.stderr.match(/Warning: 127\.0\.0\.1:\d+: read-only at night/g)?.length, 1, res.stderr);
    } finally {
      await proxy.stop();
    }
  });

  it('a registry that never answers blob requests: a time-out naming the phase, after bounded tries', async () => {
    await push({ file: HELLO_WASM, reference: `${registry.host}/quirks/silent:v1`, plainHttp });
    const proxy = await startQuirkProxy(registry.host, { type: 'silent', paths: /\/blobs\// });
    try {
      const started = Date.now();
      await assert.rejects(
        pull({
          reference: `${proxy.host}/quirks/silent:v1`,
          output: join(work.path, 's.wasm'),
          clock: instant,
          plainHttp,
          timeouts: { headersMs: 300, idleMs: 300 },
        }),
        (err: Error & { code?: string }) =>
          err.code === 'TIMEOUT' && /waiting for an answer from 127\.0\.0\.1:\d+ timed out/.test(err.message),
      );
      assert.ok(Date.now() - started < 10_000);
      assert.equal(proxy.seen.filter((s) => s.path.includes('/blobs/')).length, 4, 'four tries');
    } finally {
      await proxy.stop();
    }
  });

  it('a slowloris manifest must arrive whole within the limit; a slowloris blob is stalled', async () => {
    await push({ file: HELLO_WASM, reference: `${registry.host}/quirks/slow:v1`, plainHttp });
    const manifests = await startQuirkProxy(registry.host, {
      type: 'slowloris',
      paths: /\/manifests\//,
      everyMs: 100,
    });
    try {
      await assert.rejects(
        pull({
          reference: `${manifests.host}/quirks/slow:v1`,
          output: join(work.path, 'sm.wasm'),
          clock: instant,
          plainHttp,
          timeouts: { idleMs: 400 },
        }),
        (err: Error & { code?: string }) =>
          err.code === 'TIMEOUT' && /reading the answer of/.test(err.message),
      );
    } finally {
      await manifests.stop();
    }
    const blobs = await startQuirkProxy(registry.host, {
      type: 'slowloris',
      paths: /\/blobs\/sha256/,
      everyMs: 50,
    });
    try {
      await assert.rejects(
        pull({
          reference: `${blobs.host}/quirks/slow:v1`,
          output: join(work.path, 'sb.wasm'),
          clock: instant,
          plainHttp,
          timeouts: { rateWindowMs: 300, minBytesPerSecond: 1024 },
          retry: { resumes: 2 },
        }),
        (err: Error & { code?: string }) => err.code === 'TIMEOUT' && /stalled/.test(err.message),
      );
    } finally {
      await blobs.stop();
    }
  });

  it('an endless tag list is stopped at its bound; the CLI prints pages as they come', async () => {
    const proxy = await startQuirkProxy(registry.host, { type: 'endless-tags', pageSize: 1000 });
    try {
      await assert.rejects(
        listTags({ reference: `${proxy.host}/quirks/endless`, plainHttp, clock: instant, maxPages: 50 }),
        (err: Error & { code?: string }) =>
          err.code === 'TOO_LARGE' && /more than 50 pages of tags; stopped/.test(err.message),
      );
      assert.equal(proxy.seen.length, 50, 'no page past the bound was asked for');
      // The CLI streams: 5,000 tags are on stdout while it is still listing.
      const { spawn } = await import('node:child_process');
      const { CLI } = await import('../harness/cli.js');
      const child = spawn(process.execPath, [CLI, 'tags', `${proxy.host}/quirks/endless`, '--plain-http'], {
        env: { ...process.env, HOME: work.path, XDG_CACHE_HOME: join(work.path, 'c') },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let lines = 0;
      await new Promise<void>((resolve) => {
        child.stdout.on('data', (d: Buffer) => {
          lines += d.toString().split('\n').length - 1;
          if (lines >= 5000) resolve();
        });
        child.on('close', () => resolve());
      });
      assert.ok(lines >= 5000, `${lines} tags printed`);
      assert.equal(child.exitCode, null, 'and the listing was still going');
      child.kill();
    } finally {
      await proxy.stop();
    }
  });
});
