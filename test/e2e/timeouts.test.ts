import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startBasicAuthRegistry } from '../harness/auth.js';
import { runCli } from '../harness/cli.js';
import { HELLO_WASM, tempDir } from '../harness/fixtures.js';
import { startScriptedServer } from '../harness/hostile.js';
import type { RegistryServer } from '../harness/registry.js';

/**
 * Nothing hangs: a server that accepts and says nothing, an answer that drips, a blob that stalls, a
 * proxy that never answers CONNECT, a credential helper whose child keeps its stdout open or that never
 * exits. Each ends with a one-line error naming the phase and the host, within bounds set by --timeout.
 */

let work: Awaited<ReturnType<typeof tempDir>>;
let env: NodeJS.ProcessEnv;
const sockets = new Set<net.Socket>();
let silent: net.Server;
let silentHost = '';

before(async () => {
  work = await tempDir();
  env = {
    HOME: work.path,
    DOCKER_CONFIG: join(work.path, 'docker'),
    XDG_CACHE_HOME: join(work.path, 'cache'),
    HTTPS_PROXY: '',
    HTTP_PROXY: '',
  };
  silent = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  silentHost = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
});
after(async () => {
  for (const s of sockets) s.destroy();
  silent?.close();
  await work?.remove();
});

async function timed(args: string[], extra: NodeJS.ProcessEnv = {}) {
  const started = Date.now();
  const res = await runCli(args, { env: { ...env, ...extra }, cwd: work.path, timeoutMs: 60_000 });
  return { ...res, seconds: (Date.now() - started) / 1000 };
}

function assertTimeout(res: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, pattern);
  assert.match(res.stderr, /Hint: .*--timeout|Hint: check that the registry is reachable/);
  assert.doesNotMatch(res.stderr, /looks like a bug/);
}

describe('time limits', () => {
  it('a registry that accepts the connection and never answers', async () => {
    const out = join(work.path, 'silent.wasm');
    const res = await timed(['pull', `${silentHost}/x:v1`, '--plain-http', '--timeout', '0.5', '-o', out]);
    assertTimeout(res, /waiting for an answer from 127\.0\.0\.1:\d+ timed out after 500 ms/);
    assert.ok(res.seconds < 15, `took ${res.seconds} s`);
    assert.deepEqual(
      (await readdir(work.path)).filter((f) => f.includes('silent')),
      [],
      'no file, no temporary file',
    );
  });

  it('WASM_TO_OCI_TIMEOUT is the flag’s twin, and a bad value is named', async () => {
    const res = await timed(['pull', `${silentHost}/x:v1`, '--plain-http', '-o', join(work.path, 'e.wasm')], {
      WASM_TO_OCI_TIMEOUT: '0.5',
    });
    assertTimeout(res, /timed out after 500 ms/);
    const bad = await timed(['pull', `${silentHost}/x:v1`, '--plain-http'], { WASM_TO_OCI_TIMEOUT: 'soon' });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /WASM_TO_OCI_TIMEOUT takes seconds/);
    const flag = await timed(['pull', `${silentHost}/x:v1`, '--timeout=-1']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--timeout takes seconds/);
  });

  it('a manifest that arrives one byte every 300 ms must arrive whole within the limit', async () => {
    const drip = await startScriptedServer((_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'content-length': '400',
      });
      const timer = setInterval(() => {
        if (res.destroyed) clearInterval(timer);
        else res.write('{');
      }, 300);
      res.on('close', () => clearInterval(timer));
    });
    try {
      const res = await timed([
        'pull',
        `${drip.host}/x:v1`,
        '--plain-http',
        '--timeout',
        '1',
        '-o',
        join(work.path, 'd.wasm'),
      ]);
      assertTimeout(res, /reading the answer of 127\.0\.0\.1:\d+ timed out after 1 s/);
      assert.ok(res.seconds < 20, `took ${res.seconds} s`);
    } finally {
      await drip.stop();
    }
  });

  it('a proxy that never answers CONNECT', async () => {
    const res = await timed(
      ['pull', 'registry.example.com/x:v1', '--timeout', '0.5', '-o', join(work.path, 'p.wasm')],
      { HTTPS_PROXY: `http://${silentHost}` },
    );
    assertTimeout(res, /waiting for an answer from 127\.0\.0\.1:\d+ timed out after 500 ms/);
  });
});

/** Processes of a process group that are still running (zombies are dead: only not reaped yet). */
async function liveMembers(group: number): Promise<number[]> {
  const live: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(join('/proc', name, 'stat'), 'utf8').catch(() => '');
    // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === group && fields[0] !== 'Z') live.push(Number(name));
  }
  return live;
}

describe('credential helpers', () => {
  let registry: RegistryServer;
  let bin = '';
  before(async () => {
    await mkdir(join(work.path, 'auth'), { recursive: true });
    registry = await startBasicAuthRegistry(join(work.path, 'auth'), { u: 'secret-password' });
    bin = join(work.path, 'bin');
    await mkdir(bin, { recursive: true });
    // Leaves a child behind that holds stdout open for 30 s, then answers and exits at once.
    await writeFile(
      join(bin, 'docker-credential-lingering'),
      '#!/bin/sh\nsleep 30 &\necho \'{"Username":"u","Secret":"secret-password"}\'\n',
    );
    // Never answers; records its process group, so the test can check that the group was killed.
    await writeFile(
      join(bin, 'docker-credential-hanging'),
      `#!/bin/sh\necho $$ > ${join(work.path, 'hanging.pid')}\nsleep 30 &\nsleep 30\n`,
    );
    await chmod(join(bin, 'docker-credential-lingering'), 0o755);
    await chmod(join(bin, 'docker-credential-hanging'), 0o755);
  });
  after(() => registry?.stop());

  const withHelper = async (helper: string) => {
    const dir = join(work.path, `home-${helper}`);
    await mkdir(join(dir, '.docker'), { recursive: true });
    await writeFile(join(dir, '.docker', 'config.json'), JSON.stringify({ credsStore: helper }));
    return { HOME: dir, DOCKER_CONFIG: join(dir, '.docker'), PATH: `${bin}:${process.env.PATH}` };
  };

  it('the call ends when the helper exits, even though its child holds the pipe', async () => {
    const helperEnv = await withHelper('lingering');
    const res = await timed(['push', HELLO_WASM, `${registry.host}/h/lingering:v1`], helperEnv);
    assert.equal(res.code, 0, res.stderr);
    assert.ok(res.seconds < 10, `took ${res.seconds} s: the call waited for the pipe`);
  });

  it('a helper that never answers is killed with its whole process group, and the run goes on', async () => {
    const helperEnv = await withHelper('hanging');
    const res = await timed(
      ['push', HELLO_WASM, `${registry.host}/h/hanging:v1`, '--timeout', '1'],
      helperEnv,
    );
    assert.equal(res.code, 1);
    assert.match(res.stderr, /HTTP 401/);
    assert.match(res.stderr, /docker-credential-hanging get failed: it did not answer within 1 s/);
    assert.ok(res.seconds < 15, `took ${res.seconds} s`);
    const pid = Number((await readFile(join(work.path, 'hanging.pid'), 'utf8')).trim());
    // The group's members (the shell and both sleeps) are gone (or dead, waiting to be reaped).
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(await liveMembers(pid), []);
  });
});
