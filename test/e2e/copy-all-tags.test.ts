import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { parseManifest } from '../../src/oci/manifest.js';
import { push } from '../../src/ops/push.js';
import { getManifest, listTags, resolveReference } from '../../src/ops/repository.js';
import { openRepository } from '../../src/ops/target.js';
import { parseReference } from '../../src/reference.js';
import { registryCertificates } from '../harness/certs.js';
import { CLI, runCli } from '../harness/cli.js';
import { type FaultyProxy, startFaultyProxy } from '../harness/fault-proxy.js';
import { cliEnv, tempDir, writeLargeWasm } from '../harness/fixtures.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';
import { startTokenProxy } from '../harness/token-proxy.js';

// copy --all-tags on the built CLI against the real Distribution registry, plain HTTP and TLS: 20 tags
// (tiny modules, two medium ones, tags sharing a manifest) copied between two registries 15 times,
// a rerun that sends nothing, tag selection, a reset on one tag's blob, tokens and connections
// counted, layouts on either side, usage errors before any request, and --recursive.

const TAGS = [
  ...Array.from({ length: 10 }, (_, i) => `v1.${i}`),
  ...Array.from({ length: 5 }, (_, i) => `v2.${i}`),
  'v2.0-rc1',
  'v2.0-rc2',
  'v2.0-rc3',
  'latest',
  'stable',
].sort();
/** Tags pushed with the module of another tag (so several tags share a manifest). */
const SAME_AS: Record<string, string> = { latest: 'v2.4', stable: 'v2.4' };
const MEDIUM = new Set(['v1.5', 'v2.2']);
const MEDIUM_BYTES = 3 * 1024 * 1024 + 17;

let work: Awaited<ReturnType<typeof tempDir>>;
let caPem: string;
let caFile: string;
const registries: Record<'plain' | 'tls', { a?: RegistryServer; b?: RegistryServer }> = {
  plain: {},
  tls: {},
};
/** Per source host: tag -> manifest descriptor. */
const seeded = new Map<string, Map<string, Descriptor>>();
/** Bytes of every distinct blob of the source repository. */
let blobBytes = 0;
const moduleFile = (tag: string) => join(work.path, `${SAME_AS[tag] ?? tag}.wasm`);

const env = () => cliEnv(work.path, caFile);
const cli = (args: string[]) => runCli(args, { env: env(), cwd: work.path, timeoutMs: 120_000 });
const connect = { ca: [] as string[] };
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface AllTagsJson {
  source: string;
  destination: string;
  tags: Array<{
    tag: string;
    manifest: { mediaType: string; digest: string; size: number };
    bytesSent: number;
    skipped: boolean;
    referrers?: number;
  }>;
  bytesSent: number;
  failed: Array<{ tag: string; error: { code: string; message: string } }>;
}

async function copyJson(args: string[], code = 0): Promise<AllTagsJson> {
  const res = await cli(['copy', '--all-tags', ...args, '--json']);
  assert.equal(res.code, code, res.stderr);
  return JSON.parse(res.stdout) as AllTagsJson;
}

/** Pushes the 20 tags to `host/src` (each module once, the shared tags after it). */
async function seed(host: string): Promise<Map<string, Descriptor>> {
  const digests = new Map<string, Descriptor>();
  for (const tag of TAGS) {
    const pushed = await push({ ...connect, file: moduleFile(tag), reference: `${host}/src:${tag}` });
    digests.set(tag, pushed.manifest);
  }
  return digests;
}

/** Every tag of `reference` resolves to the digest the source has under it. */
async function assertSameDigests(reference: string, expected: Map<string, Descriptor>, tags = TAGS) {
  const layout = reference.startsWith('oci:');
  assert.deepEqual((await listTags({ ...connect, reference })).sort(), [...tags].sort(), reference);
  for (const tag of tags) {
    const desc = await resolveReference({ ...connect, reference: `${reference}:${tag}`, ociLayout: layout });
    assert.equal(desc.digest, expected.get(tag)?.digest, `${reference}:${tag}`);
  }
}

