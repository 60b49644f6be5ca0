import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileWriter, outputWriter, PREFILL_MAX_BYTES } from './output.js';

describe('fileWriter (writes overlapped with the caller)', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'w2o-output-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes every byte in order whatever the chunk sizes, reusing the caller’s buffer at once', async () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    for (const size of [0, 1, 200, 1024 * 1024 - 1, 1024 * 1024, 5 * 1024 * 1024 + 3]) {
      const bytes = randomBytes(size);
      const target = join(dir, `out-${size}`);
      const writer = fileWriter(join(dir, `.out-${size}.part`), target);
      const scratch = Buffer.alloc(300 * 1024);
      for (let at = 0; at < size; ) {
        const n = Math.min(size - at, 1 + Math.floor(rand() * scratch.length));
        bytes.copy(scratch, 0, at, at + n);
        const full = writer.write(scratch.subarray(0, n));
        scratch.fill(0xee); // the writer must have taken its copy already
        if (full) await full;
        at += n;
      }
      await writer.commit();
      assert.ok((await readFile(target)).equals(bytes), `size ${size}`);
    }
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.endsWith('.part')),
      [],
      'no temporary file left',
    );
  });

  it('asks the caller to wait while its writes are under way (bounded memory)', async () => {
    const writer = fileWriter(join(dir, '.bounded.part'), join(dir, 'bounded'));
    const chunk = Buffer.alloc(1024 * 1024, 1);
    let asked = false;
    for (let i = 0; i < 8 && !asked; i++) asked = writer.write(chunk) !== undefined;
    assert.ok(asked, 'a promise once three 1 MiB writes are in flight');
    await writer.abort();
    assert.deepEqual(await readdir(dir).then((f) => f.filter((n) => n.startsWith('.bounded'))), []);
  });
});

describe('fileWriter read regions (bytes taken in place)', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-region-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes region bytes in place, foreign chunks by copy, and bytes read past a skip correctly', async () => {
    const expected: Buffer[] = [];
    const target = join(dir, 'mixed');
    const writer = fileWriter(join(dir, '.mixed.part'), target);
    const region = writer.write.region as () => Buffer;
    assert.equal(typeof region, 'function');
    const source = randomBytes(5 * 1024 * 1024);
    let at = 0;
    for (let step = 0; at < source.length; step++) {
      const n = Math.min(source.length - at, 1000 + ((step * 7919) % 300_000));
      const piece = source.subarray(at, at + n);
      at += n;
      let chunk: Buffer;
      if (step % 3 === 0) {
        // A read into the offered region, delivered from where it landed.
        const room = region();
        assert.ok(room.length >= 64 * 1024);
        const k = Math.min(n, room.length);
        piece.copy(room, 0, 0, k);
        chunk = room.subarray(0, k);
        at -= n - k;
      } else if (step % 3 === 1) {
        // A read into the region whose first bytes are skipped (a resumed download, a chunk header).
        const room = region();
        const skip = Math.min(17, room.length - 1);
        const k = Math.min(n, room.length - skip);
        piece.copy(room, skip, 0, k);
        chunk = room.subarray(skip, skip + k);
        at -= n - k;
      } else chunk = Buffer.from(piece);
      expected.push(Buffer.from(chunk));
      const full = writer.write(chunk);
      if (full) await full;
    }
    await writer.commit();
    assert.ok((await readFile(target)).equals(Buffer.concat(expected)));
    assert.equal(Buffer.concat(expected).length, source.length);
  });
});

describe('writers told the size lay a small file out before its bytes come', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-prefill-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps every byte written at once, however early, at the sizes around the limits', async () => {
    const sizes = [
      1,
      200,
      64 * 1024 - 1,
      64 * 1024,
      64 * 1024 + 1,
      1_600_000,
      PREFILL_MAX_BYTES,
      PREFILL_MAX_BYTES + 1,
    ];
    for (const size of sizes) {
      const bytes = randomBytes(size);
      const target = join(dir, `sized-${size}`);
      const writer = await outputWriter(target, { size });
      // The first bytes go while the zeros may still be on their way: they must not be overwritten.
      for (let at = 0; at < size; at += 100_000) {
        const full = writer.write(bytes.subarray(at, at + 100_000));
        if (full) await full;
      }
      await writer.commit();
      const written = await readFile(target);
      assert.equal(written.length, size, `size ${size}`);
      assert.ok(written.equals(bytes), `content at size ${size}`);
    }
  });

  it('cuts a file that ends shorter than announced to what was written', async () => {
    const target = join(dir, 'short');
    const writer = fileWriter(join(dir, '.short.part'), target, 0o666, 5000);
    writer.write(Buffer.alloc(3000, 7));
    await writer.commit();
    assert.deepEqual(await readFile(target), Buffer.alloc(3000, 7));
  });

  it('leaves nothing behind when aborted while the zeros are written', async () => {
    const writer = await outputWriter(join(dir, 'aborted'), { size: 8 * 1024 * 1024 });
    writer.write(Buffer.alloc(10, 1));
    await writer.abort();
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.includes('aborted')),
      [],
    );
  });
});
