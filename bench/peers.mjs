#!/usr/bin/env node
// Side-by-side benchmark for the performance issue: this CLI beside every peer that is installed (the
// original Go wasm-to-oci, crane, regctl, skopeo, curl speaking the raw protocol), on one loopback
// Distribution registry, runs alternating between the tools in each round. Prints medians, ratios and
// the targets, met or not. Run with `npm run bench:peers`; `-- --build-peers` first builds the Go peers
// with ../shared/peers/ (Debian packages only).
//
// Work measured, each from process start to exit:
//  - push and pull (to a file) of a 1.6 MB module built from this project's own sources (a custom
//    section holding the bundled CLI's text);
//  - push and pull of a BENCH_SIZE_MIB (default 256) module, with peak RSS (GNU time);
//  - `--version` and `node -e 0`.
// Environment: BENCH_RUNS (default 5), BENCH_SIZE_MIB (256), PEERS (default /tmp/peers), PEERS_SRC
// (default ../shared/peers beside the project), BENCH_KEEP_ENV=1 (keeps NODE_EXTRA_CA_CERTS).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CLI,
  median,
  RUNS,
  root,
  run,
  SIZE_MIB,
  startRegistry,
  TIME,
  tempDir,
  writeLargeWasm,
} from './lib.mjs';

const PEERS = process.env.PEERS ?? '/tmp/peers';
// This machine's environment sets NODE_EXTRA_CA_CERTS to the system bundle; node then parses it at every
// start (the Go tools never read it). It is the machine's cost, not ours: unset unless asked to keep it.
const extraCa = process.env.BENCH_KEEP_ENV ? undefined : process.env.NODE_EXTRA_CA_CERTS;
if (extraCa) delete process.env.NODE_EXTRA_CA_CERTS;
const PEERS_SRC = process.env.PEERS_SRC ?? join(root, '..', 'shared', 'peers');
const SMALL_BYTES = 1_600_000;

if (process.argv.includes('--build-peers')) {
  for (const peer of ['original', 'crane', 'regctl']) {
    const script = join(PEERS_SRC, `build-${peer}.sh`);
    if (!existsSync(script)) {
      console.log(`cannot build ${peer}: ${script} is missing`);
      continue;
    }
    const res = spawnSync('bash', [script], { env: { ...process.env, OUT: PEERS }, stdio: 'inherit' });
    if (res.status !== 0) console.log(`building ${peer} failed (exit ${res.status})`);
  }
}

const which = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const peer = (name) => (existsSync(join(PEERS, name)) ? join(PEERS, name) : undefined);
const GO = peer('wasm-to-oci-go');
const CRANE = peer('crane');
const REGCTL = peer('regctl');
const SKOPEO = which('skopeo') ? 'skopeo' : undefined;
const CURL = which('curl') ? 'curl' : undefined;
const missing = [
  !GO && `original Go wasm-to-oci (${PEERS}/wasm-to-oci-go)`,
  !CRANE && `crane (${PEERS}/crane)`,
  !REGCTL && `regctl (${PEERS}/regctl)`,
  !SKOPEO && 'skopeo',
  !CURL && 'curl',
].filter(Boolean);

/** A valid module of `size` bytes: the wasm preamble and one custom section of the bundled CLI's text. */
async function writeSourceModule(path, size) {
  const dist = join(root, 'dist', 'cli');
  const text = Buffer.concat(
    readdirSync(dist)
      .filter((f) => f.endsWith('.cjs'))
      .sort()
      .map((f) => readFileSync(join(dist, f))),
  );
  const name = Buffer.from('wasm-to-oci.sources');
  const leb = (n) => {
    const out = [];
    do {
      let byte = n & 0x7f;
      n >>>= 7;
      if (n) byte |= 0x80;
      out.push(byte);
    } while (n);
    return Buffer.from(out);
  };
  // Preamble 8 + id 1 + size LEB (3 bytes at this size) + name length 1 + name, then the payload.
  const payloadLength = size - 8 - 1 - 3 - 1 - name.length;
  const payload = Buffer.alloc(payloadLength);
  for (let at = 0; at < payloadLength; at += text.length)
    text.copy(payload, at, 0, Math.min(text.length, payloadLength - at));
  const body = Buffer.concat([leb(name.length), name, payload]);
  const sizeLeb = leb(body.length);
  if (sizeLeb.length !== 3) throw new Error('module size out of range for the 3-byte section size');
  await writeFile(
    path,
    Buffer.concat([Buffer.from('\0asm\x01\0\0\0', 'latin1'), Buffer.from([0]), sizeLeb, body]),
  );
}

