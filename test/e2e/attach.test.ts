import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { referrersFromTagSchema } from '../../src/content/referrers.js';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { openRepository } from '../../src/ops/target.js';
import { parseReference } from '../../src/reference.js';
import { registryCertificates } from '../harness/certs.js';
import { runCli } from '../harness/cli.js';
import { cliEnv, HELLO_WASM, tempDir } from '../harness/fixtures.js';
import { type ReferrersApi, startReferrersApi } from '../harness/referrers-api.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

// attach, detach and copy -r against the real Distribution registry (no referrers API: the fallback
// index under sha256-<hex>, kept by the CLI), over plain HTTP and TLS, against a referrers API served
// by a proxy in front of it (OCI-Subject on push), and against Harbor's and GitLab's quirks.

const SBOM = 'application/vnd.example.sbom.v1+json';
const SIG = 'application/vnd.example.signature.v1';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let work: Awaited<ReturnType<typeof tempDir>>;
let plain: RegistryServer;
let second: RegistryServer;
let tls: RegistryServer;
let caPem: string;
let caFile: string;
let tiny: string;
let medium: string;
let mediumBytes: Buffer;

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const env = () => cliEnv(work.path, caFile);

async function cli(args: string[], expected = 0) {
  const res = await runCli(args, { env: env() });
  assert.equal(res.code, expected, `${args.join(' ')}\n${res.stderr}`);
  return res;
}

/** Pushes hello.wasm to `ref` (a tag) and returns the subject's descriptor. */
async function subject(ref: string, extra: string[] = []): Promise<Descriptor> {
  await cli(['push', HELLO_WASM, ref, ...extra]);
  const desc = (JSON.parse((await cli(['resolve', ref, '--json'])).stdout) as { manifest: Descriptor })
    .manifest;
  return { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
}

interface Attached {
  reference: string;
  subject: Descriptor;
  manifest: Descriptor;
  artifactType: string;
  layers: Descriptor[];
}

async function attach(ref: string, type: string, files: string[], extra: string[] = []): Promise<Attached> {
  const res = await cli(['attach', ref, '--artifact-type', type, ...files, ...extra, '--json']);
  return JSON.parse(res.stdout) as Attached;
}

interface Tree {
  reference: string;
  via: string;
  referrers: Array<{
    descriptor: Descriptor;
    artifactType?: string;
    annotations?: Record<string, string>;
    referrers: Tree['referrers'];
  }>;
}

/** discover --json (each referrer `{manifest, referrers}`), with each node's type and annotations at hand. */
async function discover(ref: string, extra: string[] = []): Promise<Tree> {
  interface Node {
    manifest: Descriptor;
    referrers: Node[];
  }
  const node = (n: Node): Tree['referrers'][number] => ({
    descriptor: n.manifest,
    ...(n.manifest.artifactType ? { artifactType: n.manifest.artifactType } : {}),
    ...(n.manifest.annotations ? { annotations: n.manifest.annotations } : {}),
    referrers: n.referrers.map(node),
  });
  const tree = JSON.parse((await cli(['discover', ref, ...extra, '--json'])).stdout) as {
    reference: string;
    via: string;
    referrers: Node[];
  };
  return { ...tree, referrers: tree.referrers.map(node) };
}

/** The entries of the fallback index under sha256-<hex> in a registry repository (read with the library). */
async function fallbackIndex(host: string, repo: string, of: Descriptor): Promise<Descriptor[]> {
  const target = openRepository(parseReference(`${host}/${repo}`), 'pull', { ca: [caPem] });
  try {
    return await referrersFromTagSchema(target, of);
  } finally {
    target.client.close();
  }
}

async function tags(ref: string): Promise<string[]> {
  return (JSON.parse((await cli(['tags', ref, '--json'])).stdout) as { tags: string[] }).tags;
}

before(async () => {
  work = await tempDir();
  const certs = await registryCertificates(work.path);
  ({ caPem, caFile } = certs);
  plain = await startRegistry();
  second = await startRegistry();
  tls = await startRegistry({ tls: certs.tls });
  tiny = join(work.path, 'sbom.json');
  await writeFile(tiny, '{"spdxVersion":"SPDX-2.3"}\n');
  medium = join(work.path, 'report.bin');
  mediumBytes = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < mediumBytes.length; i++) mediumBytes[i] = (i * 131 + (i >> 12)) & 0xff;
  await writeFile(medium, mediumBytes);
});
after(async () => {
  await plain?.stop();
  await second?.stop();
  await tls?.stop();
  await work?.remove();
});

