import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { push } from '../../src/ops/push.js';
import { CLI } from '../harness/cli.js';
import { tempDir, writeLargeWasm } from '../harness/fixtures.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

/** Ctrl-C during a transfer: exit 130, no file, no temporary file, no tag moved. */

let registry: RegistryServer;
let slow: http.Server;
let slowHost = '';
let work: Awaited<ReturnType<typeof tempDir>>;

before(async () => {
  registry = await startRegistry();
  work = await tempDir();
  const file = join(work.path, 'big.wasm');
  await writeLargeWasm(file, 32 * 1024 * 1024);
  await push({ file, reference: `${registry.host}/big:v1` });
  // A front that trickles blob downloads (64 KiB every 20 ms), so there is time to interrupt.
  const port = Number(registry.host.split(':')[1]);
  slow = http.createServer((req, res) => {
    const up = http.request(
      { host: '127.0.0.1', port, path: req.url, method: req.method, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (!req.url?.includes('/blobs/')) {
          upRes.pipe(res);
          return;
        }
        upRes.on('data', (chunk: Buffer) => {
          upRes.pause();
          res.write(chunk, () => setTimeout(() => upRes.resume(), 20));
        });
        upRes.on('end', () => res.end());
      },
    );
    req.pipe(up);
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  slowHost = `127.0.0.1:${(slow.address() as AddressInfo).port}`;
});
after(async () => {
  slow?.closeAllConnections();
  slow?.close();
  await registry?.stop();
  await work?.remove();
});

/**
 * Runs the CLI with -v and sends SIGINT `afterMs` after its log shows `when` (a request under way), so a
 * loaded machine cannot deliver the signal before the CLI has even started.
 */
function interrupted(
  args: string[],
  afterMs: number,
  when = /> GET \S+\/blobs\//,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args, '-v'], {
      cwd: work.path,
      env: { ...process.env, XDG_CACHE_HOME: join(work.path, 'cache') },
    });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && when.test(stderr)) {
        sent = true;
        setTimeout(() => child.kill('SIGINT'), afterMs);
      }
    });
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('Ctrl-C', () => {
  it('interrupts a pull: exit 130, no output file, no temporary file', async () => {
    const res = await interrupted(['pull', `${slowHost}/big:v1`, '-o', 'big-out.wasm', '--no-cache'], 300);
    assert.equal(res.code, 130, res.stderr);
    assert.match(res.stderr, /cancelled/);
    await assert.rejects(stat(join(work.path, 'big-out.wasm')), { code: 'ENOENT' });
    assert.deepEqual(
      (await readdir(work.path)).filter((f) => f.endsWith('.part')),
      [],
    );
  });
});