const sha256 = (bytes) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

const registry = await startRegistry();
const work = await tempDir();
const host = registry.host;
const home = join(work.path, 'home');
await mkdir(home, { recursive: true });
// Every tool gets a private HOME and cache; nothing outside the temporary directory is touched.
const env = { HOME: home, XDG_CACHE_HOME: join(work.path, 'cache'), DOCKER_CONFIG: join(home, '.docker') };
let seq = 0;
const fresh = (tool) => `bench/${tool}-${seq++}`;

/** Runs steps in order; total wall time and the largest peak RSS among them. */
async function steps(list) {
  let ms = 0;
  let rss = 0;
  for (const [cmd, args] of list) {
    const r = await run(cmd, args, env);
    ms += r.ms;
    rss = Math.max(rss, r.rssKiB ?? 0);
  }
  return { ms, rssKiB: rss || undefined };
}

// The body goes to a file of the bench's own directory, never to a system path.
const curlHead = (args) =>
  spawnSync('curl', ['-s', '-D', '-', '-o', join(work.path, 'curl-body'), ...args]).stdout.toString();
const locationOf = (headers) => new URL(/^location: (\S+)/im.exec(headers)?.[1], `http://${host}`);

/** curl, the raw protocol with every digest known: POST + PUT per blob, PUT of the manifest (timed by hand). */
async function curlPush(module, repo) {
  const t0 = process.hrtime.bigint();
  let rss = 0;
  for (const blob of [module.configPath, module.path]) {
    const put = locationOf(curlHead(['-X', 'POST', `http://${host}/v2/${repo}/blobs/uploads/`]));
    put.searchParams.set('digest', blob === module.path ? module.digest : module.configDigest);
    const r = await run(
      'curl',
      ['-sf', '-X', 'PUT', '-H', 'Content-Type: application/octet-stream', '-T', blob, put.href],
      env,
    );
    rss = Math.max(rss, r.rssKiB ?? 0);
  }
  await run(
    'curl',
    [
      '-sf',
      '-X',
      'PUT',
      '-H',
      'Content-Type: application/vnd.oci.image.manifest.v1+json',
      '--data-binary',
      `@${module.manifestPath}`,
      `http://${host}/v2/${repo}/manifests/v1`,
    ],
    env,
  );
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, rssKiB: rss || undefined };
}

/** The module, an OCI layout of it (for crane and skopeo, written by this CLI) and its manifest. */
async function prepare(name, size) {
  const dir = join(work.path, name);
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${name}.wasm`);
  if (size === SMALL_BYTES) await writeSourceModule(path, size);
  else await writeLargeWasm(path, size);
  const layout = join(dir, 'layout');
  await run(process.execPath, [CLI, 'push', path, `oci:${layout}:v1`], env);
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const manifestDigest = index.manifests[0].digest;
  const manifestPath = join(layout, 'blobs', 'sha256', manifestDigest.slice(7));
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const configPath = join(dir, 'config.json');
  await writeFile(configPath, '{}');
  const module = {
    path,
    layout,
    manifestPath,
    digest: manifest.layers[0].digest,
    configPath,
    configDigest: sha256('{}'),
  };
  // Something to pull: the same artifact in one repository for every tool.
  const pullRepo = `bench/${name}-pull`;
  await run(process.execPath, [CLI, 'push', path, `${host}/${pullRepo}:v1`], env);
  const regctlRepo = `bench/${name}-pull-regctl`;
  if (REGCTL)
    await run(
      REGCTL,
      [...regctlHost(), 'artifact', 'put', ...regctlPutArgs(path), `${host}/${regctlRepo}:v1`],
      env,
    );
  return { ...module, pullRepo, regctlRepo };
}

const regctlHost = () => ['--host', `reg=${host},tls=disabled`];
const regctlPutArgs = (path) => [
  '--config-type',
  'application/vnd.wasm.config.v1+json',
  '-m',
  'application/vnd.wasm.content.layer.v1+wasm',
  '-f',
  path,
];

function pushTools(module, { skopeo = true } = {}) {
  const tools = [
    [
      'this CLI',
      () =>
        steps([[process.execPath, [CLI, 'push', module.path, `${host}/${fresh('ours')}:v1`, '--no-cache']]]),
    ],
  ];
  if (GO)
    tools.push(['original (Go)', () => steps([[GO, ['push', module.path, `${host}/${fresh('go')}:v1`]]])]);
  if (CRANE)
    tools.push(['crane', () => steps([[CRANE, ['push', module.layout, `${host}/${fresh('crane')}:v1`]]])]);
  if (REGCTL)
    tools.push([
      'regctl',
      () =>
        steps([
          [
            REGCTL,
            [
              ...regctlHost(),
              'artifact',
              'put',
              ...regctlPutArgs(module.path),
              `${host}/${fresh('regctl')}:v1`,
            ],
          ],
        ]),
    ]);
  if (CURL) tools.push(['curl', () => curlPush(module, fresh('curl'))]);
  if (SKOPEO && skopeo)
    tools.push([
      'skopeo',
      async () => {
        const args = ['copy', '--dest-tls-verify=false', `oci:${module.layout}:v1`];
        const r = await run(SKOPEO, [...args, `docker://${host}/${fresh('skopeo')}:v1`], env);
        return { ms: r.ms, rssKiB: r.rssKiB };
      },
    ]);
  return tools;
}

