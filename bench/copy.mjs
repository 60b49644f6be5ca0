#!/usr/bin/env node
// Benchmark for issue 5 (printed figures, not a timed test). Run with `npm run bench:copy`.
//
// Copying a 256 MiB module between two local Distribution registries with `wasm-to-oci copy`, against
// the same move done as a pull to a file followed by a push of that file (two processes, run
// separately); median of N runs, interleaved, `sync` before each timed step; peak RSS of the copy.
// Environment: BENCH_SIZE_MIB (default 256), BENCH_RUNS (default 5).
import { spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CLI,
  fmt,
  median,
  RUNS,
  run as runCommand,
  SIZE_MIB,
  startRegistry,
  tempDir,
  writeLargeWasm,
} from './lib.mjs';

const run = (args, env) => runCommand(process.execPath, [CLI, ...args], env);

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
