import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { fakeClock } from '../../test/harness/clock.js';
import { RegistryClient, registryMemory } from './client.js';
import { RemoteRepository } from './repository.js';
import { PositionedHash } from './upload.js';

// Resumable downloads and uploads against an in-process registry that follows the distribution spec
// where Distribution does not (ranged GETs, upload sessions that report what they hold and continue),
// with faults scripted per test. The real registry, with a fault proxy in front, is exercised in
// test/integration/. Retries run on a fake clock: no test waits for real.

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const BLOB = randomBytes(3 * 1024 * 1024 + 123);
const DIGEST = sha256(BLOB);

interface Session {
  bytes: Buffer[];
  size: number;
}

/** What the server does; reset before each test. */
const plan = {
  /** Cut the connection of the first blob GET after this many body bytes. */
  cutGetAt: -1,
  /** Answer ranged GETs with the whole blob (200). */
  ignoreRange: false,
  /** Answer ranged GETs with a 206 that starts elsewhere. */
  wrongRange: false,
  /** Redirect blob GETs to a storage URL with a fresh token. */
  redirect: false,
  /** Cut the first PATCH after this many received bytes (the session keeps them). */
  cutPatchAt: -1,
  /** With cutPatchAt: the session keeps the bytes of the cut PATCH with one of them changed. */
  garbleCut: false,
  /** Refuse PATCH bodies larger than this with 416. */
  patchCap: Number.POSITIVE_INFINITY,
  /** Answer PATCHes with a Range that never advances. */
  stuckRange: false,
  /** Drop the connection instead of answering the first commit (after committing). */
  loseCommitAnswer: false,
  /** Answer the first n requests of any kind with 503. */
  unavailable: 0,
};

const seen: Array<{ method: string; url: string; range?: string; contentRange?: string }> = [];
const sessions = new Map<string, Session>();
const blobs = new Map<string, Buffer>([[DIGEST, BLOB]]);
let gets = 0;
let patches = 0;
let commits = 0;
let server: http.Server;
let host = '';

function reset(): void {
  Object.assign(plan, {
    cutGetAt: -1,
    ignoreRange: false,
    wrongRange: false,
    redirect: false,
    cutPatchAt: -1,
    garbleCut: false,
    patchCap: Number.POSITIVE_INFINITY,
    stuckRange: false,
    loseCommitAnswer: false,
    unavailable: 0,
  });
  seen.length = 0;
  sessions.clear();
  gets = 0;
  patches = 0;
  commits = 0;
  for (const key of [...blobs.keys()]) if (key !== DIGEST) blobs.delete(key);
}

function serveBlob(req: http.IncomingMessage, res: http.ServerResponse, blob: Buffer): void {
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  let start = range && !plan.ignoreRange ? Number(range[1]) : 0;
  if (range && plan.wrongRange) start = Math.max(0, start - 10);
  const body = blob.subarray(start);
  const headers: http.OutgoingHttpHeaders = { 'content-length': body.length };
  if (range && !plan.ignoreRange)
    headers['content-range'] = `bytes ${start}-${blob.length - 1}/${blob.length}`;
  res.writeHead(range && !plan.ignoreRange ? 206 : 200, headers);
  if (gets++ === 0 && plan.cutGetAt >= 0) {
    res.write(body.subarray(0, plan.cutGetAt), () => res.socket?.destroy());
    return;
  }
  res.end(body);
}