function pullTools(module) {
  const out = (tool) => join(work.path, 'out', `${tool}-${seq++}.wasm`);
  const ref = `${host}/${module.pullRepo}:v1`;
  const tools = [
    ['this CLI', () => steps([[process.execPath, [CLI, 'pull', ref, '--no-cache', '-o', out('ours')]]])],
  ];
  if (GO) tools.push(['original (Go)', () => steps([[GO, ['pull', ref, '--out', out('go')]]])]);
  if (CRANE) {
    // crane has no pull of a wasm artifact to a file: the blob, its digest known (the manifest is not fetched).
    tools.push([
      'crane',
      () =>
        steps([
          ['sh', ['-c', `"${CRANE}" blob "${host}/${module.pullRepo}@${module.digest}" > "${out('crane')}"`]],
        ]),
    ]);
  }
  if (REGCTL)
    tools.push([
      'regctl',
      () =>
        steps([
          [
            'sh',
            [
              '-c',
              `"${REGCTL}" --host reg=${host},tls=disabled artifact get "${host}/${module.regctlRepo}:v1" > "${out('regctl')}"`,
            ],
          ],
        ]),
    ]);
  if (CURL)
    tools.push([
      'curl',
      () =>
        steps([
          ['curl', ['-sf', '-o', out('curl'), `http://${host}/v2/${module.pullRepo}/blobs/${module.digest}`]],
        ]),
    ]);
  if (SKOPEO)
    tools.push([
      'skopeo',
      () =>
        steps([
          [
            SKOPEO,
            [
              'copy',
              '-q',
              '--src-tls-verify=false',
              `docker://${ref}`,
              `oci:${join(work.path, 'out', `skopeo-${seq++}`)}:v1`,
            ],
          ],
        ]),
    ]);
  return tools;
}

/** Runs each tool RUNS times, rotating the order every round; medians and peak RSS per tool. */
async function measure(tools) {
  const results = new Map(tools.map(([name]) => [name, { ms: [], rss: 0, error: undefined }]));
  for (let round = 0; round < RUNS; round++) {
    const order = tools.map((_, i) => tools[(i + round) % tools.length]);
    for (const [name, fn] of order) {
      const entry = results.get(name);
      if (entry.error) continue;
      spawnSync('sync');
      try {
        const r = await fn();
        entry.ms.push(r.ms);
        entry.rss = Math.max(entry.rss, r.rssKiB ?? 0);
      } catch (err) {
        entry.error = String(err.message ?? err)
          .split('\n')[0]
          .slice(0, 160);
      }
    }
  }
  return new Map(
    [...results].map(([name, e]) => [
      name,
      { ms: e.ms.length ? median(e.ms) : undefined, rssMiB: e.rss / 1024, error: e.error },
    ]),
  );
}