describe('attach to a registry without the referrers API (the fallback index)', () => {
  for (const scheme of ['plain HTTP', 'TLS'] as const) {
    it(`attaches tiny and medium files 15 times, each listed with its artifactType and annotations (${scheme})`, async () => {
      const host = scheme === 'TLS' ? tls.host : plain.host;
      const repo = `attach/${scheme === 'TLS' ? 'tls' : 'plain'}`;
      const of = await subject(`${host}/${repo}:v1`);
      const attached: Attached[] = [];
      for (let run = 0; run < 15; run++) {
        const file = run % 2 === 0 ? tiny : medium;
        const type = run % 2 === 0 ? SBOM : SIG;
        const one = await attach(
          `${host}/${repo}:v1`,
          type,
          [`${file}:application/spdx+json`],
          ['-a', `org.example.run=${run}`],
        );
        assert.deepEqual(one.subject, of);
        assert.equal(one.artifactType, type);
        assert.equal(one.reference, `${host}/${repo}@${one.manifest.digest}`);
        assert.equal(one.layers.length, 1);
        assert.equal(one.layers[0]?.mediaType, 'application/spdx+json');
        assert.equal(one.layers[0]?.annotations?.['org.opencontainers.image.title'], file.split('/').pop());
        assert.equal(one.layers[0]?.digest, sha(run % 2 === 0 ? await readFile(tiny) : mediumBytes));
        attached.push(one);
        const index = await fallbackIndex(host, repo, of);
        assert.deepEqual(
          index.map((d) => d.digest),
          attached.map((a) => a.manifest.digest),
          `run ${run}: every attach so far is listed, in order`,
        );
        const entry = index[run] as Descriptor;
        assert.equal(entry.artifactType, type, 'artifactType copied into the index entry');
        assert.equal(entry.annotations?.['org.example.run'], String(run), 'annotations copied');
        assert.match(
          entry.annotations?.['org.opencontainers.image.created'] ?? '',
          /^\d{4}-\d\d-\d\dT[\d:]+Z$/,
        );
      }
      // The manifest as oras writes it: the empty config, the subject, the artifactType.
      const raw = JSON.parse(
        (await cli(['manifest', 'get', attached[0]?.reference as string])).stdout,
      ) as Record<string, unknown>;
      assert.equal(raw.mediaType, MANIFEST);
      assert.equal(raw.artifactType, SBOM);
      assert.deepEqual(raw.config, {
        mediaType: 'application/vnd.oci.empty.v1+json',
        digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
        size: 2,
      });
      assert.deepEqual(raw.subject, of);
      const tree = await discover(`${host}/${repo}:v1`, ['--artifact-type', SIG]);
      assert.equal(tree.via, 'tag-schema');
      assert.deepEqual(
        tree.referrers.map((r) => r.descriptor.digest),
        attached.filter((a) => a.artifactType === SIG).map((a) => a.manifest.digest),
      );
      const text = await cli(['attach', `${host}/${repo}:v1`, '--artifact-type', SBOM, tiny]);
      assert.match(
        text.stdout,
        new RegExp(`^Attached: ${host}/${repo}@sha256:[0-9a-f]{64}\nDigest: sha256:[0-9a-f]{64}\n$`),
      );
    });
  }

  for (const kind of ['plain HTTP', 'TLS', 'layout'] as const) {
    it(`keeps all 10 entries when 10 processes attach to one subject at once (${kind})`, async () => {
      const ref =
        kind === 'layout'
          ? `oci:${join(work.path, 'concurrent-layout')}:v1`
          : `${kind === 'TLS' ? tls.host : plain.host}/attach/concurrent:v1`;
      await subject(ref);
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          runCli(['attach', ref, '--artifact-type', SBOM, tiny, '-a', `org.example.writer=${i}`, '--json'], {
            env: env(),
            timeoutMs: 120_000,
          }),
        ),
      );
      for (const r of results) assert.equal(r.code, 0, r.stderr);
      const digests = results.map((r) => (JSON.parse(r.stdout) as Attached).manifest.digest);
      assert.equal(new Set(digests).size, 10, 'ten different referrers');
      const tree = await discover(ref);
      assert.deepEqual(tree.referrers.map((r) => r.descriptor.digest).sort(), [...digests].sort());
      assert.equal(tree.via, 'tag-schema');
      assert.ok(tree.referrers.every((r) => r.artifactType === SBOM));
    });
  }

  it('detaches a referrer (and manifest delete of one leaves the index too); refuses one of another subject', async () => {
    const ref = `${plain.host}/attach/detach:v1`;
    const of = await subject(ref);
    const one = await attach(ref, SBOM, [tiny]);
    const two = await attach(ref, SIG, [tiny]);
    const three = await attach(ref, SIG, [medium]);
    const detached = await cli(['detach', ref, one.manifest.digest]);
    assert.equal(
      detached.stdout,
      `Detached: ${one.manifest.digest}\nFrom: ${plain.host}/attach/detach@${of.digest}\n`,
    );
    assert.deepEqual(
      (await fallbackIndex(plain.host, 'attach/detach', of)).map((d) => d.digest),
      [two.manifest.digest, three.manifest.digest],
    );
    const gone = await cli(['manifest', 'get', one.reference], 1);
    assert.match(gone.stderr, /not found/);
    await cli(['manifest', 'delete', two.reference, '--force']);
    assert.deepEqual(
      (await discover(ref)).referrers.map((r) => r.descriptor.digest),
      [three.manifest.digest],
    );
    // A referrer of something else, and not a digest at all: one line each, nothing removed.
    const other = await subject(`${plain.host}/attach/detach:v2-other`, ['-a', 'org.example.other=1']);
    assert.notEqual(other.digest, of.digest);
    const wrong = await cli(['detach', `${plain.host}/attach/detach:v2-other`, three.manifest.digest], 2);
    assert.match(wrong.stderr, /^Error: sha256:[0-9a-f]{64} does not refer to /);
    const notDigest = await cli(['detach', ref, 'latest'], 1);
    assert.match(notDigest.stderr, /is not a digest/);
    assert.equal((await discover(ref)).referrers.length, 1);
    // Usage errors of attach.
    const noType = await cli(['attach', ref, tiny], 2);
    assert.match(noType.stderr, /attach needs --artifact-type/);
    const nothing = await cli(['attach', ref, '--artifact-type', SBOM], 2);
    assert.match(nothing.stderr, /nothing to attach/);
    const note = await attach(ref, 'application/vnd.example.note', [], ['-a', 'org.example.note=hi']);
    assert.deepEqual(note.layers, [
      {
        mediaType: 'application/vnd.oci.empty.v1+json',
        digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
        size: 2,
      },
    ]);
    await cli(['detach', ref, note.manifest.digest]);
    const missing = await cli(['attach', ref, '--artifact-type', SBOM, join(work.path, 'nope.json')], 1);
    assert.equal(missing.stderr.trimEnd().split('\n').length <= 2, true, missing.stderr);
    assert.doesNotMatch(missing.stderr, /\n\s+at /);
  });
});

