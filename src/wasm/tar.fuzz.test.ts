import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { expectResultOrErrorAsync, mutateBytesN, Rng, truncations } from '../../test/harness/fuzz.js';
import { outcomeAsync, params } from '../../test/harness/properties.js';
import { scanTar, type TarEntry } from './tar.js';

/**
 * Seeded fuzzing of the tar reader (a tar layer is untrusted input): archives written by the system's
 * tar in every format, mutated, cut short and fed in random chunk sizes, and random bytes, each end in
 * the entries or an INVALID_WASM error, never another exception, and bodies never exceed the sizes
 * their headers gave.
 */

const SEEDS = [71, 72, 73];
const CODES = ['INVALID_WASM'];

let dir: string;
const archives: Buffer[] = [];
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-tarfuzz-'));
  const src = join(dir, 'src');
  const long = `${'nested/'.repeat(20)}plugin.wasm`;
  await mkdir(join(src, long, '..'), { recursive: true });
  await writeFile(join(src, long), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  await writeFile(join(src, 'notes.txt'), 'n'.repeat(1500));
  for (const format of ['gnu', 'pax', 'ustar', 'v7']) {
    const out = join(dir, `${format}.tar`);
    const files = format === 'ustar' || format === 'v7' ? ['notes.txt'] : ['notes.txt', long];
    await promisify(execFile)('tar', [`--format=${format}`, '-C', src, '-cf', out, ...files]);
    archives.push(await readFile(out));
  }
});
after(() => rm(dir, { recursive: true, force: true }));

/** Scans `bytes` fed in chunks the rng chooses; checks each body stays within its header's size. */
async function scan(bytes: Uint8Array, rng: Rng): Promise<TarEntry[]> {
  const sizes = Array.from({ length: 64 }, () => 1 + rng.int(3000));
  const chunks = async function* () {
    let at = 0;
    for (let i = 0; at < bytes.length; i++) {
      const n = sizes[i % sizes.length] as number;
      yield bytes.subarray(at, at + n);
      at += n;
    }
  };
  const entries: TarEntry[] = [];
  await scanTar(chunks(), (entry) => {
    entries.push(entry);
    let got = 0;
    return (chunk) => {
      got += chunk.length;
      assert.ok(got <= entry.size, `body of ${entry.name} longer than its ${entry.size} bytes`);
    };
  });
  return entries;
}

describe('tar reader fuzzing', () => {
  it('reads the unmutated archives whole', async () => {
    for (const bytes of archives) {
      const entries = await scan(bytes, new Rng(1));
      assert.ok(entries.some((e) => e.name === 'notes.txt' && e.size === 1500));
    }
  });

  for (const seed of SEEDS) {
    it(`mutated archives give entries or INVALID_WASM (seed ${seed})`, async () => {
      const rng = new Rng(seed);
      for (let run = 0; run < 150; run++) {
        const base = archives[run % archives.length] as Buffer;
        const input = mutateBytesN(rng, base, 1 + rng.int(8));
        await expectResultOrErrorAsync(
          () => scan(input, rng),
          CODES,
          `seed ${seed} run ${run}`,
          input.length,
        );
      }
    });
  }

  it('every truncation of an archive gives entries or INVALID_WASM', async () => {
    const rng = new Rng(9);
    const base = archives[0] as Buffer;
    let runs = 0;
    for (const cut of truncations(base)) {
      if (runs++ % 7 !== 0) continue;
      await expectResultOrErrorAsync(() => scan(cut, rng), CODES, `cut at ${cut.length}`, cut.length);
    }
    assert.ok(runs > 100);
  });

  it('random bytes and random headers give entries or INVALID_WASM (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 4096 }),
        fc.integer({ min: 1, max: 1 << 30 }),
        async (bytes, seed) => {
          await outcomeAsync(() => scan(bytes, new Rng(seed)), CODES, bytes.length);
        },
      ),
      params(74, 300),
    );
  });
});