before(async () => {
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push({
      method: req.method ?? '',
      url: url.pathname,
      range: req.headers.range,
      contentRange: req.headers['content-range'] as string | undefined,
    });
    if (plan.unavailable > 0) {
      plan.unavailable--;
      req.resume();
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAVAILABLE"}]}');
      return;
    }
    const blob = /^\/v2\/r\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    if (blob && req.method === 'GET') {
      if (plan.redirect) {
        res.writeHead(307, { location: `/storage/${blob[1]}?token=${randomBytes(4).toString('hex')}` });
        res.end();
        return;
      }
      const bytes = blobs.get(blob[1] as string);
      if (!bytes) {
        res.writeHead(404);
        res.end();
        return;
      }
      serveBlob(req, res, bytes);
      return;
    }
    if (blob && req.method === 'HEAD') {
      const bytes = blobs.get(blob[1] as string);
      res.writeHead(bytes ? 200 : 404, bytes ? { 'content-length': bytes.length } : {});
      res.end();
      return;
    }
    const storage = /^\/storage\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    if (storage) {
      serveBlob(req, res, blobs.get(storage[1] as string) as Buffer);
      return;
    }
    if (url.pathname === '/v2/r/blobs/uploads/' && req.method === 'POST') {
      req.resume();
      const id = randomBytes(4).toString('hex');
      sessions.set(id, { bytes: [], size: 0 });
      res.writeHead(202, {
        location: `/v2/r/blobs/uploads/${id}`,
        range: '0-0',
        'oci-chunk-min-length': '1024',
      });
      res.end();
      return;
    }
    const upload = /^\/v2\/r\/blobs\/uploads\/([0-9a-f]+)$/.exec(url.pathname);
    const session = upload ? sessions.get(upload[1] as string) : undefined;
    if (upload && !session) {
      req.resume();
      res.writeHead(404);
      res.end('{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN"}]}');
      return;
    }
    if (session && req.method === 'GET') {
      res.writeHead(204, { range: `0-${Math.max(0, session.size - 1)}`, location: url.pathname });
      res.end();
      return;
    }
    if (session && req.method === 'PATCH') {
      const length = Number(req.headers['content-length'] ?? -1);
      const start = Number(/^(\d+)-/.exec(String(req.headers['content-range'] ?? ''))?.[1] ?? session.size);
      if (length > plan.patchCap || start !== session.size) {
        req.resume();
        res.writeHead(416);
        res.end();
        return;
      }
      const cut = patches++ === 0 ? plan.cutPatchAt : -1;
      let got = 0;
      req.on('data', (chunk: Buffer) => {
        let piece = chunk;
        if (cut >= 0 && got + piece.length > cut) piece = piece.subarray(0, cut - got);
        got += piece.length;
        if (cut >= 0 && plan.garbleCut && piece.length > 0 && got - piece.length === 0) {
          piece = Buffer.from(piece);
          piece[0] = (piece[0] as number) ^ 0xff;
        }
        if (!plan.stuckRange) {
          session.bytes.push(piece);
          session.size += piece.length;
        }
        if (cut >= 0 && got >= cut) req.socket.destroy();
      });
      req.on('end', () => {
        res.writeHead(202, { location: url.pathname, range: `0-${Math.max(0, session.size - 1)}` });
        res.end();
      });
      return;
    }
    if (session && req.method === 'PUT') {
      const chunks: Buffer[] = [...session.bytes];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const bytes = Buffer.concat(chunks);
        const digest = url.searchParams.get('digest') ?? '';
        if (sha256(bytes) !== digest) {
          res.writeHead(400);
          res.end('{"errors":[{"code":"DIGEST_INVALID"}]}');
          return;
        }
        blobs.set(digest, bytes);
        sessions.delete(upload?.[1] as string);
        if (commits++ === 0 && plan.loseCommitAnswer) {
          res.socket?.destroy();
          return;
        }
        res.writeHead(201, { location: `/v2/r/blobs/${digest}`, 'docker-content-digest': digest });
        res.end();
      });
      return;
    }
    req.resume();
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});
beforeEach(reset);

function repository(clock = fakeClock(), extra: { maxChunkBytes?: number } = {}) {
  const client = new RegistryClient(host, { plainHttp: true, clock, memory: registryMemory() });
  return { repo: new RemoteRepository(client, 'r', { access: 'push', ...extra }), client, clock };
}

async function download(repo: RemoteRepository): Promise<Buffer> {
  const parts: Buffer[] = [];
  await repo.fetchInto({ mediaType: 'application/octet-stream', digest: DIGEST, size: BLOB.length }, (c) => {
    parts.push(Buffer.from(c));
  });
  return Buffer.concat(parts);
}

