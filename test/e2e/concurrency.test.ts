import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../harness/cli.js';
import { tempDir, writeLargeWasm } from '../harness/fixtures.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

/**
 * 50 CLI processes at once on one real registry, pushing to distinct and shared repositories (the
 * 2-byte classic config blob is shared by all of them: Distribution races on it and answers
 * MANIFEST_BLOB_UNKNOWN), then 50 pulls at once; every push succeeds and every tag holds its module.
 */

const PROCESSES = 50;
let work: Awaited<ReturnType<typeof tempDir>>;
let registry: RegistryServer;
const files: string[] = [];

before(async () => {
  work = await tempDir();
  registry = await startRegistry();
  for (let i = 0; i < 10; i++) {
    const file = join(work.path, `m${i}.wasm`);
    await writeLargeWasm(file, randomInt(100_000, 8 * 1024 * 1024));
    files.push(file);
  }
});
after(async () => {
  await registry?.stop();
  await work?.remove();
});

describe('concurrent CLI processes on one registry', () => {
  it(`${PROCESSES} pushes at once, then ${PROCESSES} pulls at once: all succeed, every tag verified`, async () => {
    const env = { HOME: work.path, DOCKER_CONFIG: join(work.path, 'docker') };
    const jobs = Array.from({ length: PROCESSES }, (_, i) => ({
      file: files[i % files.length] as string,
      ref: i % 2 ? `${registry.host}/shared/app:t${i}` : `${registry.host}/distinct/app${i}:v1`,
      cache: join(work.path, `cache${i}`),
    }));
    const pushes = await Promise.all(
      jobs.map((j) =>
        runCli(['push', j.file, j.ref], {
          env: { ...env, XDG_CACHE_HOME: j.cache },
          cwd: work.path,
          timeoutMs: 120_000,
        }),
      ),
    );
    const failed = pushes.flatMap((r, i) => (r.code === 0 ? [] : [`${jobs[i]?.ref}: ${r.stderr}`]));
    assert.deepEqual(failed, [], `${failed.length} of ${PROCESSES} pushes failed`);
    const pulls = await Promise.all(
      jobs.map((j, i) =>
        runCli(['pull', j.ref, '--no-cache', '-o', join(work.path, `out${i}.wasm`)], {
          env: { ...env, XDG_CACHE_HOME: j.cache },
          cwd: work.path,
          timeoutMs: 120_000,
        }),
      ),
    );
    assert.deepEqual(
      pulls.flatMap((r, i) => (r.code === 0 ? [] : [`${jobs[i]?.ref}: ${r.stderr}`])),
      [],
    );
    for (const [i, j] of jobs.entries()) {
      assert.ok((await readFile(join(work.path, `out${i}.wasm`))).equals(await readFile(j.file)), j.ref);
    }
  });
});