describe('attach to a layout', () => {
  it('streams a file past 16 MiB from disk, lists it under the lock, and detaches it', async () => {
    const ref = `oci:${join(work.path, 'large-layout')}:v1`;
    await subject(ref);
    const large = join(work.path, 'large.bin');
    const bytes = Buffer.alloc(17 * 1024 * 1024 + 5);
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = i & 0xff;
    await writeFile(large, bytes);
    const one = await attach(ref, SBOM, [`${large}:application/vnd.example.blob`, tiny]);
    assert.deepEqual(
      one.layers.map((l) => [l.digest, l.size, l.annotations?.['org.opencontainers.image.title']]),
      [
        [sha(bytes), bytes.length, 'large.bin'],
        [sha(await readFile(tiny)), (await readFile(tiny)).length, 'sbom.json'],
      ],
    );
    const blob = join(work.path, 'large-out.bin');
    await cli(['blob', 'get', `${ref.slice(0, -3)}@${sha(bytes)}`, '-o', blob]);
    assert.ok((await readFile(blob)).equals(bytes));
    const two = await attach(ref, SIG, [tiny]);
    assert.deepEqual(
      (await discover(ref)).referrers.map((r) => r.descriptor.digest),
      [one.manifest.digest, two.manifest.digest],
    );
    await cli(['detach', ref, one.manifest.digest]);
    assert.deepEqual(
      (await discover(ref)).referrers.map((r) => r.descriptor.digest),
      [two.manifest.digest],
    );
    // Twice is an error: it no longer refers to anything listed, and says so in one line.
    const again = await runCli(['detach', ref, one.manifest.digest], { env: env() });
    assert.equal(again.code === 1 || again.code === 2, true, again.stderr);
    assert.ok(again.stderr.trimEnd().split('\n').length <= 2, again.stderr);
  });
});

