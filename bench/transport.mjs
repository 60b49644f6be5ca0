#!/usr/bin/env node
// Transport benchmarks (issue 10), printed as figures. Run with `npm run bench:transport`.
//
// On one local Distribution registry (plain HTTP) and one serving TLS, in one run:
//  - pull and push of a 256 MiB module through the byte-transparent fault proxy, without drops and with
//    10 injected drops (connection resets and closes at seeded offsets inside the bodies): time to
//    completion, and the ratio to the same transfer without drops;
//  - pull and push of 256 MiB over TLS against curl over TLS (GET to a file; POST + PUT of the digest).
//
// Distribution cancels an upload session whose state no longer matches, so a dropped push starts its
// upload again from byte zero: a push's drop figure is bounded by re-sending, a pull's by resuming.
//
// Environment: BENCH_SIZE_MIB (default 256), BENCH_RUNS (default 3), BENCH_DROPS (default 10).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { CLI, fmt, median, root, run, SIZE_MIB, startRegistry, tempDir, writeLargeWasm } from './lib.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const DROPS = Number(process.env.BENCH_DROPS ?? 10);
const harness = join(root, '.test-build/test/harness');
const { startFaultyProxy, mulberry32 } = await import(join(harness, 'fault-proxy.js'));
const { makeCa, makeCert } = await import(join(harness, 'certs.js'));

async function sha256File(path) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

