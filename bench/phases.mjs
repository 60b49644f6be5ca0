#!/usr/bin/env node
// Where a small push and pull spend their time, phase by phase (the performance issue's start-up work).
// Run with `npm run bench:phases`. On one loopback Distribution registry, a 1.6 MB module is pushed and
// pulled BENCH_RUNS times (default 15), alternating with `node -e 0`; the CLI runs with
// bench/phase-marks.cjs preloaded, which records (ms since the process started):
//   main     the preload ran: node's own start-up is over;
//   connect  the first socket connect: loading our code, parsing arguments, reading the Docker config and
//            the cache, hashing the module;
//   stdout   the first line printed: the network phase, every request and answer;
//   exit     the exit event; the process is gone at the wall time (node's teardown).
// The preload costs a little itself; the phases are for comparing, the totals are in bench/peers.mjs.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI, median, root, run, startRegistry, tempDir, writeLargeWasm } from './lib.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const MARKS = join(root, 'bench', 'phase-marks.cjs');
const extraCa = process.env.NODE_EXTRA_CA_CERTS;
if (extraCa) delete process.env.NODE_EXTRA_CA_CERTS;

const registry = await startRegistry();
const work = await tempDir();
const home = join(work.path, 'home');
await mkdir(home, { recursive: true });
const env = { HOME: home, XDG_CACHE_HOME: join(work.path, 'cache'), DOCKER_CONFIG: join(home, '.docker') };
const host = registry.host;

/** One run of the CLI with the marks: wall time and each phase's length. */
async function phases(args) {
  const r = await run(process.execPath, ['-r', MARKS, CLI, ...args], env);
  const line = /__PHASES__(.*)/.exec(r.stderr)?.[1];
  if (!line) throw new Error(`no phase marks from ${args.join(' ')}`);
  const m = JSON.parse(line);
  const first = m.requests[0]?.[0] ?? m.connect;
  return {
    'node start-up': m.main,
    'our start-up (to the first connect)': (m.connect ?? m.stdout) - m.main,
    'network (to the first line printed)': m.stdout - (m.connect ?? m.stdout),
    'connect to first request': first - (m.connect ?? first),
    requests: m.requests.length,
    'printing to the exit event': m.exit - m.stdout,
    'teardown (exit event to process gone)': r.ms - m.exit,
    wall: r.ms,
  };
}

try {
  const module = join(work.path, 'small.wasm');
  await writeLargeWasm(module, 1_600_000);
  await run(process.execPath, [CLI, 'push', module, `${host}/bench/pull:v1`], env);
  const results = { push: [], pull: [], node: [] };
  for (let i = 0; i < RUNS; i++) {
    results.node.push((await run(process.execPath, ['-e', '0'], env)).ms);
    results.push.push(await phases(['push', module, `${host}/bench/push-${i}:v1`, '--no-cache']));
    const out = join(work.path, `out-${i}.wasm`);
    results.pull.push(await phases(['pull', `${host}/bench/pull:v1`, '--no-cache', '-o', out]));
  }
  console.log(`registry ${host} (plain HTTP, loopback); ${RUNS} runs, alternating; medians in ms`);
  if (extraCa) console.log(`NODE_EXTRA_CA_CERTS (${extraCa}) is unset for the runs`);
  console.log(`node -e 0: ${median(results.node).toFixed(1)}`);
  console.log('\n| phase | push 1.6 MB | pull 1.6 MB |\n|---|---|---|');
  for (const key of Object.keys(results.push[0])) {
    const cell = (list) => median(list.map((p) => p[key])).toFixed(key === 'requests' ? 0 : 1);
    console.log(`| ${key} | ${cell(results.push)} | ${cell(results.pull)} |`);
  }
} finally {
  await registry.stop();
  await work.remove();
}
