import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { digestOf } from '../oci/digest.js';
import { MemoryStore } from './memory.js';
import { readAll, readVerified, verified, verifyBytes } from './verify.js';

const bytes = Buffer.from('hello, wasm');
const desc = { mediaType: 'application/octet-stream', digest: digestOf(bytes), size: bytes.length };

function chunks(...parts: string[]): Readable {
  return Readable.from(parts.map((p) => Buffer.from(p)));
}

describe('verified reads', () => {
  it('passes content that matches its descriptor', async () => {
    assert.deepEqual(await readAll(verified(chunks('hello, ', 'wasm'), desc), 1024), bytes);
  });
  it('fails on a digest mismatch', async () => {
    await assert.rejects(readAll(verified(chunks('hello, WASM'), desc), 1024), { code: 'DIGEST_MISMATCH' });
  });
  it('fails on short content', async () => {
    await assert.rejects(readAll(verified(chunks('hello'), desc), 1024), { code: 'SIZE_MISMATCH' });
  });
  it('fails as soon as content overruns the size', async () => {
    await assert.rejects(readAll(verified(chunks('hello, wasm', '!!!'), desc), 1024), {
      code: 'SIZE_MISMATCH',
    });
  });
  it('passes on source errors', async () => {
    const broken = new Readable({
      read() {
        this.destroy(new Error('boom'));
      },
    });
    await assert.rejects(readAll(verified(broken, desc), 1024), /boom/);
  });
  it('caps what it reads into memory', async () => {
    await assert.rejects(readVerified(chunks('x'.repeat(100)), { ...desc, size: 100 }, 10), {
      code: 'TOO_LARGE',
    });
    await assert.rejects(readAll(chunks('x'.repeat(100)), 10), { code: 'TOO_LARGE' });
  });
  it('checks bytes in memory', () => {
    verifyBytes(bytes, desc);
    assert.throws(() => verifyBytes(Buffer.from('nope'), desc), { code: 'SIZE_MISMATCH' });
    assert.throws(() => verifyBytes(Buffer.from('hello, WASM'), desc), { code: 'DIGEST_MISMATCH' });
  });
});

describe('MemoryStore', () => {
  it('stores verified content, resolves tags, refuses mismatches', async () => {
    const store = new MemoryStore();
    await store.push(desc, bytes);
    assert.equal(await store.exists(desc), true);
    assert.deepEqual(await readAll(await store.fetch(desc), 100), bytes);
    await assert.rejects(store.push({ ...desc, digest: digestOf('other') }, bytes), {
      code: 'DIGEST_MISMATCH',
    });
    const manifest = Buffer.from('{}');
    const mdesc = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: digestOf(manifest),
      size: 2,
    };
    await store.pushReference(mdesc, manifest, 'v1');
    assert.deepEqual(await store.resolve('v1'), mdesc);
    await assert.rejects(store.resolve('v2'), { code: 'NOT_FOUND' });
    await assert.rejects(store.tag({ ...mdesc, digest: digestOf('missing') }, 'x'), { code: 'NOT_FOUND' });
  });
  it('ingests a range of an open file, telling the observer every chunk', async () => {
    const { mkdtemp, open, rm, writeFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-unit-'));
    try {
      await writeFile(join(dir, 'f'), Buffer.concat([Buffer.from('xx'), bytes, Buffer.from('yy')]));
      const handle = await open(join(dir, 'f'));
      let seen = 0;
      const got = await new MemoryStore().ingest('application/wasm', {
        fd: handle.fd,
        start: 2,
        length: bytes.length,
        observe: (chunk) => {
          seen += chunk.length;
        },
      });
      await handle.close();
      assert.equal(got.digest, desc.digest);
      assert.equal(seen, bytes.length);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
  it('ingests content of unknown digest', async () => {
    const store = new MemoryStore();
    const got = await store.ingest('application/wasm', chunks('hello, ', 'wasm'), { size: bytes.length });
    assert.deepEqual(got, { mediaType: 'application/wasm', digest: desc.digest, size: desc.size });
  });
});
