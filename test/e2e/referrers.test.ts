import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type * as http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { openRepository } from '../../src/ops/target.js';
import { parseReference } from '../../src/reference.js';
import { registryCertificates } from '../harness/certs.js';
import { runCli } from '../harness/cli.js';
import { cliEnv, HELLO_WASM, tempDir } from '../harness/fixtures.js';
import { type QuirkProxy, startQuirkProxy } from '../harness/quirk-proxy.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

// discover against the real Distribution registry (no referrers API: the sha256-<hex> tag schema),
// over plain HTTP and TLS, and against a referrers API served by a proxy in front of it (paged with
// Link, filtered by artifactType), with hostile pages.

const SBOM = 'application/vnd.example.sbom.v1';
const SIG = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const EMPTY = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  digest: `sha256:${createHash('sha256').update('{}').digest('hex')}`,
  size: 2,
};

let work: Awaited<ReturnType<typeof tempDir>>;
let plain: RegistryServer;
let tls: RegistryServer;
let caPem: string;
let caFile: string;

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const env = () => cliEnv(work.path, caFile);

interface Seeded {
  subject: Descriptor;
  sboms: Descriptor[];
  signature: Descriptor;
  /** Every referrer of a digest, as the API would list it. */
  referrersOf: Map<string, Descriptor[]>;
}

/**
 * Pushes hello.wasm and, with the library, two SBOMs and a signature that refer to it and a signature
 * of the first SBOM, each listed by the tag schema (an index under `sha256-<hex>` of its subject).
 */
async function seed(host: string, repo: string): Promise<Seeded> {
  const pushed = await runCli(['push', HELLO_WASM, `${host}/${repo}:v1`], { env: env() });
  assert.equal(pushed.code, 0, pushed.stderr);
  const resolved = await runCli(['resolve', `${host}/${repo}:v1`, '--json'], { env: env() });
  assert.equal(resolved.code, 0, resolved.stderr);
  const { manifest } = JSON.parse(resolved.stdout) as { manifest: Descriptor };
  const subject: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size };
  const target = openRepository(parseReference(`${host}/${repo}`), 'push', { ca: [caPem] });
  const referrersOf = new Map<string, Descriptor[]>();
  try {
    await target.push(EMPTY, Buffer.from('{}'));
    const refer = async (to: Descriptor, artifactType: string, text: string): Promise<Descriptor> => {
      const blob = Buffer.from(text);
      const layer = { mediaType: 'application/octet-stream', digest: sha(blob), size: blob.length };
      await target.push(layer, blob);
      const bytes = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          artifactType,
          config: EMPTY,
          layers: [layer],
          subject: to,
          annotations: { 'org.example.note': text },
        }),
      );
      const desc: Descriptor = {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: sha(bytes),
        size: bytes.length,
        artifactType,
        annotations: { 'org.example.note': text },
      };
      await target.push(desc, bytes);
      const list = [...(referrersOf.get(to.digest) ?? []), desc];
      referrersOf.set(to.digest, list);
      const index = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: list,
        }),
      );
      const indexDesc = {
        mediaType: 'application/vnd.oci.image.index.v1+json',
        digest: sha(index),
        size: index.length,
      };
      await target.pushReference(indexDesc, index, `sha256-${to.digest.slice(7)}`);
      return desc;
    };
    const sbom1 = await refer(subject, SBOM, 'sbom one');
    const sbom2 = await refer(subject, SBOM, 'sbom two');
    const signature = await refer(subject, SIG, 'signature');
    await refer(sbom1, SIG, 'signature of sbom one');
    return { subject, sboms: [sbom1, sbom2], signature, referrersOf };
  } finally {
    target.client.close();
  }
}

before(async () => {
  work = await tempDir();
  const certs = await registryCertificates(work.path);
  ({ caPem, caFile } = certs);
  plain = await startRegistry();
  tls = await startRegistry({ tls: certs.tls });
});
after(async () => {
  await plain?.stop();
  await tls?.stop();
  await work?.remove();
});

interface Tree {
  reference: string;
  via: string;
  referrers: Array<{
    manifest: Descriptor;
    referrers: Tree['referrers'];
  }>;
}

async function discover(args: string[]): Promise<Tree> {
  const res = await runCli(['discover', ...args, '--json'], { env: env() });
  assert.equal(res.code, 0, res.stderr);
  return JSON.parse(res.stdout) as Tree;
}