const work = await tempDir();
const size = SIZE_MIB * 1024 * 1024;
const ca = await makeCa(work.path);
const cert = await makeCert(ca, work.path, 'bench', { sans: ['127.0.0.1'] });
const plain = await startRegistry();
const tls = await startRegistry({ tls: { certificate: cert.certPath, key: cert.keyPath } });
const rows = [];
try {
  const big = join(work.path, 'big.wasm');
  await writeLargeWasm(big, size);
  const digest = await sha256File(big);
  const env = { XDG_CACHE_HOME: join(work.path, 'cache'), SSL_CERT_FILE: '', NODE_EXTRA_CA_CERTS: '' };
  console.log(`module ${SIZE_MIB} MiB; ${RUNS} runs each; ${DROPS} drops per faulty transfer`);

  // A plan that cuts the first DROPS requests of `kind` at seeded offsets inside their bodies.
  const drops = (kind, side, seed) => {
    const rand = mulberry32(seed);
    let left = DROPS;
    return (request) => {
      if (request.kind !== kind || left === 0) return undefined;
      left--;
      return {
        type: 'cut',
        side,
        at: (bodySize) => Math.floor(rand() * Math.max(1, Math.min(bodySize ?? size, size))),
        how: left % 2 ? 'reset' : 'close',
      };
    };
  };

  await run('node', [CLI, 'push', big, `${plain.host}/bench/pull:v1`, '--no-cache', '--plain-http'], env);
  const results = { pullClean: [], pullDrops: [], pushClean: [], pushDrops: [] };
  let applied = { pull: 0, push: 0 };
  for (let i = 0; i < RUNS; i++) {
    for (const faulty of [false, true]) {
      const proxy = await startFaultyProxy(plain.host, {
        plan: faulty ? drops('blob-get', 'response', 11 + i) : undefined,
      });
      try {
        const out = join(work.path, `pull-${i}-${faulty}.wasm`);
        const p = await run(
          'node',
          [CLI, 'pull', `${proxy.host}/bench/pull:v1`, '-o', out, '--no-cache', '--plain-http'],
          env,
        );
        (faulty ? results.pullDrops : results.pullClean).push(p.ms);
        if (faulty) applied.pull += proxy.faults().total;
        if ((await sha256File(out)) !== digest) throw new Error('the pulled module differs');
      } finally {
        await proxy.stop();
      }
      const pushProxy = await startFaultyProxy(plain.host, {
        plan: faulty ? drops('upload-patch', 'request', 23 + i) : undefined,
      });
      try {
        const p = await run(
          'node',
          [
            CLI,
            'push',
            big,
            `${pushProxy.host}/bench/push${i}${faulty ? 'x' : ''}:v1`,
            '--no-cache',
            '--plain-http',
          ],
          env,
        );
        (faulty ? results.pushDrops : results.pushClean).push(p.ms);
        if (faulty) applied.push += pushProxy.faults().total;
      } finally {
        await pushProxy.stop();
      }
    }
  }
  const ratio = (a, b) => `${(median(a) / median(b)).toFixed(2)}x`;
  rows.push([`pull ${SIZE_MIB} MiB via proxy`, 'no drops', fmt(median(results.pullClean)), '']);
  rows.push([
    `pull ${SIZE_MIB} MiB via proxy`,
    `${DROPS} drops`,
    fmt(median(results.pullDrops)),
    `${ratio(results.pullDrops, results.pullClean)} of no drops (${applied.pull / RUNS} drops applied per run, resumed with Range)`,
  ]);
  rows.push([`push ${SIZE_MIB} MiB via proxy`, 'no drops', fmt(median(results.pushClean)), '']);
  rows.push([
    `push ${SIZE_MIB} MiB via proxy`,
    `${DROPS} drops`,
    fmt(median(results.pushDrops)),
    `${ratio(results.pushDrops, results.pushClean)} of no drops (${applied.push / RUNS} drops applied per run; Distribution restarts the upload)`,
  ]);

  // TLS: ours against curl, both verifying the registry's certificate.
  const curlPush = [];
  const curlPull = [];
  const oursPush = [];
  const oursPull = [];
  const base = `https://${tls.host}`;
  for (let i = 0; i < RUNS; i++) {
    let t0 = process.hrtime.bigint();
    const head = (
      await run('curl', [
        '-s',
        '--cacert',
        ca.certPath,
        '-D',
        '-',
        '-o',
        join(work.path, 'post.txt'),
        '-X',
        'POST',
        `${base}/v2/curl${i}/blobs/uploads/`,
      ])
    ).stdout;
    const location = new URL(/^location: (\S+)/im.exec(head)?.[1], base);
    location.searchParams.set('digest', digest);
    await run('curl', [
      '-sf',
      '--cacert',
      ca.certPath,
      '-H',
      'Content-Type: application/octet-stream',
      '-T',
      big,
      '-X',
      'PUT',
      location.href,
    ]);
    curlPush.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const p = await run(
      'node',
      [CLI, 'push', big, `${tls.host}/ours${i}:v1`, '--no-cache', '--ca-file', ca.certPath],
      env,
    );
    oursPush.push(p.ms);
    t0 = process.hrtime.bigint();
    await run('curl', [
      '-sf',
      '--cacert',
      ca.certPath,
      '-o',
      join(work.path, 'curl.out'),
      `${base}/v2/curl${i}/blobs/${digest}`,
    ]);
    curlPull.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const out = join(work.path, 'ours.out');
    const q = await run(
      'node',
      [CLI, 'pull', `${tls.host}/ours${i}:v1`, '-o', out, '--no-cache', '--ca-file', ca.certPath],
      env,
    );
    oursPull.push(q.ms);
  }
  rows.push([`push ${SIZE_MIB} MiB over TLS`, 'curl POST+PUT', fmt(median(curlPush)), '']);
  rows.push([
    `push ${SIZE_MIB} MiB over TLS`,
    'wasm-to-oci',
    fmt(median(oursPush)),
    `${ratio(oursPush, curlPush)} of curl`,
  ]);
  rows.push([`pull ${SIZE_MIB} MiB over TLS`, 'curl GET', fmt(median(curlPull)), '(no verification)']);
  rows.push([
    `pull ${SIZE_MIB} MiB over TLS`,
    'wasm-to-oci',
    fmt(median(oursPull)),
    `${ratio(oursPull, curlPull)} of curl (verified)`,
  ]);

  console.log('');
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows)
    console.log(`${r[0].padEnd(widths[0])}  ${r[1].padEnd(widths[1])}  ${r[2].padStart(widths[2])}  ${r[3]}`);
} finally {
  await plain.stop();
  await tls.stop();
  await work.remove();
}
