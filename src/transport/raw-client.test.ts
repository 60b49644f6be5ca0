import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import { finished } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { readAll } from '../content/verify.js';
import { WasmOciError } from '../errors.js';
import { ConnectionPool, rawRequest } from './raw-client.js';

// Edge cases of the fast GET path against an in-process server (the real registry is exercised by the
// integration tests): chunked framing, sink delivery, truncated bodies, odd heads.

const big = Buffer.alloc(3 * 1024 * 1024 + 7);
for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;

let server: http.Server;
let rawServer: net.Server;
let base = '';
let rawBase = '';
const seen: http.IncomingHttpHeaders[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    seen.push(req.headers);
    if (req.url === '/length') {
      res.writeHead(200, { 'content-length': String(big.length) });
      res.end(big);
    } else if (req.url === '/chunked') {
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      let off = 0;
      const step = () => {
        if (off >= big.length) return res.end();
        const n = Math.min(100_000 + (off % 7), big.length - off);
        res.write(big.subarray(off, off + n));
        off += n;
        setImmediate(step);
      };
      step();
    } else if (req.url === '/redirect') {
      res.writeHead(307, { location: '/length', 'content-length': '0' });
      res.end();
    } else if (req.url === '/missing') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
    } else if (req.url === '/empty') {
      res.writeHead(204);
      res.end();
    }
  });
  // Answers a declared length but closes early, or speaks no HTTP at all.
  rawServer = net.createServer((socket) => {
    socket.once('data', (d) => {
      if (d.toString().startsWith('GET /short')) {
        socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a few bytes');
      } else {
        socket.end('SSH-2.0-OpenSSH_9.0\r\n\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => rawServer.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  rawBase = `http://127.0.0.1:${(rawServer.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
  rawServer.close();
});

import { DEFAULT_TIMEOUTS } from './types.js';

const timeouts = DEFAULT_TIMEOUTS;
const get = (path: string, extra: Partial<Parameters<typeof rawRequest>[0]> = {}) =>
  rawRequest(
    { method: 'GET', url: new URL(path, path.startsWith('http') ? undefined : base), ...extra },
    { timeouts },
  );

describe('rawRequest', () => {
  it('streams a Content-Length body and sends our headers', async () => {
    const res = await get('/length', { headers: { 'user-agent': 'wasm-to-oci/test', range: 'bytes=0-' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], String(big.length));
    assert.deepEqual(await readAll(res.body, big.length), big);
    assert.equal(seen.at(-1)?.['user-agent'], 'wasm-to-oci/test');
    assert.equal(seen.at(-1)?.range, 'bytes=0-');
  });

  it('decodes a chunked body', async () => {
    const res = await get('/chunked');
    assert.equal(res.status, 200);
    assert.deepEqual(await readAll(res.body, big.length), big);
  });

  it('delivers a 2xx body to a sink, chunk by chunk, without buffering it', async () => {
    for (const path of ['/length', '/chunked']) {
      const parts: Buffer[] = [];
      const res = await get(path, {
        sinkFor: () => (c: Buffer) => {
          parts.push(Buffer.from(c));
        },
      });
      res.body.resume();
      await finished(res.body);
      assert.deepEqual(Buffer.concat(parts), big, path);
    }
  });

  it('fails the body when the sink throws', async () => {
    const res = await get('/length', {
      sinkFor: () => () => {
        throw new WasmOciError('SIZE_MISMATCH', 'too much');
      },
    });
    res.body.resume();
    await assert.rejects(finished(res.body), { code: 'SIZE_MISMATCH' });
  });

  it('gives non-2xx answers their body even with a sink', async () => {
    let called = false;
    const res = await get('/missing', {
      sinkFor: () => () => {
        called = true;
      },
    });
    assert.equal(res.status, 404);
    assert.match((await readAll(res.body, 1000)).toString(), /BLOB_UNKNOWN/);
    assert.equal(called, false);
  });

  it('returns redirects and empty answers as they are', async () => {
    const redirect = await get('/redirect');
    assert.equal(redirect.status, 307);
    assert.equal(redirect.headers.location, '/length');
    assert.equal((await readAll(redirect.body, 10)).length, 0);
    const empty = await get('/empty');
    assert.equal(empty.status, 204);
    assert.equal((await readAll(empty.body, 10)).length, 0);
  });

  it('fails a body cut short', async () => {
    const res = await get(`${rawBase}/short`);
    assert.equal(res.status, 200);
    await assert.rejects(readAll(res.body, 1000), /closed before the body ended/);
  });

  it('fails on an answer that is not HTTP', async () => {
    await assert.rejects(get(`${rawBase}/nohttp`), /malformed HTTP status line/);
  });

  it('maps connection errors to NETWORK', async () => {
    await assert.rejects(get('http://127.0.0.1:1/x'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'NETWORK');
      return true;
    });
  });

  it('refuses header values with line breaks', async () => {
    await assert.rejects(get('/length', { headers: { 'x-evil': 'a\r\nInjected: 1' } }), { code: 'USAGE' });
  });

  it('keeps the order of TLS records that arrive before the caller listens (and in sink mode)', async () => {
    const { makeCa, makeCert } = await import('../../test/harness/certs.js');
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const https = await import('node:https');
    const dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-tls-'));
    const ca = await makeCa(dir);
    const leaf = await makeCert(ca, dir, 'server', { sans: ['127.0.0.1'] });
    const tlsServer = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) => {
      res.writeHead(200, { 'content-length': String(big.length) });
      res.end(big);
    });
    await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
    try {
      const { createSecureContext } = await import('node:tls');
      const url = new URL(`https://127.0.0.1:${(tlsServer.address() as AddressInfo).port}/blob`);
      const tls = { rejectUnauthorized: true, secureContext: createSecureContext({ ca: ca.certPem }) };
      const streamed = await rawRequest({ method: 'GET', url }, { tls, timeouts });
      assert.deepEqual(await readAll(streamed.body, big.length), big);
      const parts: Buffer[] = [];
      const sunk = await rawRequest(
        {
          method: 'GET',
          url,
          sinkFor: () => (c: Buffer) => {
            parts.push(Buffer.from(c));
          },
        },
        { tls, timeouts },
      );
      sunk.body.resume();
      await finished(sunk.body);
      assert.deepEqual(Buffer.concat(parts), big);
    } finally {
      tlsServer.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stops on abort', async () => {
    const controller = new AbortController();
    const res = await get('/chunked', { signal: controller.signal });
    controller.abort();
    await assert.rejects(readAll(res.body, big.length), { code: 'ABORTED' });
  });
});

describe('rawRequest with a keep-alive pool', () => {
  /**
   * A server on a raw socket that answers each request on a connection from a script: counts
   * connections and requests, so reuse is observable.
   */
  async function scripted(answer: (request: string, index: number, socket: net.Socket) => void) {
    let connections = 0;
    let requests = 0;
    const sockets = new Set<net.Socket>();
    const srv = net.createServer((socket) => {
      connections++;
      sockets.add(socket);
      let pending = '';
      socket.on('data', (d) => {
        pending += d.toString('latin1');
        for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
          const request = pending.slice(0, end);
          pending = pending.slice(end + 4);
          answer(request, requests++, socket);
        }
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = (path: string) => new URL(`http://127.0.0.1:${(srv.address() as AddressInfo).port}${path}`);
    return {
      url,
      counts: () => ({ connections, requests }),
      close: () => {
        for (const s of sockets) s.destroy();
        srv.close();
      },
    };
  }
  const ok = (body: string, extra = '') =>
    `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

  it('sends GETs and HEADs one after another on one connection, without Connection: close', async () => {
    const seenRequests: string[] = [];
    const srv = await scripted((request, _i, socket) => {
      seenRequests.push(request);
      if (request.startsWith('HEAD')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n');
      else socket.write(ok(`answer to ${request.split(' ')[1]}`));
    });
    const pool = new ConnectionPool();
    try {
      for (const [method, path] of [
        ['GET', '/a'],
        ['HEAD', '/b'],
        ['GET', '/c'],
        ['HEAD', '/d'],
        ['GET', '/e'],
      ] as const) {
        const res = await rawRequest({ method, url: srv.url(path) }, { timeouts, pool });
        assert.equal(res.status, 200);
        const body = (await readAll(res.body, 1000)).toString();
        assert.equal(body, method === 'HEAD' ? '' : `answer to ${path}`);
        if (method === 'HEAD') assert.equal(res.headers['content-length'], '12345');
        // The connection goes back to the pool after the read callback that completed the answer.
        await new Promise((r) => setImmediate(r));
      }
      assert.deepEqual(srv.counts(), { connections: 1, requests: 5 });
      assert.ok(seenRequests.every((r) => !/connection: close/i.test(r)));
    } finally {
      pool.close();
      srv.close();
    }
  });

  it('does not reuse a connection after Connection: close, a close-delimited body or trailing bytes', async () => {
    for (const [label, reply] of [
      ['connection: close', (s: net.Socket) => s.write(ok('x', 'Connection: close\r\n'))],
      ['close-delimited', (s: net.Socket) => s.end('HTTP/1.1 200 OK\r\n\r\nuntil the end')],
      ['trailing bytes', (s: net.Socket) => s.write(`${ok('x')}HTTP/1.1 200 OK\r\n`)],
    ] as const) {
      const srv = await scripted((_r, _i, socket) => reply(socket));
      const pool = new ConnectionPool();
      try {
        for (let i = 0; i < 2; i++) {
          const res = await rawRequest({ method: 'GET', url: srv.url('/x') }, { timeouts, pool });
          await readAll(res.body, 1000);
          await new Promise((r) => setImmediate(r));
        }
        assert.equal(srv.counts().connections, 2, label);
      } finally {
        pool.close();
        srv.close();
      }
    }
  });

  it('sends a request again on a new connection when the kept-alive one turns out closed', async () => {
    // The second request on the first connection is met by a close without an answer.
    const srv = await scripted((_request, index, socket) => {
      if (index === 1) socket.destroy();
      else socket.write(ok(`answer ${index}`));
    });
    const pool = new ConnectionPool();
    try {
      const first = await rawRequest({ method: 'GET', url: srv.url('/one') }, { timeouts, pool });
      assert.equal((await readAll(first.body, 100)).toString(), 'answer 0');
      await new Promise((r) => setImmediate(r));
      const second = await rawRequest({ method: 'GET', url: srv.url('/two') }, { timeouts, pool });
      assert.equal((await readAll(second.body, 100)).toString(), 'answer 2');
      assert.deepEqual(srv.counts(), { connections: 2, requests: 3 });
    } finally {
      pool.close();
      srv.close();
    }
  });

  it('retires an idle connection the server closes, and a closed pool holds nothing', async () => {
    const srv = await scripted((_request, index, socket) => {
      socket.write(ok(`answer ${index}`));
      if (index === 0) setTimeout(() => socket.end(), 20);
    });
    const pool = new ConnectionPool();
    try {
      const first = await rawRequest({ method: 'GET', url: srv.url('/one') }, { timeouts, pool });
      await readAll(first.body, 100);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(pool.take(`http://127.0.0.1:${srv.url('/').port}`), undefined);
      const second = await rawRequest({ method: 'GET', url: srv.url('/two') }, { timeouts, pool });
      assert.equal((await readAll(second.body, 100)).toString(), 'answer 1');
      assert.deepEqual(srv.counts(), { connections: 2, requests: 2 });
      await new Promise((r) => setImmediate(r));
      pool.close();
      assert.equal(pool.take(`http://127.0.0.1:${srv.url('/').port}`), undefined);
    } finally {
      srv.close();
    }
  });
});

describe('rawRequest with a request body', () => {
  const { createHash } = requireCrypto();
  const sizes = [0, 1, 37, 200, 64 * 1024 + 3, 3 * 1024 * 1024 + 7];
  const bodyOf = (size: number) => big.subarray(0, size);
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

  /** An echo server (plain or TLS): answers each request with its method, body length and body digest. */
  async function echoServer(secure: boolean) {
    const { makeCa, makeCert } = await import('../../test/harness/certs.js');
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const https = await import('node:https');
    const dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-body-'));
    const ca = secure ? await makeCa(dir) : undefined;
    const leaf = ca ? await makeCert(ca, dir, 'server', { sans: ['127.0.0.1'] }) : undefined;
    let connections = 0;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const hash = createHash('sha256');
      let length = 0;
      req.on('data', (c: Buffer) => {
        hash.update(c);
        length += c.length;
      });
      req.on('end', () => {
        const answer = JSON.stringify({
          method: req.method,
          length,
          digest: hash.digest('hex'),
          declared: req.headers['content-length'],
        });
        res.writeHead(201, { 'content-length': String(Buffer.byteLength(answer)) });
        res.end(answer);
      });
    };
    const srv = leaf
      ? https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, handler)
      : http.createServer(handler);
    srv.on('connection', () => connections++);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const { createSecureContext } = await import('node:tls');
    const tls = ca
      ? { rejectUnauthorized: true, secureContext: createSecureContext({ ca: ca.certPem }) }
      : undefined;
    const origin = `${secure ? 'https' : 'http'}://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    return {
      url: (path: string) => new URL(path, origin),
      tls,
      connections: () => connections,
      dir,
      close: async () => {
        srv.closeAllConnections();
        srv.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }

  for (const secure of [false, true]) {
    const scheme = secure ? 'TLS' : 'plain HTTP';
    it(`sends bytes and file ranges of every size whole, 15 times each, on kept-alive connections (${scheme})`, async () => {
      const srv = await echoServer(secure);
      const { open, writeFile } = await import('node:fs/promises');
      const { join } = await import('node:path');
      const file = join(srv.dir, 'body.bin');
      await writeFile(file, big);
      const handle = await open(file, 'r');
      const pool = new ConnectionPool();
      try {
        for (let run = 0; run < 15; run++) {
          for (const size of sizes) {
            for (const kind of ['bytes', 'range'] as const) {
              const method = (['PUT', 'POST', 'PATCH'] as const)[(run + size) % 3] as string;
              const start = kind === 'range' ? Math.min(run % 5, big.length - size) : 0;
              const want = big.subarray(start, start + size);
              const observed = createHash('sha256');
              const body =
                kind === 'bytes'
                  ? bodyOf(size)
                  : { fd: handle.fd, start, length: size, observe: (c: Buffer) => observed.update(c) };
              const res = await rawRequest(
                {
                  method,
                  url: srv.url(`/${kind}/${size}`),
                  headers: { 'content-length': String(size) },
                  body,
                },
                { timeouts, pool, tls: srv.tls },
              );
              assert.equal(res.status, 201);
              const echo = JSON.parse((await readAll(res.body, 1000)).toString());
              assert.deepEqual(
                echo,
                { method, length: size, digest: sha(want), declared: String(size) },
                `${kind} ${size}`,
              );
              if (kind === 'range') assert.equal(observed.digest('hex'), sha(want));
              await new Promise((r) => setImmediate(r));
            }
          }
        }
        // Requests with bytes reuse connections; a file range always takes a new one (it is not sent twice).
        assert.equal(srv.connections(), 1 + 15 * sizes.length);
      } finally {
        pool.close();
        await handle.close();
        await srv.close();
      }
    });

    it(`the request that follows an answer at once reuses its connection: HEAD then POST, 15 times (${scheme})`, async () => {
      // As a push does: the code awaiting an answer sends its next request straight away, before any
      // timer or I/O callback; the connection must be idle by then, or each step opens a new one (a
      // TLS handshake each, over TLS).
      const srv = await echoServer(secure);
      const pool = new ConnectionPool();
      try {
        for (let run = 0; run < 15; run++) {
          for (const size of [0, 37, 200, 64 * 1024 + 3, big.length]) {
            const head = await rawRequest(
              { method: 'HEAD', url: srv.url(`/head/${size}`) },
              { timeouts, pool, tls: srv.tls },
            );
            assert.equal(head.status, 201);
            await readAll(head.body, 1000);
            const post = await rawRequest(
              {
                method: 'POST',
                url: srv.url(`/post/${size}`),
                headers: { 'content-length': String(size) },
                body: bodyOf(size),
              },
              { timeouts, pool, tls: srv.tls },
            );
            const echo = JSON.parse((await readAll(post.body, 1000)).toString());
            assert.deepEqual(echo, {
              method: 'POST',
              length: size,
              digest: sha(bodyOf(size)),
              declared: String(size),
            });
          }
        }
        assert.equal(srv.connections(), 1, 'one connection for all 150 requests');
      } finally {
        pool.close();
        await srv.close();
      }
    });
  }

  it('stops sending and does not reuse the connection when the answer comes before the body is out', async () => {
    let connections = 0;
    const srv = net.createServer((socket) => {
      connections++;
      socket.on('error', () => {});
      socket.once('data', () => {
        // A refusal as soon as the head is in, on a connection that stays open.
        socket.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!');
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = new URL(`http://127.0.0.1:${(srv.address() as AddressInfo).port}/upload`);
    const pool = new ConnectionPool();
    try {
      for (let i = 0; i < 2; i++) {
        const huge = Buffer.alloc(64 * 1024 * 1024);
        const res = await rawRequest(
          { method: 'PUT', url, headers: { 'content-length': String(huge.length) }, body: huge },
          { timeouts, pool },
        );
        assert.equal(res.status, 413);
        assert.equal((await readAll(res.body, 100)).toString(), 'too big!');
        await new Promise((r) => setImmediate(r));
      }
      assert.equal(connections, 2);
    } finally {
      pool.close();
      srv.close();
    }
  });

  it('sends bytes again on a new connection when the kept-alive one turns out closed', async () => {
    const bodies: string[] = [];
    let connections = 0;
    let requests = 0;
    const srv = net.createServer((socket) => {
      connections++;
      socket.on('error', () => {});
      socket.on('data', (d) => {
        const text = d.toString('latin1');
        const index = requests++;
        if (index === 1) {
          socket.destroy();
          return;
        }
        bodies.push(text.slice(text.indexOf('\r\n\r\n') + 4));
        socket.write(`HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok`);
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = new URL(`http://127.0.0.1:${(srv.address() as AddressInfo).port}/m`);
    const pool = new ConnectionPool();
    try {
      for (const text of ['first', 'second']) {
        const body = Buffer.from(text);
        const res = await rawRequest(
          { method: 'PUT', url, headers: { 'content-length': String(body.length) }, body },
          { timeouts, pool },
        );
        assert.equal(res.status, 201);
        await readAll(res.body, 10);
        await new Promise((r) => setImmediate(r));
      }
      assert.deepEqual(bodies, ['first', 'second']);
      assert.equal(connections, 2);
    } finally {
      pool.close();
      srv.close();
    }
  });

  it('fails with FILE when the file is shorter than the range, and refuses streams and bad methods', async () => {
    const srv = await echoServer(false);
    const { open, writeFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const file = join(srv.dir, 'short.bin');
    await writeFile(file, Buffer.from('abc'));
    const handle = await open(file, 'r');
    try {
      await assert.rejects(
        rawRequest(
          {
            method: 'PUT',
            url: srv.url('/x'),
            headers: { 'content-length': '10' },
            body: { fd: handle.fd, start: 0, length: 10 },
          },
          { timeouts },
        ),
        { code: 'FILE', message: /shorter than expected/ },
      );
      const { Readable } = await import('node:stream');
      await assert.rejects(
        rawRequest({ method: 'PUT', url: srv.url('/x'), body: Readable.from([]) }, { timeouts }),
        {
          code: 'USAGE',
        },
      );
      await assert.rejects(rawRequest({ method: 'GET x', url: srv.url('/x') }, { timeouts }), {
        code: 'USAGE',
      });
    } finally {
      await handle.close();
      await srv.close();
    }
  });
});

function requireCrypto(): typeof import('node:crypto') {
  return process.getBuiltinModule('node:crypto');
}
