#!/usr/bin/env node
// Benchmarks for issue 2, printed as figures (not a timed test). Run with `npm run bench`.
//
// On one local Distribution registry, in one run:
//  - push and pull of a 256 MiB wasm file: wall time (median of N) against a raw-protocol curl baseline
//    (POST + PUT of the same file; GET to a file) and skopeo where installed; peak RSS of our process;
//  - re-push of an unchanged module: blob bytes uploaded;
//  - push of a 1.6 MB module end to end (process start to exit), `--version` start-up and `node -e 0`.
//
// Environment: BENCH_SIZE_MIB (default 256), BENCH_RUNS (default 5).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CLI,
  fmt,
  median,
  RUNS,
  run,
  SIZE_MIB,
  startRegistry,
  TIME,
  tempDir,
  writeLargeWasm,
  writeSkopeoPolicy,
} from './lib.mjs';

async function sha256File(path) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

const registry = await startRegistry();
const work = await tempDir();
const rows = [];
try {
  const host = registry.host;
  const big = join(work.path, 'big.wasm');
  await writeLargeWasm(big, SIZE_MIB * 1024 * 1024);
  const digest = await sha256File(big);
  const env = { XDG_CACHE_HOME: join(work.path, 'cache') };
  console.log(
    `registry ${host}; module ${SIZE_MIB} MiB; ${RUNS} runs each; peak RSS via ${TIME ?? '(GNU time missing)'}`,
  );

  // curl baselines: POST + PUT (digest known in advance); the same single-pass protocol wasm-to-oci uses
  // when the digest is not known yet (POST, streamed PATCH, PUT ?digest=); GET to a file.
  const curlOut = (args) =>
    spawnSync('curl', ['-s', '-D', '-', '-o', join(work.path, 'curl-body'), ...args]).stdout.toString();
  const location = (headers) => new URL(/^location: (\S+)/im.exec(headers)?.[1], `http://${host}`);
  // -T streams the file; --data-binary would first read all of it into memory.
  const upload = ['-H', 'Content-Type: application/octet-stream', '-T', big];
  // The runs are interleaved (curl, single-pass curl, wasm-to-oci in each round) and `sync` flushes
  // what the registry wrote before each timed step, so page-cache writeback of one tool's upload does
  // not land on the next tool's clock.
  const settle = () => spawnSync('sync');
  const curlPush = [];
  const curlPatch = [];
  const curlPull = [];
  const oursPush = [];
  const oursPull = [];
  const pushRss = [];
  const pullRss = [];
  for (let i = 0; i < RUNS; i++) {
    settle();
    let t0 = process.hrtime.bigint();
    const put = location(curlOut(['-X', 'POST', `http://${host}/v2/curl${i}/blobs/uploads/`]));
    put.searchParams.set('digest', digest);
    await run('curl', ['-sf', '-X', 'PUT', ...upload, put.href]);
    curlPush.push(Number(process.hrtime.bigint() - t0) / 1e6);

    settle();
    t0 = process.hrtime.bigint();
    const patch = location(curlOut(['-X', 'POST', `http://${host}/v2/curlpatch${i}/blobs/uploads/`]));
    const commit = location(curlOut(['-X', 'PATCH', ...upload, patch.href]));
    commit.searchParams.set('digest', digest);
    await run('curl', ['-sf', '-X', 'PUT', commit.href]);
    curlPatch.push(Number(process.hrtime.bigint() - t0) / 1e6);

    // wasm-to-oci: each push goes to a fresh repository with --no-cache, so every run uploads.
    settle();
    const p = await run('node', [CLI, 'push', big, `${host}/ours${i}:v1`, '--no-cache'], env);
    oursPush.push(p.ms);
    pushRss.push(p.rssKiB);

    settle();
    const get = await run('curl', [
      '-sf',
      '-o',
      join(work.path, 'curl.out'),
      `http://${host}/v2/curl${i}/blobs/${digest}`,
    ]);
    curlPull.push(get.ms);

    settle();
    const out = join(work.path, 'ours.out');
    const q = await run('node', [CLI, 'pull', `${host}/ours${i}:v1`, '--out', out, '--no-cache'], env);
    oursPull.push(q.ms);
    pullRss.push(q.rssKiB);
    if ((await stat(out)).size !== SIZE_MIB * 1024 * 1024) throw new Error('pulled file has the wrong size');
  }

  // skopeo, where installed: layout -> registry, registry -> layout.
  let skopeoPush;
  let skopeoPull;
  if (spawnSync('skopeo', ['--version']).status === 0) {
    const policy = await writeSkopeoPolicy(work.path);
    const layout = join(work.path, 'layout');
    await mkdir(join(layout, 'blobs/sha256'), { recursive: true });
    await link(big, join(layout, 'blobs/sha256', digest.slice(7)));
    const config = Buffer.from('{}');
    const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
    await writeFile(join(layout, 'blobs/sha256', configDigest.slice(7)), config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        config: { mediaType: 'application/vnd.wasm.config.v1+json', digest: configDigest, size: 2 },
        layers: [
          { mediaType: 'application/vnd.wasm.content.layer.v1+wasm', digest, size: SIZE_MIB * 1024 * 1024 },
        ],
      }),
    );
    const manifestDigest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
    await writeFile(join(layout, 'blobs/sha256', manifestDigest.slice(7)), manifest);
    await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(
      join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: manifestDigest,
            size: manifest.length,
            annotations: { 'org.opencontainers.image.ref.name': 'v1' },
          },
        ],
      }),
    );
    skopeoPush = [];
    skopeoPull = [];
    for (let i = 0; i < RUNS; i++) {
      // skopeo remembers where blobs live and would mount them instead of uploading: forget that first.
      for (const cache of [
        '/var/lib/containers/cache',
        join(process.env.HOME ?? '/root', '.local/share/containers/cache'),
      ]) {
        await rm(join(cache, 'blob-info-cache-v1.boltdb'), { force: true });
      }
      settle();
      const p = await run('skopeo', [
        '--policy',
        policy,
        'copy',
        '-q',
        '--dest-tls-verify=false',
        `oci:${layout}:v1`,
        `docker://${host}/skopeo${i}:v1`,
      ]);
      skopeoPush.push(p.ms);
      const dest = join(work.path, `skopeo-out-${i}`);
      settle();
      const q = await run('skopeo', [
        '--policy',
        policy,
        'copy',
        '-q',
        '--src-tls-verify=false',
        `docker://${host}/skopeo${i}:v1`,
        `oci:${dest}:v1`,
      ]);
      skopeoPull.push(q.ms);
      await rm(dest, { recursive: true, force: true });
    }
  }

  // Re-push of an unchanged module: the first push fills the digest cache, the second uploads nothing.
  await run('node', [CLI, 'push', big, `${host}/repush:v1`, '--json'], env);
  const again = await run('node', [CLI, 'push', big, `${host}/repush:v2`, '--json'], env);
  const repushBytes = JSON.parse(again.stdout).bytesSent;

  // A 1.6 MB module end to end, and start-up.
  const small = join(work.path, 'small.wasm');
  await writeLargeWasm(small, 1624962);
  const smallPush = [];
  const version = [];
  const bare = [];
  for (let i = 0; i < Math.max(RUNS, 9); i++) {
    smallPush.push((await run('node', [CLI, 'push', small, `${host}/small${i}:v1`, '--no-cache'], env)).ms);
    version.push((await run('node', [CLI, '--version'])).ms);
    bare.push((await run('node', ['-e', '0'])).ms);
  }

  const ratio = (a, b) => `${(median(a) / median(b)).toFixed(2)}x`;
  const mib = (kib) => (kib === undefined ? 'n/a' : `${(kib / 1024).toFixed(1)} MiB`);
  rows.push([`push ${SIZE_MIB} MiB`, 'curl POST+PUT', fmt(median(curlPush)), '']);
  rows.push([
    `push ${SIZE_MIB} MiB`,
    'curl POST+PATCH+PUT',
    fmt(median(curlPatch)),
    `${ratio(curlPatch, curlPush)} of curl (the registry's cost of a single-pass upload)`,
  ]);
  rows.push([
    `push ${SIZE_MIB} MiB`,
    'wasm-to-oci',
    fmt(median(oursPush)),
    `${ratio(oursPush, curlPush)} of curl, ${ratio(oursPush, curlPatch)} of curl single-pass; peak RSS ${mib(Math.max(...pushRss))}`,
  ]);
  if (skopeoPush)
    rows.push([
      `push ${SIZE_MIB} MiB`,
      'skopeo copy',
      fmt(median(skopeoPush)),
      `${ratio(skopeoPush, curlPush)} of curl`,
    ]);
  rows.push([`pull ${SIZE_MIB} MiB`, 'curl GET', fmt(median(curlPull)), '']);
  rows.push([
    `pull ${SIZE_MIB} MiB`,
    'wasm-to-oci',
    fmt(median(oursPull)),
    `${ratio(oursPull, curlPull)} of curl; peak RSS ${mib(Math.max(...pullRss))}`,
  ]);
  if (skopeoPull)
    rows.push([
      `pull ${SIZE_MIB} MiB`,
      'skopeo copy',
      fmt(median(skopeoPull)),
      `${ratio(skopeoPull, curlPull)} of curl`,
    ]);
  rows.push(['re-push unchanged', 'wasm-to-oci', `${repushBytes} blob bytes uploaded`, '']);
  rows.push(['push 1.6 MB, process start to exit', 'wasm-to-oci', fmt(median(smallPush)), '']);
  rows.push(['start-up', 'wasm-to-oci --version', fmt(median(version)), '']);
  rows.push(['start-up', 'node -e 0', fmt(median(bare)), '']);
  console.log('');
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows)
    console.log(`${r[0].padEnd(widths[0])}  ${r[1].padEnd(widths[1])}  ${r[2].padStart(widths[2])}  ${r[3]}`);
  console.log(
    `\nraw medians (ms): ${JSON.stringify({ curlPush: median(curlPush), oursPush: median(oursPush), curlPull: median(curlPull), oursPull: median(oursPull) })}`,
  );
} finally {
  await registry.stop();
  await work.remove();
}
