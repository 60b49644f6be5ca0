import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { isRegularFile, scanTar, type TarEntry } from './tar.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-tar-'));
  const long = `${'deep/'.repeat(30)}plugin.wasm`;
  await mkdir(join(dir, 'src', long, '..'), { recursive: true });
  await writeFile(join(dir, 'src', long), 'long body');
  await writeFile(join(dir, 'src', 'small.txt'), 'x'.repeat(700));
  await symlink('small.txt', join(dir, 'src', 'link'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** An archive written by the system's tar in the given format. */
async function archive(format: 'gnu' | 'pax' | 'ustar', files: string[]): Promise<Buffer> {
  const out = join(dir, `${format}.tar`);
  await promisify(execFile)('tar', [`--format=${format}`, '-C', join(dir, 'src'), '-cf', out, ...files]);
  return readFile(out);
}

/** Every entry, with the bodies it asked for, fed in chunks of `size` bytes. */
async function scan(bytes: Buffer, size: number): Promise<Array<TarEntry & { body: string }>> {
  const chunks = async function* () {
    for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
  };
  const out: Array<TarEntry & { body: string }> = [];
  await scanTar(chunks(), (entry) => {
    const record = { ...entry, body: '' };
    out.push(record);
    return (chunk) => {
      record.body += chunk.toString();
    };
  });
  return out;
}

describe('scanTar', () => {
  const long = `${'deep/'.repeat(30)}plugin.wasm`;
  for (const format of ['gnu', 'pax'] as const) {
    it(`reads ${format} long names, sizes and links, in any chunking`, async () => {
      const bytes = await archive(format, [long, 'small.txt', 'link']);
      for (const size of [1, 7, 512, 100_000]) {
        const entries = await scan(bytes, size);
        assert.deepEqual(
          entries.map((e) => [e.name, e.size, isRegularFile(e), e.body.length]),
          [
            [long, 9, true, 9],
            ['small.txt', 700, true, 700],
            ['link', 0, false, 0],
          ],
        );
        assert.equal(entries[0]?.body, 'long body');
      }
    });
  }

  it('refuses a bad checksum and an archive cut inside an entry', async () => {
    const bytes = await archive('ustar', ['small.txt']);
    const corrupt = Buffer.from(bytes);
    corrupt[0] = 0x41;
    await assert.rejects(scan(corrupt, 512), { code: 'INVALID_WASM', message: /checksum/ });
    await assert.rejects(scan(bytes.subarray(0, 700), 512), { code: 'INVALID_WASM', message: /middle/ });
  });
});
