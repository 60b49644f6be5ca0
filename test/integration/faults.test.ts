import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pull } from '../../src/ops/pull.js';
import { push } from '../../src/ops/push.js';
import type { RetryClock } from '../../src/transport/retry.js';
import { type CertificateAuthority, makeCa, makeCert } from '../harness/certs.js';
import { type Fault, mulberry32, type Plan, randomCuts, startFaultyProxy } from '../harness/fault-proxy.js';
import { tempDir, writeLargeWasm } from '../harness/fixtures.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

/**
 * Dropped connections are part of normal operation: a byte-transparent proxy between the library and
 * the real registry cuts requests at seeded random offsets (resets and clean closes, before the answer,
 * inside bodies, after the registry got everything). Every transfer must recover with the exact bytes,
 * leave no partial or temporary file, and never move a tag wrongly.
 */

const SIZE = 20 * 1024 * 1024;
/** Retries without real waits. */
const instant: RetryClock = { now: () => Date.now(), sleep: async () => {}, random: () => 0.5 };
/** The proxies front a plain-HTTP registry. */
const plainHttp = true;

let work: Awaited<ReturnType<typeof tempDir>>;
let registry: RegistryServer;
let module_ = '';
let moduleBytes: Buffer;
let ca: CertificateAuthority;

before(async () => {
  work = await tempDir();
  registry = await startRegistry();
  module_ = join(work.path, 'twenty.wasm');
  await writeLargeWasm(module_, SIZE);
  moduleBytes = await readFile(module_);
  ca = await makeCa(work.path);
});
after(async () => {
  await registry?.stop();
  await work?.remove();
});

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function noTemporaryFiles(): Promise<void> {
  const names = (await readdir(work.path, { recursive: true })).map(String);
  assert.deepEqual(
    names.filter((n) => n.endsWith('.part')),
    [],
  );
}

describe('pulls through seeded connection drops', () => {
  it('recovers from at least 20 drops across pulls of a 20 MiB module, with the exact bytes', async () => {
    const direct = await push({ file: module_, reference: `${registry.host}/faults/pull:v1` });
    const cuts = randomCuts({ seed: 20261202, kinds: ['blob-get'], probability: 0.75, maxOffset: SIZE });
    const rand = mulberry32(7);
    // Besides body cuts: drops before any answer, and cuts inside manifest bodies.
    const plan: Plan = (request) => {
      // Every third manifest GET (a retry then succeeds: at most 4 tries without progress are made).
      if (request.kind === 'manifest-get' && request.n % 3 === 1) {
        return {
          type: 'cut',
          side: 'response',
          at: rand() < 0.5 ? -1 : (size) => Math.floor((size ?? 100) / 2),
          how: 'reset',
        };
      }
      if (request.kind === 'blob-get' && rand() < 0.15)
        return { type: 'cut', side: 'response', at: -1, how: 'close' };
      return cuts(request);
    };
    const proxy = await startFaultyProxy(registry.host, { plan });
    try {
      for (let i = 0; i < 12; i++) {
        const out = join(work.path, `pulled-${i}.wasm`);
        const res = await pull({
          reference: `${proxy.host}/faults/pull:v1`,
          output: out,
          clock: instant,
          plainHttp,
        });
        assert.equal(res.digest, direct.layer.digest, `pull ${i}`);
        assert.ok((await readFile(out)).equals(moduleBytes), `pull ${i}: the exact bytes`);
      }
      const faults = proxy.faults();
      assert.ok(faults.total >= 20, `only ${faults.total} drops were applied`);
      assert.ok((faults.byKind['blob-get'] ?? 0) >= 10, JSON.stringify(faults));
      assert.ok((faults.byKind['manifest-get'] ?? 0) >= 1, JSON.stringify(faults));
      await noTemporaryFiles();
    } finally {
      await proxy.stop();
    }
  });

  it('gives up after the retry policy, leaving an existing output untouched and no temporary file', async () => {
    const proxy = await startFaultyProxy(registry.host, {
      plan: (r) =>
        r.kind === 'blob-get' ? { type: 'cut', side: 'response', at: 1000, how: 'reset' } : undefined,
    });
    try {
      const out = join(work.path, 'kept.wasm');
      await writeFile(out, 'precious');
      await assert.rejects(
        pull({
          reference: `${proxy.host}/faults/pull:v1`,
          output: out,
          clock: instant,
          retry: { resumes: 3 },
        }),
        (err: Error & { code?: string }) =>
          err.code === 'NETWORK' && /downloading .* after \d+ tries/.test(err.message),
      );
      assert.equal(await readFile(out, 'utf8'), 'precious');
      await noTemporaryFiles();
    } finally {
      await proxy.stop();
    }
  });

  it('over TLS, drops at raw byte offsets of the encrypted stream are recovered too', async () => {
    const cert = await makeCert(ca, work.path, 'faults', { sans: ['127.0.0.1'] });
    const tlsRegistry = await startRegistry({ tls: { certificate: cert.certPath, key: cert.keyPath } });
    const tls = { ca: [ca.certPem] };
    try {
      await push({ file: module_, reference: `${tlsRegistry.host}/faults/tls:v1`, ...tls });
      const rand = mulberry32(99);
      let connections = 0;
      const proxy = await startFaultyProxy(tlsRegistry.host, {
        tls: true,
        plan: () => {
          connections++;
          // Every connection is cut somewhere in its first 20 MiB of encrypted bytes (a pull's manifest
          // and blob share one kept-alive connection; the loopback TLS probe is too short to be cut, and
          // a resumed download's shorter connection often ends before its cut).
          return {
            type: 'cut',
            side: 'response',
            at: Math.floor(rand() * SIZE),
            how: connections % 2 ? 'reset' : 'close',
          } as Fault;
        },
      });
      try {
        for (let i = 0; i < 4; i++) {
          const out = join(work.path, `tls-${i}.wasm`);
          await pull({ reference: `${proxy.host}/faults/tls:v1`, output: out, clock: instant, ...tls });
          assert.ok((await readFile(out)).equals(moduleBytes), `TLS pull ${i}`);
        }
        assert.ok(proxy.faults().total >= 3, JSON.stringify(proxy.faults()));
      } finally {
        await proxy.stop();
      }
    } finally {
      await tlsRegistry.stop();
    }
  });
});