describe('resumable downloads', () => {
  it('continue with Range after a cut mid-body, each byte delivered once', async () => {
    plan.cutGetAt = 1_000_000;
    const { repo, client } = repository();
    assert.ok((await download(repo)).equals(BLOB));
    const ranges = seen.filter((s) => s.method === 'GET').map((s) => s.range);
    assert.equal(ranges.length, 2);
    assert.equal(ranges[0], undefined);
    assert.match(ranges[1] ?? '', /^bytes=\d+-$/);
    assert.ok(Number(/\d+/.exec(ranges[1] ?? '')?.[0]) > 0, 'resumed where it stopped');
    client.close();
  });

  it('the stream form resumes too', async () => {
    plan.cutGetAt = 2_000_000;
    const { repo } = repository();
    const stream = await repo.fetch({
      mediaType: 'application/octet-stream',
      digest: DIGEST,
      size: BLOB.length,
    });
    const parts: Buffer[] = [];
    for await (const c of stream) parts.push(c as Buffer);
    assert.ok(Buffer.concat(parts).equals(BLOB));
  });

  it('a 200 to a ranged request is read from byte zero, what was received skipped', async () => {
    plan.cutGetAt = 500_000;
    plan.ignoreRange = true;
    const { repo } = repository();
    assert.ok((await download(repo)).equals(BLOB));
  });

  it('a 206 that does not start where asked is refused', async () => {
    plan.cutGetAt = 500_000;
    plan.wrongRange = true;
    const { repo } = repository();
    await assert.rejects(download(repo), {
      code: 'REGISTRY',
      message: /asked for the bytes from \d+, the registry sent the bytes from/,
    });
  });

  it('a redirected download asks the registry again for a fresh redirect', async () => {
    plan.redirect = true;
    plan.cutGetAt = 700_000;
    const { repo } = repository();
    assert.ok((await download(repo)).equals(BLOB));
    assert.equal(
      seen.filter((s) => s.url === `/v2/r/blobs/${DIGEST}`).length,
      2,
      'the registry was asked twice',
    );
    assert.equal(seen.filter((s) => s.url.startsWith('/storage/')).length, 2);
  });

  it('gives up after the retry policy, with what it got and how often it tried', async () => {
    plan.unavailable = 100;
    const clock = fakeClock();
    const { repo } = repository(clock);
    await assert.rejects(download(repo), /HTTP 503/);
    // 4 tries, waits of 250, 500 and 1000 ms (jitter 0.5 gives the exponential value itself).
    assert.deepEqual(clock.sleeps, [250, 500, 1000]);
  });
});

