import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../harness/cli.js';
import { HELLO_WASM, tempDir } from '../harness/fixtures.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

/**
 * `pull -o` writes what it should write through, inside this test's own temporary directory only: a
 * symbolic link's target (the link stays), a FIFO and a character device (made with mknod here, never
 * /dev/null itself) are written through after verification, a directory is refused.
 */

let work: Awaited<ReturnType<typeof tempDir>>;
let registry: RegistryServer;
let env: NodeJS.ProcessEnv;
let ref = '';

before(async () => {
  work = await tempDir();
  registry = await startRegistry();
  env = {
    HOME: work.path,
    DOCKER_CONFIG: join(work.path, 'docker'),
    XDG_CACHE_HOME: join(work.path, 'cache'),
  };
  ref = `${registry.host}/out/hello:v1`;
  const push = await runCli(['push', HELLO_WASM, ref], { env, cwd: work.path });
  assert.equal(push.code, 0, push.stderr);
});
after(async () => {
  await registry?.stop();
  await work?.remove();
});

const pull = (out: string, extra: string[] = []) =>
  runCli(['pull', ref, '-o', out, ...extra], { env, cwd: work.path });

/** No `.part` file anywhere under `dir`. */
async function noParts(dir: string): Promise<void> {
  for (const name of await readdir(dir, { recursive: true }))
    assert.ok(!String(name).endsWith('.part'), name);
}

describe('pull -o', () => {
  it('onto a symbolic link writes the file it leads to, atomically, and keeps the link', async () => {
    const dir = join(work.path, 'link');
    await mkdir(join(dir, 'real'), { recursive: true });
    const target = join(dir, 'real', 'module.wasm');
    await writeFile(target, 'old contents');
    const link = join(dir, 'module.wasm');
    await symlink(join('real', 'module.wasm'), link);
    const res = await pull(link);
    assert.equal(res.code, 0, res.stderr);
    assert.ok((await lstat(link)).isSymbolicLink(), 'still a link');
    assert.equal(await readlink(link), join('real', 'module.wasm'));
    assert.deepEqual(await readFile(target), await readFile(HELLO_WASM));
    await noParts(dir);
    // A dangling link: its target is created.
    const dangling = join(dir, 'dangling.wasm');
    await symlink(join(dir, 'real', 'new.wasm'), dangling);
    assert.equal((await pull(dangling)).code, 0);
    assert.deepEqual(await readFile(join(dir, 'real', 'new.wasm')), await readFile(HELLO_WASM));
    assert.ok((await lstat(dangling)).isSymbolicLink());
  });

  it('onto an existing file keeps its mode', async () => {
    const file = join(work.path, 'mode.wasm');
    await writeFile(file, 'x', { mode: 0o640 });
    assert.equal((await pull(file)).code, 0);
    assert.equal((await stat(file)).mode & 0o777, 0o640);
  });

  it('onto a FIFO writes through, after verification', async () => {
    const dir = join(work.path, 'fifo');
    await mkdir(dir);
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    // A reader on the other end, as a shell pipeline would have.
    const chunks: Buffer[] = [];
    const read = new Promise<void>((resolve, reject) => {
      const stream = createReadStream(fifo);
      stream.on('data', (c) => chunks.push(c as Buffer));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    const res = await pull(fifo);
    await read;
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(Buffer.concat(chunks), await readFile(HELLO_WASM));
    assert.ok((await stat(fifo)).isFIFO(), 'still a FIFO');
    await noParts(dir);
  });

  it('onto a character device writes through and leaves the device node in place', async (t) => {
    if (userInfo().uid !== 0) {
      t.skip('mknod needs root');
      return;
    }
    const dir = join(work.path, 'dev');
    await mkdir(dir);
    const device = join(dir, 'null');
    // A null device of our own, inside this test's directory (1, 3 is /dev/null's major and minor).
    execFileSync('mknod', ['-m', '666', device, 'c', '1', '3']);
    const res = await pull(device);
    assert.equal(res.code, 0, res.stderr);
    assert.ok((await stat(device)).isCharacterDevice(), 'the device node was not replaced');
    await noParts(dir);
    assert.ok((await stat('/dev/null')).isCharacterDevice(), 'and /dev/null is untouched');
  });

  it('onto a directory is a clear error, and nothing is written', async () => {
    const dir = join(work.path, 'adir');
    await mkdir(dir);
    const res = await pull(dir);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /adir is a directory/);
    assert.match(res.stderr, /Hint: name a file in it/);
    assert.deepEqual(await readdir(dir), []);
  });

  it('a pull that fails leaves an existing output untouched and no temporary file', async () => {
    const file = join(work.path, 'keep.wasm');
    await writeFile(file, 'precious');
    const res = await runCli(['pull', `${registry.host}/out/missing:v1`, '-o', file], {
      env,
      cwd: work.path,
    });
    assert.equal(res.code, 1);
    assert.equal(await readFile(file, 'utf8'), 'precious');
    await noParts(work.path);
  });

  it('a stale .part of a killed pull is swept; a fresh one (another pull at work) is not', async () => {
    const dir = join(work.path, 'stale');
    await mkdir(dir);
    const out = join(dir, 'm.wasm');
    const stale = join(dir, '.m.wasm.0123456789ab.part');
    const fresh = join(dir, '.m.wasm.ba9876543210.part');
    await writeFile(stale, 'left by a killed pull');
    await writeFile(fresh, 'being written');
    execFileSync('touch', ['-d', '2 hours ago', stale]);
    assert.equal((await pull(out)).code, 0);
    await assert.rejects(stat(stale));
    assert.ok((await stat(fresh)).isFile());
  });

  it('SIGTERM ends a pull like Ctrl-C: no output, no temporary file', async () => {
    const dir = join(work.path, 'term');
    await mkdir(dir);
    // A registry that never answers keeps the pull waiting; SIGTERM must end it cleanly.
    const net = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as import('node:net').AddressInfo).port;
    try {
      const { CLI } = await import('../harness/cli.js');
      const pulling = spawn(
        process.execPath,
        [CLI, 'pull', `127.0.0.1:${port}/x:v1`, '--plain-http', '-o', join(dir, 'o.wasm')],
        {
          env: { ...process.env, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stderr = '';
      pulling.stderr.on('data', (d) => {
        stderr += d;
      });
      // Once the pull has connected it is past its set-up (signal handlers in place): a fixed sleep
      // was too short on a loaded machine, where node had not even started.
      while (sockets.length === 0) await new Promise((r) => setTimeout(r, 20));
      pulling.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => pulling.on('close', r));
      assert.equal(code, 143, stderr);
      assert.deepEqual(await readdir(dir), []);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});
