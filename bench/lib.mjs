// Shared by the benchmark scripts: the test harness (real registry, fixtures), settings from the
// environment, and a runner that times a command and reads its peak RSS through GNU time.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));
const harness = join(root, '.test-build/test/harness');
export const { startRegistry } = await import(join(harness, 'registry.js'));
export const { writeLargeWasm, tempDir, writeSkopeoPolicy } = await import(join(harness, 'fixtures.js'));

export const SIZE_MIB = Number(process.env.BENCH_SIZE_MIB ?? 256);
export const RUNS = Number(process.env.BENCH_RUNS ?? 5);
export const CLI = join(root, 'dist/cli/main.cjs');
export const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
export const fmt = (ms) => `${(ms / 1000).toFixed(3)} s`;

/** Runs a command, returning wall time (ms), peak RSS (KiB, via GNU time when installed) and output. */
export function run(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const argv = TIME ? [TIME, '-f', '__RSS__%M', cmd, ...args] : [cmd, ...args];
    const start = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      const m = /__RSS__(\d+)/.exec(stderr);
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr}`));
      else resolve({ ms, rssKiB: m ? Number(m[1]) : undefined, stdout, stderr });
    });
  });
}
