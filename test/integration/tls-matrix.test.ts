import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MemoryStore } from '../../src/content/memory.js';
import { copy } from '../../src/copy.js';
import { digestOf } from '../../src/oci/digest.js';
import { pull } from '../../src/ops/pull.js';
import { getBlob } from '../../src/ops/repository.js';
import { openTarget, parseTarget } from '../../src/ops/target.js';
import { packClassic } from '../../src/wasm/classic.js';
import { WasmMediaType } from '../../src/wasm/mediatypes.js';
import { type CertificateAuthority, makeCa, makeCert } from '../harness/certs.js';
import { runCli } from '../harness/cli.js';
import { HELLO_WASM, tempDir } from '../harness/fixtures.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

/**
 * Every size over every transport, repeated: the first wave's suite was green while 2 of 3 small pulls
 * over TLS failed, because no test repeated a small transfer over TLS. Sizes 0 and 1 are blobs (no
 * module is that small); from 143 bytes on they are modules (a preamble and a custom section), pulled
 * as a user pulls them, without the cache, 15 times each (5 for 40 MiB), with 0 failures allowed.
 */

const SIZES = [0, 1, 143, 16 * 1024, 1024 * 1024, 5 * 1024 * 1024, 40 * 1024 * 1024];
const runsFor = (size: number) => (size >= 40 * 1024 * 1024 ? 5 : 15);

/** A module of exactly `size` bytes (>= 10): the preamble and one custom section of random bytes. */
function moduleOf(size: number): Buffer {
  if (size < 10) return randomBytes(size);
  // Section id 0, a LEB128 length, a 1-byte name length and name "x", then the payload.
  const header = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  for (let lebBytes = 1; lebBytes <= 5; lebBytes++) {
    const content = size - header.length - 1 - lebBytes;
    const leb: number[] = [];
    let v = content;
    do {
      let byte = v & 0x7f;
      v >>>= 7;
      if (v || leb.length + 1 < lebBytes) byte |= 0x80;
      leb.push(byte);
    } while (v || leb.length < lebBytes);
    if (leb.length !== lebBytes) continue;
    return Buffer.concat([header, Buffer.from([0x00, ...leb, 0x01, 0x78]), randomBytes(content - 2)]);
  }
  throw new Error(`no module of ${size} bytes`);
}

let work: Awaited<ReturnType<typeof tempDir>>;
let ca: CertificateAuthority;
let plain: RegistryServer;
let secure: RegistryServer;

before(async () => {
  work = await tempDir();
  ca = await makeCa(work.path);
  const cert = await makeCert(ca, work.path, 'registry', { sans: ['127.0.0.1', 'localhost'] });
  plain = await startRegistry();
  secure = await startRegistry({ tls: { certificate: cert.certPath, key: cert.keyPath } });
});
after(async () => {
  await plain?.stop();
  await secure?.stop();
  await work?.remove();
});

const transports = () => [
  { name: 'plain HTTP', registry: plain, connect: {} },
  { name: 'TLS', registry: secure, connect: { ca: [ca.certPem] } },
];

/** Pushes `bytes` as the layer of a classic manifest under `ref` (through the library, any transport). */
async function pushLayer(ref: string, bytes: Buffer, connect: object): Promise<{ digest: string }> {
  const store = new MemoryStore();
  const layer = { mediaType: WasmMediaType.classicLayer, digest: digestOf(bytes), size: bytes.length };
  await store.push(layer, bytes);
  const packed = packClassic(layer, 'm.wasm');
  await store.push(packed.config.desc, packed.config.bytes);
  await store.push(packed.desc, packed.bytes);
  await store.tag(packed.desc, 'v1');
  const { target, close } = openTarget(parseTarget(ref), 'push', connect);
  try {
    await copy(store, 'v1', target, 'v1');
  } finally {
    close();
  }
  return { digest: layer.digest };
}

describe('the transfer matrix: plain HTTP and TLS, 0 B to 40 MiB, repeated', () => {
  for (const size of SIZES) {
    it(`${size} bytes: ${runsFor(size)} blob gets and ${size >= 10 ? runsFor(size) : 0} pulls each way, no failure`, async () => {
      for (const t of transports()) {
        const bytes = moduleOf(size);
        const repo = `${t.registry.host}/matrix/s${size}`;
        const { digest } = await pushLayer(`${repo}:v1`, bytes, t.connect);
        const out = join(work.path, `s${size}.bin`);
        for (let run = 0; run < runsFor(size); run++) {
          await rm(out, { force: true });
          const desc = await getBlob({ reference: `${repo}@${digest}`, output: out, ...t.connect });
          assert.equal(desc.size, size, `${t.name} run ${run}`);
          assert.ok((await readFile(out)).equals(bytes), `${t.name} blob run ${run}`);
          if (size < 10) continue;
          await rm(out, { force: true });
          const pulled = await pull({ reference: `${repo}:v1`, output: out, ...t.connect });
          assert.equal(pulled.digest, digest);
          assert.ok((await readFile(out)).equals(bytes), `${t.name} pull run ${run}`);
        }
      }
    });
  }

  it('the CLI pulls a 151-byte module over TLS 15 times in a row, without the cache', async () => {
    const env = {
      HOME: work.path,
      DOCKER_CONFIG: join(work.path, 'docker'),
      XDG_CACHE_HOME: join(work.path, 'c'),
    };
    const push = await runCli(
      ['push', HELLO_WASM, `${secure.host}/matrix/cli:v1`, '--ca-file', ca.certPath],
      {
        env,
        cwd: work.path,
      },
    );
    assert.equal(push.code, 0, push.stderr);
    const expected = await readFile(HELLO_WASM);
    for (let run = 0; run < 15; run++) {
      const out = join(work.path, `cli${run}.wasm`);
      const res = await runCli(
        ['pull', `${secure.host}/matrix/cli:v1`, '--ca-file', ca.certPath, '--no-cache', '-o', out],
        { env, cwd: work.path },
      );
      assert.equal(res.code, 0, `run ${run}: ${res.stderr}`);
      assert.ok((await readFile(out)).equals(expected), `run ${run}`);
    }
    await writeFile(join(work.path, 'done'), '');
  });
});