const rows = [];
const failures = [];
try {
  await mkdir(join(work.path, 'out'), { recursive: true });
  console.log(
    `registry ${host} (Distribution, plain HTTP on loopback); ${RUNS} runs each, alternating; medians`,
  );
  if (extraCa) {
    console.log(
      `NODE_EXTRA_CA_CERTS (${extraCa}) is unset for the runs: it costs every node start, node -e 0 included, about 100 ms here (BENCH_KEEP_ENV=1 keeps it)`,
    );
  }
  if (missing.length)
    console.log(`missing peers (not measured): ${missing.join(', ')}; --build-peers builds the Go ones`);

  const node = await measure([
    ['node -e 0', () => steps([[process.execPath, ['-e', '0']]])],
    ['this CLI', () => steps([[process.execPath, [CLI, '--version']]])],
  ]);
  const nodeMs = node.get('node -e 0').ms;
  rows.push({ work: '`--version` (node -e 0 beside it)', results: node, rss: false });

  const small = await prepare('small', SMALL_BYTES);
  rows.push({ work: 'push of a 1.6 MB module', results: await measure(pushTools(small)), rss: false });
  rows.push({ work: 'pull of it to a file', results: await measure(pullTools(small)), rss: false });
  const big = await prepare('big', SIZE_MIB * 1024 * 1024);
  // skopeo's blob-info cache (as root: /var/lib/containers/cache) remembers where it pushed a blob and
  // mounts it from there in the next round, silently: its large push would move no data after round one.
  console.log('skopeo is left out of the large push: it mounts the blob it pushed in an earlier round');
  rows.push({
    work: `push ${SIZE_MIB} MiB`,
    results: await measure(pushTools(big, { skopeo: false })),
    rss: true,
  });
  rows.push({ work: `pull ${SIZE_MIB} MiB to a file`, results: await measure(pullTools(big)), rss: true });

  // The table: one column per tool, each figure with its ratio to this CLI's.
  const names = ['this CLI', 'original (Go)', 'crane', 'regctl', 'curl', 'skopeo', 'node -e 0'];
  const used = names.filter((n) => rows.some((r) => r.results.has(n)));
  console.log(`\n| work | ${used.join(' | ')} |`);
  console.log(`|---|${used.map(() => '---').join('|')}|`);
  for (const row of rows) {
    const ours = row.results.get('this CLI')?.ms;
    const cells = used.map((name) => {
      const r = row.results.get(name);
      if (!r) return '–';
      if (r.error) return `failed: ${r.error}`;
      const ratio = name === 'this CLI' || !ours ? '' : ` (ours ${(ours / r.ms).toFixed(2)}x)`;
      const rss = row.rss && r.rssMiB ? `, ${r.rssMiB.toFixed(0)} MiB` : '';
      return `${r.ms.toFixed(0)} ms${rss}${ratio}`;
    });
    console.log(`| ${row.work} | ${cells.join(' | ')} |`);
  }

  // The targets of the performance issue.
  const get = (i, name) => rows[i].results.get(name);
  const check = (ok, text) => {
    console.log(`${ok ? 'met    ' : 'NOT met'}  ${text}`);
    if (!ok) failures.push(text);
  };
  console.log('\ntargets');
  const version = get(0, 'this CLI').ms;
  check(
    version <= nodeMs * 1.15,
    `--version ${version.toFixed(0)} ms <= 1.15x node -e 0 (${nodeMs.toFixed(0)} ms): ${(version / nodeMs).toFixed(2)}x`,
  );
  for (const [i, what] of [
    [1, 'push 1.6 MB'],
    [2, 'pull 1.6 MB'],
  ]) {
    const ours = get(i, 'this CLI').ms;
    const go = get(i, 'original (Go)')?.ms;
    if (go === undefined) console.log(`  ?      ${what}: the original Go tool is not installed`);
    else
      check(
        ours - nodeMs <= go,
        `${what}: ours minus node -e 0 = ${(ours - nodeMs).toFixed(0)} ms <= the Go tool's ${go.toFixed(0)} ms`,
      );
  }
  const crane = get(3, 'crane')?.ms;
  if (crane !== undefined)
    check(
      get(3, 'this CLI').ms <= crane,
      `push ${SIZE_MIB} MiB <= 1.0x crane: ${(get(3, 'this CLI').ms / crane).toFixed(2)}x`,
    );
  const curl = get(4, 'curl')?.ms;
  if (curl !== undefined)
    check(
      get(4, 'this CLI').ms <= curl * 1.5,
      `pull ${SIZE_MIB} MiB (verified) <= 1.5x curl's unverified GET: ${(get(4, 'this CLI').ms / curl).toFixed(2)}x`,
    );
  const rss = Math.max(get(3, 'this CLI').rssMiB, get(4, 'this CLI').rssMiB);
  if (TIME) check(rss <= 64, `peak RSS ${rss.toFixed(0)} MiB <= 64 MiB`);
} finally {
  await registry.stop();
  await work.remove();
}
if (failures.length) console.log(`\n${failures.length} target(s) not met`);