before(async () => {
  work = await tempDir();
  const certs = await registryCertificates(work.path);
  ({ caPem, caFile } = certs);
  connect.ca = [caPem];
  const { tls } = certs;
  [registries.plain.a, registries.plain.b, registries.tls.a, registries.tls.b] = await Promise.all([
    startRegistry(),
    startRegistry(),
    startRegistry({ tls }),
    startRegistry({ tls }),
  ]);
  for (const tag of TAGS) {
    if (SAME_AS[tag]) continue;
    const path = moduleFile(tag);
    if (MEDIUM.has(tag)) await writeLargeWasm(path, MEDIUM_BYTES);
    else {
      // A core-module preamble and a custom section naming the tag: a distinct module of ~120 bytes.
      const name = Buffer.from(`tag-${tag}`.padEnd(100, '.'));
      const body = Buffer.concat([Buffer.from([name.length]), name, Buffer.from('payload')]);
      await writeFile(
        path,
        Buffer.concat([Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0, body.length]), body]),
      );
    }
  }
  for (const side of ['plain', 'tls'] as const) {
    const host = registries[side].a?.host as string;
    seeded.set(host, await seed(host));
  }
  // The bytes a first copy must send: each distinct blob once (modules and the shared config).
  const blobs = new Map<string, number>();
  for (const desc of seeded.get(registries.plain.a?.host as string)?.values() ?? []) {
    const { bytes } = await getManifest({ reference: `${registries.plain.a?.host}/src@${desc.digest}` });
    const parsed = parseManifest(bytes, desc.mediaType);
    assert.equal(parsed.kind, 'manifest');
    if (parsed.kind !== 'manifest') continue;
    for (const d of [parsed.manifest.config, ...parsed.manifest.layers]) blobs.set(d.digest, d.size);
  }
  blobBytes = [...blobs.values()].reduce((a, b) => a + b, 0);
  assert.ok(blobBytes > 2 * MEDIUM_BYTES);
});
after(async () => {
  for (const side of Object.values(registries)) {
    await side.a?.stop();
    await side.b?.stop();
  }
  await work?.remove();
});

