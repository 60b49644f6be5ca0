#!/usr/bin/env node
// Benchmark for issue 5 (printed figures, not a timed test). Run with `npm run bench:copy`.
//
// Copying a 256 MiB module between two local Distribution registries with `wasm-to-oci copy`, against
// the same move done as a pull to a file followed by a push of that file (two processes, run
// separately); median of N runs, interleaved, `sync` before each timed step; peak RSS of the copy.
// Environment: BENCH_SIZE_MIB (default 256), BENCH_RUNS (default 5).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const harness = join(root, '.test-build/test/harness');
const { startRegistry } = await import(join(harness, 'registry.js'));
const { writeLargeWasm, tempDir } = await import(join(harness, 'fixtures.js'));

const SIZE_MIB = Number(process.env.BENCH_SIZE_MIB ?? 256);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const CLI = join(root, 'dist/cli/main.js');
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function run(args, env) {
  return new Promise((resolve, reject) => {
    const argv = TIME
      ? [TIME, '-f', '__RSS__%M', process.execPath, CLI, ...args]
      : [process.execPath, CLI, ...args];
    const start = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (code !== 0) reject(new Error(`${args.join(' ')}: exit ${code}: ${stderr}`));
      else resolve({ ms, rssKiB: Number(/__RSS__(\d+)/.exec(stderr)?.[1]) || undefined });
    });
  });
}

const a = await startRegistry();
const b = await startRegistry();
const work = await tempDir();
try {
  const big = join(work.path, 'big.wasm');
  await writeLargeWasm(big, SIZE_MIB * 1024 * 1024);
  const env = { XDG_CACHE_HOME: join(work.path, 'cache') };
  await run(['push', big, `${a.host}/src/big:v1`, '--no-cache'], env);
  console.log(`registries ${a.host} -> ${b.host}; module ${SIZE_MIB} MiB; ${RUNS} runs each`);
  const copies = [];
  const rss = [];
  const pulls = [];
  const pushes = [];
  for (let i = 0; i < RUNS; i++) {
    spawnSync('sync');
    const c = await run(['copy', `${a.host}/src/big:v1`, `${b.host}/copy${i}/big:v1`], env);
    copies.push(c.ms);
    rss.push(c.rssKiB);
    spawnSync('sync');
    const out = join(work.path, 'pulled.wasm');
    pulls.push((await run(['pull', `${a.host}/src/big:v1`, '-o', out, '--no-cache'], env)).ms);
    spawnSync('sync');
    pushes.push((await run(['push', out, `${b.host}/sep${i}/big:v1`, '--no-cache'], env)).ms);
    await rm(out, { force: true });
  }
  const separate = median(pulls) + median(pushes);
  const fmt = (ms) => `${(ms / 1000).toFixed(3)} s`;
  console.log('');
  console.log(
    `copy registry -> registry   ${fmt(median(copies))}   peak RSS ${rss[0] === undefined ? 'n/a' : `${(Math.max(...rss) / 1024).toFixed(1)} MiB`}`,
  );
  console.log(`pull to a file              ${fmt(median(pulls))}`);
  console.log(`push of that file           ${fmt(median(pushes))}`);
  console.log(`copy / (pull + push)        ${(median(copies) / separate).toFixed(2)}x`);
} finally {
  await a.stop();
  await b.stop();
  await work.remove();
}