/** Attaches a tree to `ref`: two SBOMs and a signature of the subject, a signature of the first SBOM. */
async function seedTree(ref: string): Promise<{ of: Descriptor; all: Attached[] }> {
  const of = await subject(ref);
  const sbom = await attach(ref, SBOM, [tiny]);
  const sbom2 = await attach(ref, SBOM, [medium]);
  const sig = await attach(ref, SIG, [tiny]);
  const sigOfSbom = await attach(sbom.reference, SIG, [tiny]);
  return { of, all: [sbom, sbom2, sig, sigOfSbom] };
}

function assertTree(tree: Tree, all: Attached[]): void {
  const [sbom, sbom2, sig, sigOfSbom] = all as [Attached, Attached, Attached, Attached];
  assert.deepEqual(
    tree.referrers.map((r) => [r.descriptor.digest, r.artifactType]).sort(),
    [
      [sbom.manifest.digest, SBOM],
      [sbom2.manifest.digest, SBOM],
      [sig.manifest.digest, SIG],
    ].sort(),
  );
  const first = tree.referrers.find((r) => r.descriptor.digest === sbom.manifest.digest);
  assert.deepEqual(
    first?.referrers.map((r) => r.descriptor.digest),
    [sigOfSbom.manifest.digest],
    'the signature of the SBOM, one level down',
  );
}