describe('copy --all-tags', () => {
  for (const scheme of ['plain', 'tls'] as const) {
    it(`copies 20 tags between registries with the source's digests, 15 times; a rerun sends nothing (${scheme})`, async () => {
      const a = registries[scheme].a?.host as string;
      const b = registries[scheme].b?.host as string;
      const expected = seeded.get(a) as Map<string, Descriptor>;
      for (let run = 0; run < 15; run++) {
        const destination = `${b}/dst/run${run}`;
        const first = await copyJson([`${a}/src`, destination]);
        assert.equal(first.source, `${a}/src`);
        assert.equal(first.destination, destination);
        assert.deepEqual(first.failed, []);
        assert.deepEqual(
          first.tags.map((t) => [t.tag, t.manifest.digest, t.skipped]),
          TAGS.map((t) => [t, expected.get(t)?.digest, false]),
          'every tag, sorted',
        );
        assert.equal(first.bytesSent, blobBytes, 'each distinct blob sent once, shared ones too');
        assert.equal(
          first.tags.reduce((sum, t) => sum + t.bytesSent, 0),
          first.bytesSent,
        );
        await assertSameDigests(destination, expected);
        const again = await cli(['copy', '--all-tags', `${a}/src`, destination]);
        assert.equal(again.code, 0, again.stderr);
        const lines = again.stdout.trimEnd().split('\n');
        assert.deepEqual(lines.slice(0, -1).sort(), TAGS.map((t) => `Skipped ${t} (up to date)`).sort());
        assert.equal(
          lines.at(-1),
          `20 tags from ${a}/src to ${destination}: 0 copied, 20 skipped, 0 failed; 0 bytes sent`,
        );
        assert.equal(again.stderr, '');
      }
    });
  }

  it('prints a line per tag copied and a summary', async () => {
    const { a, b } = registries.plain;
    const res = await cli(['copy', '--all-tags', `${a?.host}/src`, `${b?.host}/dst/human`]);
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 21);
    const expected = seeded.get(a?.host as string) as Map<string, Descriptor>;
    for (const tag of TAGS) {
      const line = lines.find((l) => l.startsWith(`Copied ${tag} `));
      assert.match(
        line ?? '',
        new RegExp(`^Copied ${tag.replace(/\./g, '\\.')} ${expected.get(tag)?.digest} \\(\\d+ bytes\\)$`),
      );
    }
    assert.equal(
      lines.at(-1),
      `20 tags from ${a?.host}/src to ${b?.host}/dst/human: 20 copied, 0 skipped, 0 failed; ${blobBytes} bytes sent`,
    );
  });

  it('--include and --exclude select exactly the tags they name', async () => {
    const { a, b } = registries.plain;
    const expected = seeded.get(a?.host as string) as Map<string, Descriptor>;
    const cases: Array<[string[], string[]]> = [
      [['--include', 'v1.*'], TAGS.filter((t) => t.startsWith('v1.'))],
      [['--exclude', '*-rc*'], TAGS.filter((t) => !t.includes('-rc'))],
      [
        ['--include', 'v1.[0-4]', '--include', 'latest', '--include', 'v2.?-rc?', '--exclude', '*rc2'],
        ['latest', 'v1.0', 'v1.1', 'v1.2', 'v1.3', 'v1.4', 'v2.0-rc1', 'v2.0-rc3'],
      ],
      [['--include', 'v9*'], []],
    ];
    for (const [i, [flags, want]] of cases.entries()) {
      const destination = `${b?.host}/dst/select${i}`;
      const result = await copyJson([`${a?.host}/src`, destination, ...flags]);
      assert.deepEqual(
        result.tags.map((t) => t.tag),
        want,
        flags.join(' '),
      );
      if (want.length === 0) {
        const tags = await cli(['tags', destination]);
        assert.equal(tags.code, 1, 'nothing was written: the repository does not exist');
      } else await assertSameDigests(destination, expected, want);
    }
  });

  it('a reset on one tag’s blob fails that tag, copies the others, exits 1; a rerun completes', async () => {
    const { a, b } = registries.plain;
    const expected = seeded.get(a?.host as string) as Map<string, Descriptor>;
    const { bytes } = await getManifest({ reference: `${a?.host}/src:v1.3` });
    const parsed = parseManifest(bytes);
    assert.equal(parsed.kind, 'manifest');
    const layer = parsed.kind === 'manifest' ? (parsed.manifest.layers[0] as Descriptor) : undefined;
    let proxy: FaultyProxy | undefined;
    try {
      proxy = await startFaultyProxy(a?.host as string, {
        // Every download of v1.3's module is reset right after the head, the retries too.
        plan: (req) =>
          req.kind === 'blob-get' && req.path.endsWith(`/${layer?.digest}`)
            ? { type: 'cut', side: 'response', at: 0, how: 'reset' }
            : undefined,
      });
      const destination = `${b?.host}/dst/fault`;
      const res = await cli(['copy', '--all-tags', `${proxy.host}/src`, destination]);
      assert.equal(res.code, 1, res.stderr);
      const lines = res.stdout.trimEnd().split('\n');
      assert.match(lines.find((l) => l.startsWith('Failed ')) ?? '', /^Failed v1\.3: .+/);
      assert.equal(lines.filter((l) => l.startsWith('Copied ')).length, 19);
      assert.match(lines.at(-1) ?? '', /: 19 copied, 0 skipped, 1 failed; \d+ bytes sent$/);
      assert.match(res.stderr, /^Error: 1 of 20 tags failed to copy\nHint: run the same copy again/);
      assert.ok((proxy.faults().byType.cut ?? 0) >= 2, 'the download was retried');
      const others = TAGS.filter((t) => t !== 'v1.3');
      await assertSameDigests(destination, expected, others);
      const rerun = await copyJson([`${proxy.host}/src`, destination], 1);
      assert.deepEqual(
        rerun.failed.map((f) => [f.tag, f.error.code]),
        [['v1.3', 'NETWORK']],
      );
      assert.ok(rerun.tags.every((t) => t.skipped));
      const done = await copyJson([`${a?.host}/src`, destination]);
      assert.deepEqual(done.failed, []);
      assert.deepEqual(
        done.tags.filter((t) => !t.skipped).map((t) => [t.tag, t.bytesSent]),
        [['v1.3', layer?.size]],
      );
      await assertSameDigests(destination, expected);
    } finally {
      await proxy?.stop();
    }
  });

  it('Ctrl-C ends the whole copy with 130: no tag is reported failed, the one under way is not tagged', async () => {
    const { a, b } = registries.plain;
    const { bytes } = await getManifest({ reference: `${a?.host}/src:v1.5` });
    const parsed = parseManifest(bytes);
    const layer = parsed.kind === 'manifest' ? (parsed.manifest.layers[0] as Descriptor) : undefined;
    // The medium module of v1.5 stalls after 64 KiB, until the client goes away.
    const proxy = await startFaultyProxy(a?.host as string, {
      plan: (req) =>
        req.kind === 'blob-get' && req.path.endsWith(`/${layer?.digest}`)
          ? { type: 'stall', side: 'response', at: 64 * 1024 }
          : undefined,
    });
    try {
      const destination = `${b?.host}/dst/interrupted`;
      const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          [CLI, 'copy', '--all-tags', `${proxy.host}/src`, destination, '-v'],
          {
            cwd: work.path,
            env: { ...process.env, ...env() },
          },
        );
        let stdout = '';
        let stderr = '';
        let sent = false;
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
        });
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (!sent && stderr.includes(`/blobs/${layer?.digest}`)) {
            sent = true;
            setTimeout(() => child.kill('SIGINT'), 300);
          }
        });
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
      assert.equal(result.code, 130, result.stderr.slice(-2000));
      assert.doesNotMatch(result.stdout, /^Failed /m, 'an interrupted tag is not a failed one');
      assert.doesNotMatch(result.stdout, /tags from/, 'no summary of a copy that did not finish');
      const tags = await listTags({ ...connect, reference: destination }).catch(() => [] as string[]);
      assert.ok(!tags.includes('v1.5'), 'the tag under way did not move');
    } finally {
      await proxy.stop();
    }
  });

  it('asks for each token once for all tags, and shares connections', async () => {
    const a = registries.plain.a as RegistryServer;
    const tokens = await startTokenProxy(a.host);
    try {
      // One client per side, each with a few kept-alive connections (the loopback scheme probe
      // included), however many tags: a client per tag would open two or more per tag.
      for (const [concurrency, bound] of [
        ['1', 8],
        ['3', 16],
      ] as const) {
        const counter = await startFaultyProxy(tokens.host);
        try {
          tokens.tokenRequests.length = 0;
          const destination = `${counter.host}/dst/tokens${concurrency}`;
          const args = [`${counter.host}/src`, destination, '--concurrency', concurrency];
          const result = await copyJson(args);
          assert.equal(result.tags.length, 20);
          assert.deepEqual(result.failed, []);
          assert.deepEqual(
            [...tokens.tokenRequests].sort(),
            [
              `repository:dst/tokens${concurrency}:pull,push`,
              `repository:dst/tokens${concurrency}:pull,push repository:src:pull`,
              'repository:src:pull',
            ],
            'one token per scope: the source, the destination, and the destination with the source to mount from',
          );
          const requests = counter.events.length;
          assert.ok(requests >= 60, `${requests} requests`);
          assert.ok(
            counter.connections() <= bound,
            `${counter.connections()} connections for ${requests} requests`,
          );
          tokens.tokenRequests.length = 0;
          const again = await copyJson(args);
          assert.ok(again.tags.every((t) => t.skipped));
          assert.deepEqual([...tokens.tokenRequests].sort(), [
            `repository:dst/tokens${concurrency}:pull,push`,
            'repository:src:pull',
          ]);
        } finally {
          await counter.stop();
        }
      }
    } finally {
      await tokens.stop();
    }
  });

  for (const scheme of ['plain', 'tls'] as const) {
    it(`registry to layout and layout to registry (${scheme})`, async () => {
      const a = registries[scheme].a?.host as string;
      const b = registries[scheme].b?.host as string;
      const expected = seeded.get(a) as Map<string, Descriptor>;
      const layout = `oci:${join(work.path, `layout-${scheme}`)}`;
      const down = await copyJson([`${a}/src`, layout]);
      assert.equal(down.bytesSent, blobBytes);
      await assertSameDigests(layout, expected);
      const again = await copyJson([`${a}/src`, layout]);
      assert.equal(again.bytesSent, 0);
      assert.ok(again.tags.every((t) => t.skipped));
      const up = await copyJson([layout, `${b}/from-layout`, '--exclude', 'v2.*']);
      assert.equal(up.source, layout);
      const want = TAGS.filter((t) => !t.startsWith('v2.'));
      assert.deepEqual(up.tags.map((t) => t.tag).sort(), want);
      await assertSameDigests(`${b}/from-layout`, expected, want);
    });
  }

  it('a tagged source, a destination with a tag or digest and a bad pattern are usage errors before any request', async () => {
    const proxy = await startFaultyProxy(registries.plain.a?.host as string);
    try {
      const h = proxy.host;
      const digest = seeded.get(registries.plain.a?.host as string)?.get('v1.0')?.digest;
      for (const [args, message] of [
        [[`${h}/src:v1.0`, `${h}/dst/x`], /copying every tag needs a source repository, not a tag or digest/],
        [[`${h}/src@${digest}`, `${h}/dst/x`], /needs a source repository/],
        [[`${h}/src`, `${h}/dst/x:v1`], /needs a destination repository/],
        [[`${h}/src`, `oci:${join(work.path, 'l')}:v1`], /needs a destination repository/],
        [
          [`${h}/src`, `${h}/dst/x`, '--include', 'v[1'],
          /pattern "v\[1" of --include has a \[ without its \]/,
        ],
        [[`${h}/src`, `${h}/dst/x`, '--exclude', '!v1'], /pattern "!v1" of --exclude starts with !/],
        [[`${h}/src`, `${h}/dst/x`, '--exclude', 'a b'], /which no tag can hold/],
      ] as Array<[string[], RegExp]>) {
        const res = await cli(['copy', '--all-tags', ...args]);
        assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
        assert.match(res.stderr, message);
        assert.match(res.stderr, /\nHint: /);
      }
      const stray = await cli(['copy', `${h}/src:v1.0`, `${h}/dst/x`, '--include', 'v1*']);
      assert.equal(stray.code, 2);
      assert.match(stray.stderr, /--include selects tags of --all-tags/);
      assert.equal(proxy.connections(), 0, 'nothing reached the registry');
    } finally {
      await proxy.stop();
    }
  });

  it('--recursive copies each tag’s referrers (listed by the tag schema), and a rerun skips them', async () => {
    const a = registries.plain.a?.host as string;
    const b = registries.plain.b?.host as string;
    for (const tag of ['v1', 'v2']) {
      await push({
        ...connect,
        file: moduleFile(`v1.${tag === 'v1' ? 0 : 1}`),
        reference: `${a}/signed:${tag}`,
      });
    }
    const subject = await resolveReference({ reference: `${a}/signed:v1` });
    // A signature of v1, listed by an index under sha256-<hex> of v1's digest.
    const repo = openRepository(parseReference(`${a}/signed`), 'push');
    const schemaTag = `sha256-${subject.digest.slice(7)}`;
    let signature: Descriptor;
    try {
      const empty = Buffer.from('{}');
      const emptyDesc = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha(empty), size: 2 };
      await repo.push(emptyDesc, empty);
      const blob = Buffer.from('a signature of v1');
      const layer = { mediaType: 'application/octet-stream', digest: sha(blob), size: blob.length };
      await repo.push(layer, blob);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          artifactType: 'application/vnd.example.signature',
          config: emptyDesc,
          layers: [layer],
          subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
        }),
      );
      signature = {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: sha(manifest),
        size: manifest.length,
      };
      await repo.push(signature, manifest);
      const index = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [signature],
        }),
      );
      await repo.pushReference(
        { mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha(index), size: index.length },
        index,
        schemaTag,
      );
    } finally {
      repo.client.close();
    }
    // The schema tag itself is excluded: it comes only as v1's referrer.
    const args = [`${a}/signed`, `${b}/signed`, '-r', '--exclude', 'sha256-*'];
    const first = await copyJson(args);
    assert.deepEqual(
      first.tags.map((t) => [t.tag, t.referrers, t.skipped]),
      [
        ['v1', 1, false],
        ['v2', 0, false],
      ],
    );
    // The destination lists the signature in an index of its own (kept by its push, with the
    // referrer's artifactType), not necessarily the source's bytes.
    const { bytes } = await getManifest({ reference: `${b}/signed:${schemaTag}` });
    const listed = (JSON.parse(bytes.toString()) as { manifests: Descriptor[] }).manifests;
    assert.deepEqual(
      listed.map((m) => [m.digest, m.artifactType]),
      [[signature.digest, 'application/vnd.example.signature']],
    );
    assert.equal(
      (await resolveReference({ reference: `${b}/signed@${signature.digest}` })).digest,
      signature.digest,
    );
    const again = await copyJson(args);
    assert.deepEqual(
      again.tags.map((t) => [t.tag, t.referrers, t.skipped, t.bytesSent]),
      [
        ['v1', 1, true, 0],
        ['v2', 0, true, 0],
      ],
    );
  });
});