describe('discover', () => {
  for (const scheme of ['plain HTTP', 'TLS'] as const) {
    it(`lists referrers through the tag schema as a tree, 15 times (${scheme})`, async () => {
      const host = scheme === 'TLS' ? tls.host : plain.host;
      const seeded = await seed(host, `refs/${scheme === 'TLS' ? 'tls' : 'plain'}`);
      for (let run = 0; run < 15; run++) {
        const tree = await discover([`${host}/refs/${scheme === 'TLS' ? 'tls' : 'plain'}:v1`]);
        assert.equal(tree.via, 'tag-schema');
        assert.ok(tree.reference.endsWith(`@${seeded.subject.digest}`));
        assert.deepEqual(
          tree.referrers.map((r) => [r.manifest.digest, r.manifest.artifactType]),
          [...seeded.sboms.map((d) => [d.digest, SBOM]), [seeded.signature.digest, SIG]],
        );
        assert.equal(tree.referrers[0]?.manifest.annotations?.['org.example.note'], 'sbom one');
        assert.deepEqual(
          tree.referrers[0]?.referrers.map((r) => r.manifest.artifactType),
          [SIG],
          'the signature of the first SBOM, one level down',
        );
      }
    });
  }

  it('filters the first level by artifact type, stops at a depth, and draws a tree', async () => {
    const seeded = await seed(plain.host, 'refs/filter');
    const sigs = await discover([`${plain.host}/refs/filter:v1`, '--artifact-type', SIG]);
    assert.deepEqual(
      sigs.referrers.map((r) => r.manifest.digest),
      [seeded.signature.digest],
    );
    const one = await discover([`${plain.host}/refs/filter:v1`, '--depth', '1']);
    assert.equal(one.referrers.length, 3);
    assert.ok(one.referrers.every((r) => r.referrers.length === 0));
    const text = await runCli(['discover', `${plain.host}/refs/filter:v1`], { env: env() });
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', new RegExp(`@${seeded.subject.digest}$`));
    assert.match(lines[1] ?? '', new RegExp(`^├── ${seeded.sboms[0]?.digest} ${SBOM} \\(\\d+ bytes\\)$`));
    assert.match(
      lines[2] ?? '',
      new RegExp(`^│   └── sha256:[0-9a-f]{64} ${SIG.replaceAll('.', '\\.').replaceAll('+', '\\+')}`),
    );
    assert.match(lines.at(-1) ?? '', /^└── /);
    const bad = await runCli(['discover', `${plain.host}/refs/filter:v1`, '--depth', 'two'], { env: env() });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--depth takes a whole number from 0, not two/);
  });

  it('says so when nothing refers to a manifest, and does not take the subject for its own index', async () => {
    await seed(plain.host, 'refs/none');
    const layout = join(work.path, 'layout');
    assert.equal(
      (await runCli(['copy', `${plain.host}/refs/none:v1`, `oci:${layout}:v1`], { env: env() })).code,
      0,
    );
    const subject = (await discover([`oci:${layout}:v1`])).reference.split('@')[1] as string;
    // As GitLab does: the sha256-<hex> tag names the subject itself.
    const tagged = await runCli(['tag', `oci:${layout}:v1`, `sha256-${subject.slice(7)}`], { env: env() });
    assert.equal(tagged.code, 0, tagged.stderr);
    const tree = await discover([`oci:${layout}:v1`]);
    assert.deepEqual(tree.referrers, []);
    const text = await runCli(['discover', `oci:${layout}:v1`], { env: env() });
    assert.match(text.stdout, /\(no referrers\)\n$/);
  });
});

describe('discover through a referrers API', () => {
  let seeded: Seeded;
  let proxy: QuirkProxy;
  let mode: 'paged' | 'foreign' | 'loop' | 'html' = 'paged';
  const served: string[] = [];

  /** GET /v2/<name>/referrers/<digest>[?artifactType=][&page=n]: one entry a page, linked with Link. */
  const api = (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const match = /^\/v2\/(.+)\/referrers\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    if (!match || req.method !== 'GET') return false;
    served.push(url.pathname + url.search);
    if (mode === 'html') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>not here</html>');
      return true;
    }
    const type = url.searchParams.get('artifactType');
    const all = (seeded.referrersOf.get(match[2] as string) ?? []).filter(
      (d) => !type || d.artifactType === type,
    );
    const page = Number(url.searchParams.get('page') ?? 0);
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/vnd.oci.image.index.v1+json' };
    if (type) headers['oci-filters-applied'] = 'artifactType';
    const next = new URLSearchParams(url.searchParams);
    next.set('page', String(page + 1));
    if (mode === 'foreign') headers.link = `<http://127.0.0.2:1${url.pathname}?${next}>; rel="next"`;
    else if (mode === 'loop') headers.link = `<${url.pathname}${url.search}>; rel="next"`;
    else if (page + 1 < all.length) headers.link = `<${url.pathname}?${next}>; rel="next"`;
    res.writeHead(200, headers);
    res.end(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: all.slice(page, page + 1),
      }),
    );
    return true;
  };

  before(async () => {
    seeded = await seed(plain.host, 'refs/api');
    proxy = await startQuirkProxy(plain.host, { type: 'mutate', fn: api });
  });
  after(async () => {
    await proxy?.stop();
  });

  it('follows the pages, uses the registry filter, and reports the API as the source', async () => {
    mode = 'paged';
    served.length = 0;
    for (let run = 0; run < 15; run++) {
      const tree = await discover([`${proxy.host}/refs/api:v1`]);
      assert.equal(tree.via, 'api');
      assert.deepEqual(
        tree.referrers.map((r) => r.manifest.digest),
        [...seeded.sboms, seeded.signature].map((d) => d.digest),
      );
      assert.equal(tree.referrers[0]?.referrers[0]?.manifest.artifactType, SIG);
    }
    assert.ok(
      served.some((s) => s.includes('page=2')),
      'the third referrer came from the third page',
    );
    const filtered = await discover([`${proxy.host}/refs/api:v1`, '--artifact-type', SBOM]);
    assert.deepEqual(
      filtered.referrers.map((r) => r.manifest.digest),
      seeded.sboms.map((d) => d.digest),
    );
    assert.ok(served.some((s) => s.includes(`artifactType=${encodeURIComponent(SBOM)}`)));
  });

  it('refuses pages on another origin and pages in a loop with one line; an answer that is no index falls back', async () => {
    for (const [m, pattern] of [
      ['foreign', /another origin/],
      ['loop', /in a loop/],
    ] as const) {
      mode = m;
      const res = await runCli(['discover', `${proxy.host}/refs/api:v1`], { env: env() });
      assert.equal(res.code, 1, m);
      assert.match(res.stderr, pattern);
      assert.equal(res.stderr.trimEnd().split('\n').length <= 2, true, res.stderr);
      assert.doesNotMatch(res.stderr, /\n\s+at /);
    }
    mode = 'html';
    const tree = await discover([`${proxy.host}/refs/api:v1`]);
    assert.equal(tree.via, 'tag-schema');
    assert.equal(tree.referrers.length, 3);
  });
});
