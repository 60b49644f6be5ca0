// The cost of Notary v1 signing: push and pull of testdata/hello.wasm with and without --sign, against
// a real Distribution registry and a real notary-server on loopback (medians of BENCH_RUNS, default 7),
// the PBKDF2 cost of one key file, and the Go notary CLI's `list` for scale.
import { pbkdf2Sync } from 'node:crypto';
import { join } from 'node:path';
import { CLI, fmt, median, root, run, startRegistry, tempDir } from './lib.mjs';

const { startNotaryServer } = await import(join(root, '.test-build/test/harness/notary.js'));
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const HELLO = join(root, 'testdata/hello.wasm');

const work = await tempDir();
const [registry, notary] = await Promise.all([startRegistry(), startNotaryServer()]);
const env = {
  HOME: work.path,
  XDG_CACHE_HOME: join(work.path, 'cache'),
  DOCKER_CONFIG: join(work.path, 'docker'),
  SIGNY_ROOT_PASSPHRASE: 'bench-root-passphrase',
  SIGNY_TARGETS_PASSPHRASE: 'bench-targets-passphrase',
  SIGNY_SNAPSHOT_PASSPHRASE: 'bench-snapshot-passphrase',
};
const trust = (dir) => ['--sign', '--server', notary.url, '-d', join(work.path, dir)];
const repo = `${registry.host}/bench/hello`;
const node = process.execPath;

async function times(label, args) {
  const ms = [];
  for (let i = 0; i < RUNS; i++) ms.push((await run(node, [CLI, ...args(i)], env)).ms);
  console.log(`${label.padEnd(58)} ${fmt(median(ms))}`);
  return median(ms);
}

try {
  await run(node, [CLI, 'push', HELLO, `${repo}:v0`, ...trust('signer')], env);
  const push = await times('push', (i) => ['push', HELLO, `${repo}:p${i}`]);
  const pushSigned = await times('push --sign (existing collection)', (i) => [
    'push',
    HELLO,
    `${repo}:s${i}`,
    ...trust('signer'),
  ]);
  await times('push --sign (new collection: 3 new keys)', (i) => [
    'push',
    HELLO,
    `${registry.host}/bench/new${i}:v1`,
    ...trust(`new${i}`),
  ]);
  const out = join(work.path, 'out.wasm');
  const pull = await times('pull --no-cache', () => ['pull', `${repo}:s0`, '-o', out, '--no-cache']);
  const pullSigned = await times('pull --no-cache --sign', () => [
    'pull',
    `${repo}:s0`,
    '-o',
    out,
    '--no-cache',
    ...trust('signer'),
  ]);
  console.log(
    `${'overhead of --sign: push / pull'.padEnd(58)} +${(pushSigned - push).toFixed(0)} ms / +${(pullSigned - pull).toFixed(0)} ms`,
  );
  const pbkdf2 = [];
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    pbkdf2Sync('passphrase', Buffer.alloc(8), 100_000, 32, 'sha1');
    pbkdf2.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  console.log(`${'PBKDF2-SHA1, 100 000 rounds (one key file)'.padEnd(58)} ${median(pbkdf2).toFixed(1)} ms`);
  const list = [];
  for (let i = 0; i < RUNS; i++) {
    const dir = join(work.path, `notary${i}`);
    list.push((await run('/usr/bin/notary', ['-s', notary.url, '-d', dir, 'list', repo], env)).ms);
  }
  console.log(`${'notary list (the Go CLI), for scale'.padEnd(58)} ${fmt(median(list))}`);
} finally {
  await Promise.all([registry.stop(), notary.stop()]);
  await work.remove();
}