describe('resumable uploads', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-upload-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** Ingests `bytes` from a file, as push does for large modules (digest unknown, hashed as sent). */
  async function ingest(repo: RemoteRepository, bytes: Buffer) {
    const path = join(dir, `f${randomBytes(3).toString('hex')}`);
    writeFileSync(path, bytes);
    const fd = openSync(path, 'r');
    try {
      return await repo.ingest(
        'application/octet-stream',
        { fd, start: 0, length: bytes.length },
        { size: bytes.length },
      );
    } finally {
      closeSync(fd);
    }
  }

  it('after a cut mid-PATCH, ask the session what it holds and continue from there', async () => {
    plan.cutPatchAt = 1_500_000;
    const bytes = randomBytes(4 * 1024 * 1024);
    const { repo } = repository();
    const desc = await ingest(repo, bytes);
    assert.equal(desc.digest, sha256(bytes), 'hashed once, right, across the resumption');
    assert.ok(blobs.get(desc.digest)?.equals(bytes));
    const patchStarts = seen.filter((s) => s.method === 'PATCH').map((s) => s.contentRange);
    assert.equal(patchStarts.length, 2);
    assert.match(patchStarts[1] ?? '', /^1500000-/);
    assert.ok(
      seen.some((s) => s.method === 'GET' && s.url.includes('/uploads/')),
      'the session was asked',
    );
  });

  it('a resumed session that assembled other bytes (DIGEST_INVALID at the commit) starts over, once', async () => {
    plan.cutPatchAt = 1_500_000;
    plan.garbleCut = true;
    const bytes = randomBytes(4 * 1024 * 1024);
    const { repo } = repository();
    const desc = await ingest(repo, bytes);
    assert.equal(desc.digest, sha256(bytes));
    assert.ok(blobs.get(desc.digest)?.equals(bytes), 'the registry holds the exact bytes');
    const methods = seen.filter((s) => s.url.includes('/uploads/')).map((s) => s.method);
    // POST, PATCH (cut), GET (holds 1500000), PATCH (the rest), PUT (refused), then a new session
    // from byte 0 without asking it what it holds: POST, PATCH, PUT.
    assert.deepEqual(methods.slice(-3), ['POST', 'PATCH', 'PUT'], methods.join(' '));
    assert.equal(methods.filter((m) => m === 'PUT').length, 2, methods.join(' '));
    const lastPatch = seen.filter((s) => s.method === 'PATCH').at(-1);
    assert.match(lastPatch?.contentRange ?? '', /^0-/, 'the new session starts at byte 0');
  });

  it('a registry that caps PATCH bodies gets chunks (of at least OCI-Chunk-Min-Length), remembered', async () => {
    plan.patchCap = 1024 * 1024;
    const bytes = randomBytes(3 * 1024 * 1024 + 5);
    const { repo, client } = repository(fakeClock(), { maxChunkBytes: 1024 * 1024 });
    const desc = await ingest(repo, bytes);
    assert.equal(desc.digest, sha256(bytes));
    assert.equal(client.memory.uploads.get(host), 'chunked');
    const ranges = seen.filter((s) => s.method === 'PATCH').map((s) => s.contentRange);
    assert.deepEqual(ranges.slice(1), ['0-1048575', '1048576-2097151', '2097152-3145727', '3145728-3145732']);
    seen.length = 0;
    await ingest(repo, randomBytes(10));
    assert.equal(seen.filter((s) => s.method === 'PATCH').length, 1, 'chunked from the first try now');
  });

  it('a Range that stops advancing falls back to one monolithic PUT', async () => {
    plan.stuckRange = true;
    const bytes = randomBytes(2 * 1024 * 1024);
    const { repo, client } = repository(fakeClock(), { maxChunkBytes: 1024 * 1024 });
    client.memory.uploads.set(host, 'chunked');
    const desc = await ingest(repo, bytes);
    assert.equal(desc.digest, sha256(bytes));
    assert.equal(client.memory.uploads.get(host), 'monolithic');
    assert.ok(blobs.get(desc.digest)?.equals(bytes));
  });

  it('a commit whose answer was lost is settled by asking whether the blob exists', async () => {
    plan.loseCommitAnswer = true;
    const bytes = randomBytes(100_000);
    const { repo } = repository();
    const desc = await ingest(repo, bytes);
    assert.equal(desc.digest, sha256(bytes));
    assert.equal(commits, 1, 'committed once');
    assert.ok(seen.some((s) => s.method === 'HEAD' && s.url.endsWith(desc.digest)));
  });

  it('a known-digest upload is sent again from memory after a 503, on the fake clock', async () => {
    plan.unavailable = 2;
    const bytes = randomBytes(1000);
    const { repo, clock } = repository();
    await repo.push(
      { mediaType: 'application/octet-stream', digest: sha256(bytes), size: bytes.length },
      bytes,
    );
    assert.ok(blobs.get(sha256(bytes))?.equals(bytes));
    assert.equal(clock.sleeps.length, 2);
  });

  it('leaves no abort listener on the signal, however many requests it sent', async () => {
    const controller = new AbortController();
    const { repo } = repository();
    for (let i = 0; i < 20; i++) {
      await repo.exists(
        { mediaType: 'application/octet-stream', digest: DIGEST, size: BLOB.length },
        { signal: controller.signal },
      );
      await repo.fetchInto(
        { mediaType: 'application/octet-stream', digest: DIGEST, size: BLOB.length },
        () => {},
        { signal: controller.signal },
      );
    }
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  });
});

describe('PositionedHash', () => {
  const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

  it('hashes each byte once however often parts are sent again, and answers the same digest twice', () => {
    const bytes = randomBytes(1000);
    const hash = new PositionedHash();
    hash.update(bytes.subarray(0, 400), 0);
    hash.update(bytes.subarray(100, 300), 100); // a resent part: ignored
    hash.update(bytes.subarray(300, 1000), 300); // overlaps: only the new bytes count
    assert.equal(hash.position, 1000);
    assert.equal(hash.digest(), sha(bytes));
    // A commit tried again asks once more (this threw "Digest already called" once).
    assert.equal(hash.digest(), sha(bytes));
    hash.update(bytes.subarray(0, 1000), 0); // the whole blob sent again after the digest: fine
    assert.equal(hash.digest(), sha(bytes));
  });

  it('refuses a gap and bytes beyond a digest already taken', () => {
    const hash = new PositionedHash();
    hash.update(Buffer.from('abc'), 0);
    assert.throws(() => hash.update(Buffer.from('x'), 5), { code: 'FILE' });
    hash.digest();
    assert.throws(() => hash.update(Buffer.from('def'), 3), { code: 'SIZE_MISMATCH' });
  });
});