describe('copy -r', () => {
  for (const scheme of ['plain HTTP', 'TLS'] as const) {
    it(`copies referrers (and theirs) to a layout and to a second registry, where discover finds them (${scheme})`, async () => {
      const name = scheme === 'TLS' ? 'tls' : 'plain';
      const src = `${scheme === 'TLS' ? tls.host : plain.host}/copyr/src:v1`;
      const { all } = await seedTree(src);
      const layout = join(work.path, `copyr-layout-${name}`);
      const toLayout = await cli(['copy', '-r', src, `oci:${layout}:v1`, '--json']);
      assert.equal((JSON.parse(toLayout.stdout) as { referrers: number }).referrers, 4);
      assertTree(await discover(`oci:${layout}:v1`), all);
      const toRegistry = await cli(['copy', '-r', src, `${second.host}/copyr/${name}:v1`]);
      assert.match(toRegistry.stdout, /Referrers: 4\n/);
      const there = await discover(`${second.host}/copyr/${name}:v1`);
      assert.equal(there.via, 'tag-schema');
      assertTree(there, all);
      // And back from the layout to a third repository: the layout is a source like any other.
      await cli(['copy', '-r', `oci:${layout}:v1`, `${second.host}/copyr/${name}-back:v1`]);
      assertTree(await discover(`${second.host}/copyr/${name}-back:v1`), all);
      // Copied again: nothing doubles in the destination's index.
      await cli(['copy', '-r', src, `${second.host}/copyr/${name}:v1`]);
      assertTree(await discover(`${second.host}/copyr/${name}:v1`), all);
    });
  }

  it('does not move the tag when a referrer cannot be copied', async () => {
    const ref = `${plain.host}/copyr/broken:v1`;
    const { all } = await seedTree(ref);
    // The second SBOM's layer (the medium file, only it has) goes missing at the source: its copy fails.
    const gone = await fetch(`http://${plain.host}/v2/copyr/broken/blobs/${sha(mediumBytes)}`, {
      method: 'DELETE',
    });
    assert.equal(gone.status, 202);
    assert.equal(all.length, 4);
    const layout = join(work.path, 'broken-layout');
    const res = await cli(['copy', '-r', ref, `oci:${layout}:v1`], 1);
    assert.match(res.stderr, /^Error: /);
    const listed = await cli(['tags', `oci:${layout}`]);
    assert.doesNotMatch(listed.stdout, /^v1$/m, 'v1 was not written');
  });
});

describe('a registry with the referrers API (a proxy in front of Distribution)', () => {
  let api: ReferrersApi;
  before(async () => {
    api = await startReferrersApi(plain.host, { pageSize: 2 });
  });
  after(async () => {
    await api?.stop();
  });

  it('attaches through the API (no fallback index written), discover pages through it, detach and copy -r work', async () => {
    const ref = `${api.host}/api/src:v1`;
    const { of, all } = await seedTree(ref);
    assert.ok(api.acknowledged >= 4, 'the pushes were answered with OCI-Subject');
    const tree = await discover(ref);
    assert.equal(tree.via, 'api');
    assertTree(tree, all);
    assert.ok(
      api.listings.some((l) => l.includes('page=1')),
      'the third referrer came from the second page',
    );
    assert.ok(
      !(await tags(`${plain.host}/api/src`)).includes(`sha256-${of.digest.slice(7)}`),
      'no fallback index behind a registry that keeps referrers',
    );
    const sigs = await discover(ref, ['--artifact-type', SIG]);
    assert.deepEqual(
      sigs.referrers.map((r) => r.descriptor.digest),
      [(all[2] as Attached).manifest.digest],
    );
    // From the API to a registry without one: the destination gets a fallback index.
    await cli(['copy', '-r', ref, `${second.host}/api/copied:v1`]);
    const copied = await discover(`${second.host}/api/copied:v1`);
    assert.equal(copied.via, 'tag-schema');
    assertTree(copied, all);
    // From a registry without the API to one with it: referrers arrive, no fallback tag is written.
    await cli(['copy', '-r', `${second.host}/api/copied:v1`, `${api.host}/api/back:v1`]);
    const back = await discover(`${api.host}/api/back:v1`);
    assert.equal(back.via, 'api');
    assertTree(back, all);
    assert.ok(!(await tags(`${plain.host}/api/back`)).includes(`sha256-${of.digest.slice(7)}`));
    await cli(['detach', ref, (all[1] as Attached).manifest.digest]);
    assert.equal((await discover(ref, ['--depth', '1'])).referrers.length, 2);
  });

  it("Harbor: '{}' for a subject nothing refers to is an empty list, and attach works", async () => {
    const harbor = await startReferrersApi(plain.host, { mode: 'harbor' });
    try {
      const ref = `${harbor.host}/harbor/app:v1`;
      await subject(ref);
      const none = await discover(ref);
      assert.equal(none.via, 'api');
      assert.deepEqual(none.referrers, []);
      const one = await attach(ref, SBOM, [tiny]);
      const tree = await discover(ref);
      assert.deepEqual(
        tree.referrers.map((r) => r.descriptor.digest),
        [one.manifest.digest],
      );
    } finally {
      await harbor.stop();
    }
  });

  it('GitLab: a sha256-<hex> tag that resolves to the subject is not taken for its index', async () => {
    const gitlab = await startReferrersApi(plain.host, { mode: 'gitlab' });
    try {
      const ref = `${gitlab.host}/gitlab/app:v1`;
      const of = await subject(ref);
      // Through the proxy, the tag already "resolves" to the subject.
      const resolved = await cli(['resolve', `${gitlab.host}/gitlab/app:sha256-${of.digest.slice(7)}`]);
      assert.equal(resolved.stdout.trim(), of.digest);
      assert.deepEqual((await discover(ref)).referrers, []);
      const one = await attach(ref, SBOM, [tiny]);
      const two = await attach(ref, SIG, [tiny]);
      const tree = await discover(ref);
      assert.equal(tree.via, 'tag-schema');
      assert.deepEqual(
        tree.referrers.map((r) => [r.descriptor.digest, r.artifactType]),
        [
          [one.manifest.digest, SBOM],
          [two.manifest.digest, SIG],
        ],
      );
      const index = await fallbackIndex(plain.host, 'gitlab/app', of);
      assert.equal(index.length, 2);
      assert.ok(index.every((d) => d.mediaType === MANIFEST));
    } finally {
      await gitlab.stop();
    }
  });
});