describe('pushes through seeded connection drops', () => {
  it('recovers from at least 10 drops during pushes of a 20 MiB module; tags point where they should', async () => {
    const rand = mulberry32(424242);
    const left: Record<string, number> = {
      'upload-patch': 8,
      'upload-put': 3,
      'manifest-put': 3,
      'upload-post': 2,
    };
    const chance: Record<string, number> = {
      'upload-patch': 0.7,
      'upload-put': 0.4,
      'manifest-put': 0.4,
      'upload-post': 0.1,
    };
    const plan: Plan = (request) => {
      const kind = request.kind;
      if (!(left[kind] ?? 0) || rand() > (chance[kind] ?? 0)) return undefined;
      left[kind] = (left[kind] ?? 0) - 1;
      const body = (size: number | undefined) => Math.floor(rand() * Math.max(1, size ?? SIZE));
      if (kind === 'upload-patch')
        return { type: 'cut', side: 'request', at: body, how: rand() < 0.5 ? 'close' : 'reset' };
      if (kind === 'upload-put' || kind === 'manifest-put') {
        // The registry got everything, only its answer is lost; or the body is cut.
        return rand() < 0.6
          ? { type: 'lose-answer' }
          : { type: 'cut', side: 'request', at: body, how: 'reset' };
      }
      return { type: 'cut', side: 'response', at: -1, how: 'reset' };
    };
    const proxy = await startFaultyProxy(registry.host, { plan });
    try {
      for (let i = 0; i < 7; i++) {
        const file = join(work.path, `push-${i}.wasm`);
        await writeLargeWasm(file, SIZE);
        const bytes = await readFile(file);
        const res = await push({
          file,
          reference: `${proxy.host}/faults/push:v${i}`,
          clock: instant,
          digestCache: undefined,
        });
        assert.equal(res.layer.digest, sha256(bytes), `push ${i}`);
        const back = join(work.path, `back-${i}.wasm`);
        await pull({ reference: `${registry.host}/faults/push:v${i}`, output: back });
        assert.ok(
          (await readFile(back)).equals(bytes),
          `push ${i}: the registry holds the exact bytes under v${i}`,
        );
      }
      const faults = proxy.faults();
      assert.ok(faults.total >= 10, `only ${faults.total} drops were applied: ${JSON.stringify(faults)}`);
      assert.ok((faults.byKind['upload-patch'] ?? 0) >= 5, JSON.stringify(faults));
      assert.ok((faults.byType['lose-answer'] ?? 0) >= 1, JSON.stringify(faults));
    } finally {
      await proxy.stop();
    }
  });

  it('a push that keeps failing never moves its tag', async () => {
    const first = await push({ file: module_, reference: `${registry.host}/faults/stable:prod` });
    const other = join(work.path, 'other.wasm');
    await writeLargeWasm(other, SIZE);
    const proxy = await startFaultyProxy(registry.host, {
      plan: (r) =>
        r.kind === 'upload-patch' ? { type: 'cut', side: 'request', at: 4096, how: 'reset' } : undefined,
    });
    try {
      await assert.rejects(
        push({ file: other, reference: `${proxy.host}/faults/stable:prod`, clock: instant, plainHttp }),
      );
      const check = join(work.path, 'stable.wasm');
      const res = await pull({ reference: `${registry.host}/faults/stable:prod`, output: check });
      assert.equal(res.manifest.digest, first.digest, 'the tag still names the first push');
    } finally {
      await proxy.stop();
    }
  });
});