describe('a hostile fallback index already in place', () => {
  it('is repaired or refused with one line: duplicates, a manifest, a Docker list, entries of another kind', async () => {
    const repo = 'hostile/app';
    const ref = `${plain.host}/${repo}:v1`;
    const of = await subject(ref);
    const target = openRepository(parseReference(`${plain.host}/${repo}`), 'push', { ca: [caPem] });
    const tag = `sha256-${of.digest.slice(7)}`;
    const put = async (mediaType: string, body: unknown) => {
      const bytes = Buffer.from(JSON.stringify(body));
      await target.pushReference({ mediaType, digest: sha(bytes), size: bytes.length }, bytes, tag);
    };
    try {
      const cases: Array<[string, () => Promise<void>, number]> = [
        [
          'duplicate entries',
          () =>
            put(INDEX, {
              schemaVersion: 2,
              mediaType: INDEX,
              manifests: [of, of, of],
            }),
          1,
        ],
        [
          'an image manifest under the tag',
          async () => {
            const empty = Buffer.from('{}');
            await target.push(
              { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha(empty), size: 2 },
              empty,
            );
            await put(MANIFEST, {
              schemaVersion: 2,
              mediaType: MANIFEST,
              config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha(empty), size: 2 },
              layers: [],
            });
          },
          0,
        ],
        [
          'a Docker manifest list',
          () =>
            put('application/vnd.docker.distribution.manifest.list.v2+json', {
              schemaVersion: 2,
              mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
              manifests: [of],
            }),
          1,
        ],
      ];
      for (const [name, install, kept] of cases) {
        await install();
        const res = await runCli(['attach', ref, '--artifact-type', SBOM, tiny, '--json'], { env: env() });
        assert.ok(res.code === 0 || res.code === 1, `${name}: ${res.stderr}`);
        assert.doesNotMatch(res.stderr, /\n\s+at |looks like a bug/, name);
        if (res.code === 1) {
          assert.ok(res.stderr.trimEnd().split('\n').length <= 2, `${name}: ${res.stderr}`);
          continue;
        }
        const ours = (JSON.parse(res.stdout) as Attached).manifest.digest;
        const index = await fallbackIndex(plain.host, repo, of);
        assert.equal(index.filter((d) => d.digest === ours).length, 1, `${name}: our entry, once`);
        assert.equal(index.length, kept + 1, `${name}: each earlier entry once`);
      }
    } finally {
      target.client.close();
    }
  });
});
