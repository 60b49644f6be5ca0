import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { CLI } from '../harness/cli.js';
import { HELLO_WASM, tempDir } from '../harness/fixtures.js';
import { hash32, Rng } from '../harness/fuzz.js';
import { type RecordingServer, startScriptedServer } from '../harness/hostile.js';

/**
 * An end-to-end fuzz of the built CLI: every command against a scripted registry that answers with
 * seeded random, plausible-to-garbage responses (statuses, headers, bodies, framing), and against
 * hostile OCI layouts on disk. Whatever arrives, each run must end on its own within its time limit
 * with exit code 0, 1 or 2, print no stack trace and no raw control characters, leave no partial or
 * temporary files, keep an existing output byte for byte on failure, and write nothing outside its
 * temporary directory.
 *
 * Everything random comes from mulberry32 with fixed seeds: a case is (seed, index), and the server's
 * answer to a request depends only on the case, the request line and how often that line was asked, so
 * a failure reproduces. Run one case alone, with its full output, with FUZZ_ONLY=<seed>:<index> (seed
 * in hex as printed), e.g. `FUZZ_ONLY=5eed0001:17 node scripts/run-tests.mjs e2e/fuzz`.
 */

const hex8 = (n: number) => n.toString(16).padStart(8, '0');

// ---------------------------------------------------------------------------------------------------
// Hostile values

const ESCAPES = [
  '\x1b[2J\x1b[H',
  '\x1b]8;;http://evil.example/\x07click me\x1b]8;;\x07',
  '\x1b]0;pwned\x07',
  '\x1b[31mred\x1b[0m',
  '\u202eevil\u202c',
  '\u009b31m',
  'nul\x00byte',
  'line\nbreak\r\nand\rreturn',
  '\x07\x08\x7f',
  '\ttab',
];

function hostileString(rng: Rng): string {
  return rng.weighted<() => string>([
    [5, () => rng.pick(ESCAPES)],
    [1, () => ''],
    [1, () => ' '],
    [1, () => '../../../../etc/passwd'],
    [1, () => '/etc/shadow'],
    [1, () => 'x'.repeat(rng.pick([300, 5000, 70_000]))],
    [1, () => '\ud800lone surrogate'],
    [1, () => 'C:\\Windows\\system32'],
    [1, () => `sha256:${'0'.repeat(64)}`],
    [1, () => '$(touch pwned)`id`${HOME}'],
    [1, () => '%00%2e%2e%2f'],
    [1, () => 'ünïcödé 🦀 日本'],
    [1, () => `${rng.pick(ESCAPES)}${'y'.repeat(rng.int(50))}${rng.pick(ESCAPES)}`],
  ])();
}

/** A JSON fragment spliced in verbatim (numbers and nesting JSON.stringify cannot write). */
class Raw {
  constructor(readonly text: string) {}
}

function rawFragment(rng: Rng): Raw {
  const n = rng.pick([600, 5000, 100_000]);
  return rng.weighted<() => Raw>([
    [2, () => new Raw(`${'['.repeat(n)}${']'.repeat(n)}`)],
    [2, () => new Raw(`${'{"a":'.repeat(n)}1${'}'.repeat(n)}`)],
    [1, () => new Raw('123456789012345678901234567890')],
    [1, () => new Raw('1e999')],
    [1, () => new Raw('-1e999')],
    [1, () => new Raw('9007199254740993')],
    [1, () => new Raw('1E400')],
    [1, () => new Raw('-0')],
    [1, () => new Raw('0.0000000000000000000000001')],
  ])();
}

function hostileValue(rng: Rng, depth = 0): unknown {
  return rng.weighted<() => unknown>([
    [1, () => null],
    [1, () => true],
    [1, () => 0],
    [1, () => -1],
    [1, () => 1.5],
    [1, () => 1e308],
    [1, () => Number.MAX_SAFE_INTEGER + 2],
    [5, () => hostileString(rng)],
    [1, () => []],
    [1, () => ({})],
    [depth < 3 ? 1 : 0, () => [hostileValue(rng, depth + 1)]],
    [depth < 3 ? 1 : 0, () => ({ [hostileString(rng).slice(0, 40)]: hostileValue(rng, depth + 1) })],
    [2, () => rawFragment(rng)],
  ])();
}

/** JSON text of a value that may hold Raw fragments. */
function serialize(value: unknown, indent?: number): string {
  const raws: string[] = [];
  const text = JSON.stringify(
    value,
    (_key, v: unknown) => {
      if (v instanceof Raw) {
        raws.push(v.text);
        return `@@raw${raws.length - 1}@@`;
      }
      return v;
    },
    indent,
  );
  return (text ?? 'null').replace(/"@@raw(\d+)@@"/g, (_m, i: string) => raws[Number(i)] ?? 'null');
}

/** One structural change to a parsed JSON value: a node replaced, removed, duplicated or retyped. */
function mutateJson(rng: Rng, root: unknown): unknown {
  const paths: Array<Array<string | number>> = [[]];
  const walk = (node: unknown, path: Array<string | number>) => {
    if (path.length > 6 || typeof node !== 'object' || node === null) return;
    for (const [k, v] of Object.entries(node)) {
      const key = Array.isArray(node) ? Number(k) : k;
      paths.push([...path, key]);
      walk(v, [...path, key]);
    }
  };
  walk(root, []);
  const path = rng.pick(paths);
  if (path.length === 0) return rng.bool(0.5) ? hostileValue(rng) : [root];
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let parent: Record<string | number, unknown> = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  const op = rng.int(6);
  const current = parent[last];
  if (op === 0 && !Array.isArray(parent)) delete parent[last];
  else if (op === 1 && Array.isArray(parent)) parent.push(structuredClone(current));
  else if (op === 2 && typeof current === 'number') parent[last] = String(current);
  else if (op === 3 && typeof current === 'string') parent[last] = rng.pick([0, -1, null, [current]]);
  else if (op === 4 && !Array.isArray(parent)) parent[hostileString(rng).slice(0, 60)] = hostileValue(rng);
  else parent[last] = hostileValue(rng);
  return copy;
}

// ---------------------------------------------------------------------------------------------------
// Artifacts: a world of manifests and blobs, honest or hostile but self-consistent (digests match)

const WASM8 = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
let HELLO = Buffer.alloc(0);

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  classicConfig: 'application/vnd.wasm.config.v1+json',
  classicLayer: 'application/vnd.wasm.content.layer.v1+wasm',
  cncfConfig: 'application/vnd.wasm.config.v0+json',
  cncfLayer: 'application/wasm',
};

function leb(n: number): Buffer {
  const out: number[] = [];
  let v = n >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return Buffer.from(out);
}

function wasmName(text: string): Buffer {
  const b = Buffer.from(text, 'utf8');
  return Buffer.concat([leb(b.length), b]);
}

/** Something between a valid module and garbage, for the module parser behind inspect. */
function wasmish(rng: Rng): Buffer {
  const header = rng.weighted<() => Buffer>([
    [6, () => WASM8],
    [2, () => Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00])],
    [1, () => WASM8.subarray(0, rng.int(8))],
    [1, () => Buffer.from([0x00, 0x61, 0x73, 0x6d, 0xff, 0xff, 0xff, 0xff])],
  ])();
  const parts = [header];
  const sections = rng.int(5);
  for (let i = 0; i < sections; i++) {
    const id = rng.weighted<() => number>([
      [3, () => 2],
      [3, () => 7],
      [1, () => 0],
      [1, () => 1],
      [1, () => rng.int(256)],
    ])();
    let content: Buffer;
    if (id === 2 || id === 7) {
      const count = rng.int(4);
      const entries: Buffer[] = [leb(rng.bool(0.1) ? 0xffffffff : count)];
      for (let e = 0; e < count; e++) {
        if (id === 2) entries.push(wasmName(hostileString(rng).slice(0, 200)));
        entries.push(wasmName(hostileString(rng).slice(0, 200)), Buffer.from([rng.int(5), rng.int(3)]));
      }
      content = Buffer.concat(entries);
    } else if (id === 0) {
      content = Buffer.concat([wasmName(hostileString(rng).slice(0, 100)), rng.bytes(rng.int(40))]);
    } else {
      content = rng.bytes(rng.int(60));
    }
    const size = rng.weighted<() => number>([
      [6, () => content.length],
      [1, () => content.length + 1 + rng.int(1000)],
      [1, () => 0xffffffff],
      [1, () => Math.max(0, content.length - 1)],
    ])();
    parts.push(Buffer.from([id]), leb(size), content);
  }
  if (rng.bool(0.1)) parts.push(rng.bytes(rng.int(30)));
  return Buffer.concat(parts);
}

/** A valid core module with a custom section of random bytes (unknown to any registry). */
function uniqueWasm(rng: Rng): Buffer {
  const payload = rng.bytes(8 + rng.int(2000));
  const section = Buffer.concat([wasmName('fuzz'), payload]);
  return Buffer.concat([WASM8, Buffer.from([0]), leb(section.length), section]);
}

interface Stored {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

interface World {
  repo: string;
  tag: string;
  /** tag -> manifest */
  tags: Map<string, Stored>;
  /** digest -> manifest */
  manifests: Map<string, Stored>;
  blobs: Map<string, Buffer>;
  /** The digest of the tag's target, and of the wasm layer. */
  top: string;
  layerDigest: string;
  layerTitle: string;
  /** Upload sessions of the honest registry. */
  uploads: Map<string, Buffer[]>;
  sessions: number;
}

function stored(bytes: Buffer, mediaType: string): Stored {
  return { bytes, mediaType, digest: sha256(bytes) };
}

/**
 * The artifact a case serves: the classic or the CNCF format, maybe behind an index, and with
 * `hostile` some field of it (annotations, sizes, digests, media types, config, the module itself)
 * replaced by something absurd, with every digest recomputed so verification alone does not stop it.
 */
function buildWorld(rng: Rng, hostile: boolean): World {
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, Stored>();
  const wasm = rng.weighted<() => Buffer>([
    [3, () => WASM8],
    [2, () => HELLO],
    [2, () => uniqueWasm(rng)],
    [hostile ? 3 : 0, () => wasmish(rng)],
    [hostile ? 1 : 0, () => rng.bytes(rng.int(64))],
  ])();
  blobs.set(sha256(wasm), wasm);
  const title = hostile && rng.bool(0.3) ? hostileString(rng) : 'module.wasm';
  const cncf = rng.bool(0.4);
  let config: Buffer;
  if (hostile && rng.bool(0.25)) {
    config = Buffer.from(
      rng.bool(0.3)
        ? rng.pick(['', '{', 'null', '[]', '"x"', '\x1b[2J'])
        : serialize(mutateJson(rng, { architecture: 'wasm', os: 'wasip1', x: hostileValue(rng) })),
    );
  } else {
    config = Buffer.from(
      cncf
        ? JSON.stringify({
            created: '2024-01-01T00:00:00Z',
            architecture: 'wasm',
            os: 'wasip1',
            layerDigests: [sha256(wasm)],
          })
        : '{}',
    );
  }
  blobs.set(sha256(config), config);
  const layer: Record<string, unknown> = {
    mediaType: cncf ? MT.cncfLayer : MT.classicLayer,
    digest: sha256(wasm),
    size: wasm.length,
    annotations: { 'org.opencontainers.image.title': title },
  };
  let manifest: unknown = {
    schemaVersion: 2,
    ...(cncf ? { mediaType: MT.ociManifest } : {}),
    config: {
      mediaType: cncf ? MT.cncfConfig : MT.classicConfig,
      digest: sha256(config),
      size: config.length,
    },
    layers: [layer],
    ...(cncf ? { annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' } } : {}),
  };
  if (hostile) {
    const edits = 1 + rng.int(3);
    for (let i = 0; i < edits; i++) {
      manifest = rng.weighted<() => unknown>([
        [4, () => mutateJson(rng, manifest)],
        [
          1,
          () => ({
            ...(manifest as object),
            annotations: { [hostileString(rng).slice(0, 80)]: hostileString(rng) },
          }),
        ],
        [1, () => ({ ...(manifest as object), layers: [layer, { ...layer }] })],
        [1, () => ({ ...(manifest as object), layers: [{ ...layer, size: hostileValue(rng) }] })],
        [1, () => ({ ...(manifest as object), layers: [{ ...layer, digest: hostileString(rng) }] })],
        [1, () => ({ ...(manifest as object), artifactType: hostileString(rng) })],
        [1, () => ({ ...(manifest as object), subject: hostileValue(rng) })],
      ])();
    }
  }
  const manifestMediaType =
    hostile && rng.bool(0.15) ? rng.pick([MT.dockerManifest, MT.ociIndex]) : MT.ociManifest;
  const m = stored(Buffer.from(serialize(manifest)), manifestMediaType);
  manifests.set(m.digest, m);
  let top = m;
  if (rng.bool(hostile ? 0.35 : 0.2)) {
    let index: unknown = {
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: [
        {
          mediaType: MT.ociManifest,
          digest: m.digest,
          size: m.bytes.length,
          platform: { architecture: 'wasm', os: 'wasip1' },
        },
      ],
    };
    if (hostile) index = mutateJson(rng, index);
    top = stored(Buffer.from(serialize(index)), MT.ociIndex);
    manifests.set(top.digest, top);
  }
  const tag = 'v1';
  return {
    repo: rng.pick(['fuzz/app', 'app', 'a/b/c']),
    tag,
    tags: new Map([[tag, top]]),
    manifests,
    blobs,
    top: top.digest,
    layerDigest: sha256(wasm),
    layerTitle: title,
    uploads: new Map(),
    sessions: 0,
  };
}

// ---------------------------------------------------------------------------------------------------
// The registry: honest answers, then seeded mutations of them

interface Answer {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
  /** For a HEAD: the length the GET would have. */
  headLength?: number;
  /** Written byte for byte instead of through node:http (invalid headers, lying lengths, framing). */
  raw?: boolean;
  statusLine?: string;
  /** Drop the connection before answering, or in the middle of the body. */
  drop?: 'now' | 'mid';
}

interface ServerContext {
  url: string;
  host: string;
  world: World;
  method: string;
  path: string;
}

const jsonAnswer = (status: number, value: unknown, headers: Record<string, string> = {}): Answer => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  body: Buffer.from(JSON.stringify(value)),
});

const errorAnswer = (status: number, code: string, message = code.toLowerCase()) =>
  jsonAnswer(status, { errors: [{ code, message }] });

function honestAnswer(
  world: World,
  method: string,
  url: URL,
  headers: IncomingMessage['headers'],
  body: Buffer,
): Answer {
  const path = url.pathname;
  if (path === '/v2/' || path === '/v2') {
    return jsonAnswer(200, {}, { 'docker-distribution-api-version': 'registry/2.0' });
  }
  if (path.startsWith('/token')) return jsonAnswer(200, { token: 'fuzz-token', expires_in: 300 });
  let m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/.exec(path);
  if (m) {
    const repo = m[1] as string;
    const id = m[2] as string;
    if (method === 'POST') {
      const mount = url.searchParams.get('mount');
      if (mount && world.blobs.has(mount)) {
        return {
          status: 201,
          headers: { location: `/v2/${repo}/blobs/${mount}`, 'docker-content-digest': mount },
          body: Buffer.alloc(0),
        };
      }
      const digest = url.searchParams.get('digest');
      if (digest && sha256(body) === digest) {
        world.blobs.set(digest, body);
        return {
          status: 201,
          headers: { location: `/v2/${repo}/blobs/${digest}`, 'docker-content-digest': digest },
          body: Buffer.alloc(0),
        };
      }
      const uuid = `session-${++world.sessions}`;
      world.uploads.set(uuid, []);
      return {
        status: 202,
        headers: { location: `/v2/${repo}/blobs/uploads/${uuid}`, range: '0-0', 'docker-upload-uuid': uuid },
        body: Buffer.alloc(0),
      };
    }
    const parts = world.uploads.get(id);
    if (!parts) return errorAnswer(404, 'BLOB_UPLOAD_UNKNOWN');
    if (method === 'PATCH') {
      parts.push(body);
      const held = parts.reduce((s, p) => s + p.length, 0);
      return {
        status: 202,
        headers: {
          location: `/v2/${repo}/blobs/uploads/${id}`,
          range: `0-${Math.max(0, held - 1)}`,
          'docker-upload-uuid': id,
        },
        body: Buffer.alloc(0),
      };
    }
    if (method === 'PUT') {
      const whole = Buffer.concat([...parts, body]);
      const digest = url.searchParams.get('digest') ?? '';
      world.uploads.delete(id);
      if (sha256(whole) !== digest) return errorAnswer(400, 'DIGEST_INVALID');
      world.blobs.set(digest, whole);
      return {
        status: 201,
        headers: { location: `/v2/${repo}/blobs/${digest}`, 'docker-content-digest': digest },
        body: Buffer.alloc(0),
      };
    }
    if (method === 'DELETE') return { status: 204, headers: {}, body: Buffer.alloc(0) };
    const held = parts.reduce((s, p) => s + p.length, 0);
    return {
      status: 204,
      headers: { range: `0-${Math.max(0, held - 1)}`, location: path },
      body: Buffer.alloc(0),
    };
  }
  m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
  if (m) {
    const repo = m[1] as string;
    const ref = decodeURIComponent(m[2] as string);
    if (method === 'PUT') {
      const s = stored(body, String(headers['content-type'] ?? MT.ociManifest));
      world.manifests.set(s.digest, s);
      if (!ref.includes(':')) world.tags.set(ref, s);
      return {
        status: 201,
        headers: { location: `/v2/${repo}/manifests/${s.digest}`, 'docker-content-digest': s.digest },
        body: Buffer.alloc(0),
      };
    }
    const s = world.tags.get(ref) ?? world.manifests.get(ref);
    if (method === 'DELETE') {
      if (!s) return errorAnswer(404, 'MANIFEST_UNKNOWN');
      world.manifests.delete(s.digest);
      for (const [t, v] of world.tags) if (v.digest === s.digest) world.tags.delete(t);
      return { status: 202, headers: {}, body: Buffer.alloc(0) };
    }
    if (!s) return errorAnswer(404, 'MANIFEST_UNKNOWN', 'manifest unknown');
    return {
      status: 200,
      headers: { 'content-type': s.mediaType, 'docker-content-digest': s.digest },
      body: method === 'HEAD' ? Buffer.alloc(0) : s.bytes,
      headLength: s.bytes.length,
    };
  }
  m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path);
  if (m) {
    const digest = decodeURIComponent(m[2] as string);
    const blob = world.blobs.get(digest);
    if (!blob) return errorAnswer(404, 'BLOB_UNKNOWN', 'blob unknown to registry');
    const range = /^bytes=(\d+)-$/.exec(String(headers.range ?? ''));
    const from = range ? Number(range[1]) : 0;
    if (range && from < blob.length) {
      return {
        status: 206,
        headers: {
          'content-type': 'application/octet-stream',
          'docker-content-digest': digest,
          'content-range': `bytes ${from}-${blob.length - 1}/${blob.length}`,
        },
        body: method === 'HEAD' ? Buffer.alloc(0) : blob.subarray(from),
        headLength: blob.length - from,
      };
    }
    return {
      status: 200,
      headers: { 'content-type': 'application/octet-stream', 'docker-content-digest': digest },
      body: method === 'HEAD' ? Buffer.alloc(0) : blob,
      headLength: blob.length,
    };
  }
  m = /^\/v2\/(.+)\/tags\/list$/.exec(path);
  if (m) return jsonAnswer(200, { name: m[1], tags: [...world.tags.keys()] });
  if (/^\/v2\/(.+)\/referrers\//.test(path)) {
    return jsonAnswer(
      200,
      { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] },
      { 'content-type': MT.ociIndex },
    );
  }
  return errorAnswer(404, 'NAME_UNKNOWN', 'repository name not known to registry');
}

function oddLocation(rng: Rng, ctx: ServerContext): string {
  const repo = ctx.world.repo;
  return rng.pick([
    '',
    ' ',
    'http://127.0.0.1:1/v2/x',
    `${ctx.url}/v2/${repo}/blobs/uploads/elsewhere?state=${'A'.repeat(300)}`,
    `/v2/${repo}/blobs/uploads/../../../../etc/passwd`,
    '//127.0.0.1:1/x',
    'ftp://127.0.0.1/x',
    'javascript:alert(1)',
    'data:text/plain,hello',
    'file:///etc/passwd',
    'http://[::1',
    'http://256.256.256.256/',
    'http://user:secret@127.0.0.1:1/',
    `https://${ctx.host}/v2/`,
    `/${'x'.repeat(9000)}`,
    ctx.path,
    '?',
    '#fragment',
    'http://127.0.0.1:0/',
    `${ctx.url}/redirect/${rng.int(3)}`,
    'http://localhost:1/v2/',
    '\x1b[2J',
    '\x1b]8;;http://evil.example/\x07x\x1b]8;;\x07',
    '/v2/%zz%00',
  ]);
}

function challenge(rng: Rng, ctx: ServerContext): string | string[] {
  const repo = ctx.world.repo;
  const one = () =>
    rng.pick([
      `Bearer realm="${ctx.url}/token",service="fuzz",scope="repository:${repo}:pull"`,
      `Bearer realm="${ctx.url}/token"`,
      `Bearer realm="${ctx.url}/token",service="fuzz",scope="repository:other/repo:push,pull"`,
      `Bearer realm="${ctx.url}/token",error="invalid_token"`,
      'Bearer realm="http://127.0.0.1:1/token",service="fuzz"',
      `Bearer realm="https://${ctx.host}/token"`,
      'Bearer realm="ftp://127.0.0.1/token"',
      'Bearer realm="javascript:alert(1)"',
      'Bearer realm=""',
      'Bearer',
      'Bearer realm',
      'Basic realm="fuzz"',
      'Basic',
      'Negotiate',
      'Digest realm="x", nonce="y", qop="auth"',
      `Bearer realm=${ctx.url}/token,service=unquoted`,
      `Bearer realm="${ctx.url}/token",scope="${'s'.repeat(5000)}"`,
      `Bearer realm="${ctx.url}/token\\"quoted",service="a\\\\b"`,
      ',,,=,"',
      'Bearer realm="\x1b]8;;http://evil.example/\x07"',
      `Bearer realm="${ctx.url}/token?x=\x1b[2J"`,
      `Bearer realm="${ctx.url}/token", Basic realm="both"`,
    ]);
  return rng.bool(0.15) ? [one(), one()] : one();
}

function garbageBody(rng: Rng, ctx: ServerContext): Buffer {
  const repo = ctx.world.repo;
  const digest = `sha256:${rng.hex(64)}`;
  const text = rng.weighted<() => string>([
    [1, () => ''],
    [1, () => '{'],
    [1, () => 'null'],
    [1, () => '[]'],
    [1, () => '"just a string"'],
    [1, () => '<html><body>502 Bad Gateway</body></html>'],
    [1, () => `plain text with ${rng.pick(ESCAPES)} escapes`],
    [1, () => '\ufeff{"schemaVersion":2}'],
    [2, () => serialize(rawFragment(rng))],
    [1, () => serialize({ schemaVersion: '2', layers: {} })],
    [1, () => serialize({ schemaVersion: 2, config: null, layers: [null] })],
    [1, () => serialize({ schemaVersion: 1, fsLayers: [{ blobSum: digest }], name: repo, tag: 'v1' })],
    [1, () => serialize({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ digest: 5 }] })],
    [
      1,
      () =>
        serialize({
          schemaVersion: 2,
          mediaType: MT.ociIndex,
          manifests: [{ mediaType: MT.ociIndex, digest, size: 10 }],
        }),
    ],
    [
      1,
      () =>
        serialize({
          schemaVersion: 2,
          config: { digest, size: rawFragment(rng) },
          layers: [{ mediaType: MT.classicLayer, digest, size: new Raw('1e308') }],
        }),
    ],
    [1, () => serialize({ schemaVersion: 2, layers: [{ mediaType: MT.classicLayer, digest, size: -1 }] })],
    [
      1,
      () =>
        serialize({ schemaVersion: 2, layers: Array.from({ length: 3000 }, () => ({ digest, size: 1 })) }),
    ],
    [
      2,
      () =>
        serialize({
          errors: [{ code: hostileString(rng), message: hostileString(rng), detail: hostileValue(rng) }],
        }),
    ],
    [1, () => serialize({ errors: 'x' })],
    [1, () => serialize({ errors: [null, 1, { code: {}, message: [] }] })],
    [1, () => serialize({ name: repo, tags: null })],
    [1, () => serialize({ name: repo, tags: [1, null, { a: 1 }] })],
    [1, () => serialize({ name: repo, tags: 'v1' })],
    [2, () => serialize({ name: hostileString(rng), tags: [hostileString(rng), 'v1', hostileString(rng)] })],
    [1, () => serialize({ name: repo, tags: Array.from({ length: 20_000 }, (_, i) => `t${i}`) })],
    [1, () => serialize({ token: 123 })],
    [1, () => serialize({ token: 'a\nb' })],
    [1, () => serialize({ token: '', access_token: hostileString(rng) })],
    [
      1,
      () =>
        serialize({ token: 'ok', expires_in: rng.pick<unknown>(['soon', -5, new Raw('1e309'), null, 0]) }),
    ],
    [1, () => serialize({ token: 'x'.repeat(rng.pick([100, 20_000])) })],
    [1, () => serialize({ token: hostileString(rng) })],
    [2, () => serialize(hostileValue(rng))],
  ])();
  return Buffer.from(text, 'utf8');
}

const STATUSES = [
  200, 201, 202, 204, 206, 301, 302, 303, 307, 308, 400, 401, 403, 404, 405, 416, 429, 500, 502, 503,
];
const CONTENT_TYPES = [
  'application/json',
  'text/html',
  MT.ociManifest,
  MT.ociIndex,
  MT.dockerManifest,
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/octet-stream',
  '',
  ';;;',
  'application/vnd.oci.image.manifest.v1+json; charset=utf-8; x="y"',
  'x'.repeat(2000),
];

type Mutator = (rng: Rng, a: Answer, ctx: ServerContext) => void;

const MUTATORS: ReadonlyArray<readonly [number, Mutator]> = [
  [
    6,
    (rng, a, ctx) => {
      a.status = rng.pick(STATUSES);
      if (a.status >= 300 && a.status < 400 && rng.bool(0.85)) a.headers.location = oddLocation(rng, ctx);
      if (a.status === 401) a.headers['www-authenticate'] = challenge(rng, ctx);
      if (a.status === 429 && rng.bool(0.5))
        a.headers['ratelimit-remaining'] = rng.pick(['0', '0;w=60', '5']);
      if (a.status === 206)
        a.headers['content-range'] = rng.pick([
          'bytes 0-0/1',
          'bytes 5-2/1',
          'garbage',
          `bytes 0-${a.body.length}/${a.body.length * 2}`,
        ]);
      if (a.status >= 400 && rng.bool(0.5)) a.body = garbageBody(rng, ctx);
    },
  ],
  [
    3,
    (rng, a, ctx) => {
      a.status = 401;
      a.headers['www-authenticate'] = challenge(rng, ctx);
      if (rng.bool(0.3)) a.body = garbageBody(rng, ctx);
    },
  ],
  [
    2,
    (rng, a) => {
      if (rng.bool(0.3)) delete a.headers['content-type'];
      else a.headers['content-type'] = rng.pick(CONTENT_TYPES);
    },
  ],
  [
    2,
    (rng, a) => {
      const len = a.body.length;
      a.headers['content-length'] = rng.pick<string | string[]>([
        '0',
        String(len + 1 + rng.int(100)),
        String(Math.max(0, len - 1 - rng.int(5))),
        '-1',
        '99999999999999999999',
        'abc',
        [String(len), String(len + 7)],
      ]);
      a.raw = true;
    },
  ],
  [
    3,
    (rng, a, ctx) => {
      const known = [...ctx.world.manifests.keys(), ...ctx.world.blobs.keys()];
      a.headers['docker-content-digest'] = rng.pick<string | string[]>([
        rng.pick(known),
        `sha256:${'0'.repeat(64)}`,
        'sha256:xyz',
        'md5:d41d8cd98f00b204e9800998ecf8427e',
        '',
        `sha512:${'a'.repeat(128)}`,
        `SHA256:${'A'.repeat(64)}`,
        `sha256:${'0'.repeat(63)}\x1b`,
        sha256(a.body),
        [sha256(a.body), `sha256:${'1'.repeat(64)}`],
      ]);
    },
  ],
  [2, (rng, a, ctx) => void (a.headers.location = oddLocation(rng, ctx))],
  [
    2,
    (rng, a) => {
      a.headers[rng.pick(['range', 'content-range'])] = rng.pick([
        '0-0',
        '0-99999999999999999999',
        'bytes=0-5',
        'bytes 0-5/2',
        '0--1',
        '-1',
        'garbage',
        '5-10',
        `0-${a.body.length * 2 + 100}`,
        '0-4194304000',
      ]);
    },
  ],
  [
    2,
    (rng, a, ctx) => {
      const repo = ctx.world.repo;
      a.headers.link = rng.pick([
        `</v2/${repo}/tags/list?n=1&last=v1>; rel="next"`,
        `<${ctx.url}/v2/${repo}/tags/list?last=${rng.hex(4)}>; rel="next"`,
        '<http://127.0.0.1:1/v2/x/tags/list>; rel="next"',
        '<>; rel="next"',
        'garbage',
        '<javascript:alert(1)>; rel="next"',
        `</v2/${repo}/tags/list?last=${'x'.repeat(5000)}>; rel="next"`,
        '<ftp://127.0.0.1/x>; rel=next',
        '<\x1b[2J>; rel="next"',
        `</v2/${repo}/tags/list?n=1>; rel="next", </other>; rel="next"`,
      ]);
    },
  ],
  [3, (rng, a) => void (a.body = a.body.subarray(0, rng.int(a.body.length + 1)))],
  [
    2,
    (rng, a) => {
      if (a.body.length === 0) return;
      const body = Buffer.from(a.body);
      const flips = 1 + rng.int(3);
      for (let i = 0; i < flips; i++) body[rng.int(body.length)] = rng.int(256);
      a.body = body;
    },
  ],
  [4, (rng, a, ctx) => void (a.body = garbageBody(rng, ctx))],
  [
    4,
    (rng, a) => {
      let value: unknown;
      try {
        value = JSON.parse(a.body.toString('utf8'));
      } catch {
        return;
      }
      a.body = Buffer.from(serialize(mutateJson(rng, value)));
      if (a.headers['docker-content-digest'] !== undefined && rng.bool(0.8)) {
        a.headers['docker-content-digest'] = sha256(a.body);
      }
    },
  ],
  [0.3, (rng, a) => void (a.body = Buffer.from(`{"a":"${'x'.repeat(5 * 1024 * 1024 + rng.int(1000))}"}`))],
  [
    1,
    (rng, a) => {
      a.raw = true;
      const framing = rng.int(7);
      if (framing === 0) a.drop = 'now';
      else if (framing === 1) a.drop = 'mid';
      else if (framing === 2)
        a.statusLine = rng.pick([
          'HTTP/1.1 abc Weird',
          'HTTP/2 200 OK',
          'garbage',
          'HTTP/1.1 1000 Big',
          'HTTP/1.1 099 Low',
          'HTTP/1.1 200',
        ]);
      else if (framing === 3) {
        a.headers['transfer-encoding'] = 'chunked';
        a.body = Buffer.from(
          rng.pick(['zz\r\nabc\r\n0\r\n\r\n', 'ffffffffffffffff\r\nabc', '3\r\nabc\r\n', '0\r\n\r\n']),
        );
      } else if (framing === 4) {
        a.headers['transfer-encoding'] = 'chunked';
        a.headers['content-length'] = String(a.body.length);
      } else if (framing === 5) a.headers['x-escape'] = rng.pick(ESCAPES);
      else a.headers[rng.pick(['bad header', 'x:y', ''])] = 'v';
    },
  ],
  [
    2,
    (rng, a) => {
      const text = hostileString(rng).slice(0, 300);
      a.headers.warning = rng.pick<string | string[]>([
        `299 - "${text}"`,
        `299 fuzz "${text.replace(/"/g, '')}" "Wed, 21 Oct 2015 07:28:00 GMT"`,
        '299 - "deprecated \\"quoted\\" text"',
        'garbage',
        [`299 - "one ${text}"`, '299 - "two"'],
      ]);
      if (/[^\t\x20-\x7e]/.test(JSON.stringify(a.headers.warning))) a.raw = true;
    },
  ],
  [
    1,
    (rng, a) => {
      a.status = rng.pick([429, 503, 500]);
      a.headers['retry-after'] = rng.pick(['0', '1', 'soon', '-1', '0.5', '', 'NaN']);
    },
  ],
  [
    1,
    (rng, a) =>
      void (a.headers['oci-chunk-min-length'] = rng.pick([
        '-1',
        '0',
        'abc',
        '99999999999999999999',
        '5000000',
      ])),
  ],
];

function mutate(rng: Rng, honest: Answer, ctx: ServerContext): Answer {
  const a: Answer = { ...honest, headers: { ...honest.headers } };
  const count = rng.pick([1, 1, 1, 2, 2, 3]);
  for (let i = 0; i < count; i++) rng.weighted(MUTATORS)(rng, a, ctx);
  return a;
}

/** node:http refuses these header names and values; such answers are written raw. */
const INVALID_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function needsRaw(a: Answer): boolean {
  if (a.raw || a.statusLine || a.drop) return true;
  if (a.status < 200 || a.status > 599) return true;
  for (const [name, value] of Object.entries(a.headers)) {
    if (!HEADER_NAME.test(name)) return true;
    for (const v of [value].flat()) if (INVALID_HEADER_VALUE.test(v)) return true;
  }
  return false;
}

function sendAnswer(req: IncomingMessage, res: ServerResponse, a: Answer): void {
  const head = req.method === 'HEAD';
  const socket = res.socket;
  if (a.drop === 'now') {
    socket?.destroy();
    return;
  }
  if (!needsRaw(a)) {
    const headers: Record<string, string | string[]> = {
      ...a.headers,
      'content-length': String(head ? (a.headLength ?? a.body.length) : a.body.length),
    };
    res.writeHead(a.status, headers);
    res.end(head ? undefined : a.body);
    return;
  }
  if (!socket) return;
  const lines = [a.statusLine ?? `HTTP/1.1 ${a.status} Fuzz`];
  const names = Object.keys(a.headers).map((n) => n.toLowerCase());
  for (const [name, value] of Object.entries(a.headers))
    for (const v of [value].flat()) lines.push(`${name}: ${v}`);
  if (!names.includes('content-length') && !names.includes('transfer-encoding')) {
    lines.push(`content-length: ${head ? (a.headLength ?? a.body.length) : a.body.length}`);
  }
  lines.push('connection: close');
  const bytes = Buffer.concat([
    Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'),
    head ? Buffer.alloc(0) : a.body,
  ]);
  if (a.drop === 'mid') {
    socket.write(bytes.subarray(0, Math.max(1, Math.floor(bytes.length * 0.7))));
    socket.destroy();
    return;
  }
  socket.end(bytes);
}

/** A hostile registry for one case: honest with probability `honesty`, a mutated answer otherwise. */
async function startFuzzRegistry(caseRng: Rng, world: World, honesty: number): Promise<RecordingServer> {
  const asked = new Map<string, number>();
  const ctx = { url: '', host: '' };
  const server = await startScriptedServer((req, res, body) => {
    const method = req.method ?? 'GET';
    const line = `${method} ${req.url ?? ''}`;
    const n = asked.get(line) ?? 0;
    asked.set(line, n + 1);
    const rng = caseRng.fork(`${line}#${n}`);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', ctx.url);
    } catch {
      url = new URL('/', ctx.url);
    }
    const honest = honestAnswer(world, method, url, req.headers, body);
    const answer = rng.bool(honesty)
      ? honest
      : mutate(rng, honest, { ...ctx, world, method, path: url.pathname });
    try {
      sendAnswer(req, res, answer);
    } catch {
      res.socket?.destroy();
    }
  });
  ctx.url = server.url;
  ctx.host = server.host;
  return server;
}

// ---------------------------------------------------------------------------------------------------
// Hostile layouts

async function writeLayout(dir: string, world: World, tags: Array<[string, Stored]>): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const all = new Map<string, Buffer>(world.blobs);
  for (const [d, s] of world.manifests) all.set(d, s.bytes);
  for (const [d, b] of all) await writeFile(join(dir, 'blobs', 'sha256', d.slice('sha256:'.length)), b);
  const index = {
    schemaVersion: 2,
    mediaType: MT.ociIndex,
    manifests: tags.map(([tag, s]) => ({
      mediaType: s.mediaType,
      digest: s.digest,
      size: s.bytes.length,
      annotations: { 'org.opencontainers.image.ref.name': tag },
    })),
  };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}

const SENTINEL = 'sentinel: must never change\n';

/** Damages a layout in one of many ways; `outside` holds a sentinel file links may point at. */
async function damageLayout(rng: Rng, dir: string, world: World, outside: string): Promise<string> {
  const sentinel = join(outside, 'sentinel');
  const blobDir = join(dir, 'blobs', 'sha256');
  // An earlier damage may have removed the blobs or made their directory a file: then a blob damage
  // hits a new file beside them (the run still reads a broken layout).
  const blobNames = await readdir(blobDir).catch(() => [] as string[]);
  const someBlob = () =>
    blobNames.length ? join(blobDir, rng.pick(blobNames)) : join(dir, `blob-${rng.hex(8)}`);
  // An earlier damage may also have left index.json unreadable: later damages then start from an
  // index with one empty entry.
  const index = ((await readFile(join(dir, 'index.json'), 'utf8')
    .then((text) => JSON.parse(text) as unknown)
    .then((value) => {
      const manifests = (value as { manifests?: unknown } | null)?.manifests;
      return Array.isArray(manifests) && manifests.length ? value : undefined;
    })
    .catch(() => undefined)) as { manifests: Array<Record<string, unknown>> } | undefined) ?? {
    manifests: [{}],
  };
  const writeIndex = (value: unknown) => writeFile(join(dir, 'index.json'), serialize(value));
  const entry = index.manifests[0] as Record<string, unknown>;
  const choice = rng.weighted<() => Promise<string>>([
    [
      3,
      async () => (
        await writeFile(
          join(dir, 'index.json'),
          garbageBody(rng, {
            url: 'http://127.0.0.1:1',
            host: '127.0.0.1:1',
            world,
            method: 'GET',
            path: '/',
          }),
        ),
        'index.json garbage'
      ),
    ],
    [5, async () => (await writeIndex(mutateJson(rng, index)), 'index.json mutated')],
    [1, async () => (await rm(join(dir, 'index.json')), 'index.json missing')],
    [
      1,
      async () => (
        await rm(join(dir, 'index.json')), await mkdir(join(dir, 'index.json')), 'index.json is a directory'
      ),
    ],
    [
      1,
      async () => (
        await rm(join(dir, 'index.json')),
        await symlink(sentinel, join(dir, 'index.json')),
        'index.json links outside'
      ),
    ],
    [
      1,
      async () => {
        await writeFile(sentinel, JSON.stringify(index));
        await rm(join(dir, 'index.json'));
        await symlink(sentinel, join(dir, 'index.json'));
        return 'index.json links to a valid index outside';
      },
    ],
    [
      2,
      async () => (
        await writeFile(
          join(dir, 'oci-layout'),
          rng.pick([
            '',
            '{',
            '{"imageLayoutVersion":"2.0.0"}',
            '{"imageLayoutVersion":5}',
            'null',
            '\x1b[2J',
          ]),
        ),
        'oci-layout garbage'
      ),
    ],
    [1, async () => (await rm(join(dir, 'oci-layout')), 'oci-layout missing')],
    [
      3,
      async () => {
        entry.annotations = {
          'org.opencontainers.image.ref.name': rng.bool(0.5) ? hostileString(rng) : 'v1',
          [hostileString(rng).slice(0, 50)]: hostileString(rng),
        };
        index.manifests.push({
          ...entry,
          annotations: { 'org.opencontainers.image.ref.name': hostileString(rng) },
        });
        await writeIndex(index);
        return 'hostile tag names';
      },
    ],
    [
      2,
      async () => {
        entry.digest = rng.pick([
          'sha256:../../../outside/sentinel',
          `sha256:${'0'.repeat(64)}`,
          `sha256:${'A'.repeat(64)}`,
          `sha512:${'a'.repeat(128)}`,
          '../../x:y',
          `sha256:${'0'.repeat(63)}/`,
          hostileString(rng),
        ]);
        await writeIndex(index);
        return 'index entry digest';
      },
    ],
    [
      1,
      async () => (
        await writeIndex({
          ...index,
          manifests: Array.from({ length: 5000 }, (_, i) => ({
            ...entry,
            annotations: { 'org.opencontainers.image.ref.name': `t${i}` },
          })),
        }),
        'index with 5000 entries'
      ),
    ],
    [
      3,
      async () => {
        const p = someBlob();
        await rm(p, { recursive: true, force: true });
        await writeFile(p, rng.bytes(rng.int(100)));
        return 'blob overwritten';
      },
    ],
    [
      2,
      async () => {
        const p = someBlob();
        // Only a regular file is read (an earlier damage may have left a FIFO, which would block).
        const isFile = (await lstat(p).catch(() => undefined))?.isFile() ?? false;
        const b = isFile ? await readFile(p) : Buffer.alloc(0);
        await rm(p, { recursive: true, force: true });
        await writeFile(p, b.subarray(0, rng.int(b.length)));
        return 'blob truncated';
      },
    ],
    [2, async () => (await rm(someBlob(), { recursive: true, force: true }), 'blob missing')],
    [
      1,
      async () => {
        const p = someBlob();
        await rm(p, { recursive: true, force: true });
        await mkdir(p);
        return 'blob is a directory';
      },
    ],
    [
      2,
      async () => {
        const p = someBlob();
        await rm(p, { recursive: true, force: true });
        await symlink(sentinel, p);
        return 'blob links outside';
      },
    ],
    [
      1,
      async () => {
        const p = someBlob();
        await rm(p, { recursive: true, force: true });
        await symlink(p, p);
        return 'blob is a symlink loop';
      },
    ],
    [
      1,
      async () => {
        const p = someBlob();
        await rm(p, { recursive: true, force: true });
        execFileSync('mkfifo', [p]);
        return 'blob is a FIFO';
      },
    ],
    [
      1,
      async () => (
        await rm(blobDir, { recursive: true }),
        await writeFile(blobDir, 'not a dir'),
        'blobs/sha256 is a file'
      ),
    ],
    [
      1,
      async () => (
        await writeFile(join(blobDir, 'stray file'), 'x'),
        await mkdir(join(blobDir, 'stray-dir')),
        'stray entries'
      ),
    ],
  ]);
  return choice();
}

// ---------------------------------------------------------------------------------------------------
// Running the CLI and checking what it did

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  killed: boolean;
  ms: number;
}

const HARD_KILL_MS = 20_000;
const TIMEOUT = '3';

function runIsolated(args: string[], home: string, cwd: string, input?: string): Promise<Run> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LANG: 'C.UTF-8',
    HOME: home,
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_RUNTIME_DIR: join(home, 'run'),
    DOCKER_CONFIG: join(home, '.docker'),
    TMPDIR: join(home, 'tmp'),
  };
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let killed = false;
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, HARD_KILL_MS);
    child.on('error', reject);
    child.stdin.on('error', () => {});
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString('utf8'),
        killed,
        ms: Date.now() - started,
      });
    });
    child.stdin.end(input ?? '');
  });
}

interface Plan {
  kind: string;
  args: string[];
  input?: string;
  /** A file the command writes: absent or unchanged after a failure. */
  out?: string;
  /** The output's bytes before the run, when it existed. */
  existing?: Buffer;
  /** stdout is text (not raw manifest or module bytes) and must be printable too. */
  textStdout: boolean;
}

/** Walks a directory; symbolic links are listed, not followed. */
async function walk(dir: string): Promise<string[]> {
  const found: string[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return found;
  }
  for (const name of names) {
    const path = join(dir, name);
    found.push(path);
    const info = await lstat(path).catch(() => undefined);
    if (info?.isDirectory()) found.push(...(await walk(path)));
  }
  return found;
}

const PRINTABLE_PROBLEM = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

/** Everything wrong with one run, as readable lines (empty: the run was fine). */
async function problems(plan: Plan, run: Run, caseDir: string, home: string): Promise<string[]> {
  const found: string[] = [];
  if (run.killed) found.push(`hung: killed after ${HARD_KILL_MS} ms`);
  else if (run.signal) found.push(`ended by signal ${run.signal}`);
  else if (run.code !== 0 && run.code !== 1 && run.code !== 2) found.push(`exit code ${run.code}`);
  const stderr = run.stderr;
  if (/^\s+at /m.test(stderr)) found.push('stack trace on stderr');
  const name = /\b(TypeError|RangeError|ReferenceError|SyntaxError|AssertionError|ERR_[A-Z_]+)\b/.exec(
    stderr,
  );
  if (name) found.push(`internal error name on stderr: ${name[1]}`);
  if (/looks like a bug/.test(stderr)) found.push('the "looks like a bug" hint');
  const bad = PRINTABLE_PROBLEM.exec(stderr);
  if (bad)
    found.push(`raw control character U+${bad[0].charCodeAt(0).toString(16).padStart(4, '0')} on stderr`);
  if (plan.textStdout) {
    const badOut = PRINTABLE_PROBLEM.exec(run.stdout.toString('utf8'));
    if (badOut)
      found.push(
        `raw control character U+${badOut[0].charCodeAt(0).toString(16).padStart(4, '0')} on stdout`,
      );
  }
  if (plan.out) {
    const now = await readFile(plan.out).catch(() => undefined);
    if (run.code !== 0) {
      if (plan.existing && (!now || !now.equals(plan.existing)))
        found.push(`failed, yet ${plan.out} changed`);
      if (!plan.existing && now) found.push(`failed, yet ${plan.out} was written`);
    } else if (!now) {
      found.push(`succeeded without writing ${plan.out}`);
    } else {
      const digest = /^Digest: (sha256:[0-9a-f]{64})$/m.exec(run.stdout.toString('utf8'))?.[1];
      if (plan.kind.startsWith('pull') && digest && digest !== sha256(now)) {
        found.push(`${plan.out} does not hash to the printed digest ${digest}`);
      }
    }
  }
  for (const path of await walk(caseDir)) {
    if (/\.part$/.test(path)) found.push(`left ${path.slice(caseDir.length + 1)}`);
    if (/\.lock$/.test(path)) found.push(`left lock ${path.slice(caseDir.length + 1)}`);
  }
  const temps = await readdir(join(home, 'tmp')).catch(() => []);
  if (temps.length) found.push(`left in TMPDIR: ${temps.join(', ')}`);
  return found;
}

function describeRun(label: string, plan: Plan, run: Run, found: string[], note = ''): string {
  return [
    `${label} [${plan.kind}]${note ? ` (${note})` : ''}: ${found.join('; ')}`,
    `  wasm-to-oci ${plan.args.map((a) => (/^[\w@:./=-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}`,
    `  exit ${run.code} signal ${run.signal} after ${run.ms} ms`,
    `  stderr: ${JSON.stringify(run.stderr.slice(0, 1500))}`,
  ].join('\n');
}

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

// ---------------------------------------------------------------------------------------------------
// Cases

let work: Awaited<ReturnType<typeof tempDir>>;
let goodLayout = '';
const PARALLEL = 4;

/** FUZZ_ONLY=<seed hex>:<index> runs one case and prints its run whatever the outcome. */
const only = process.env.FUZZ_ONLY ? /^([0-9a-f]+):(\d+)$/i.exec(process.env.FUZZ_ONLY) : null;

async function caseDirs(label: string) {
  const dir = join(work.path, label);
  const home = join(dir, 'home');
  await mkdir(join(home, 'tmp'), { recursive: true });
  await mkdir(join(home, '.docker'), { recursive: true });
  await mkdir(join(dir, 'out'), { recursive: true });
  return { dir, home, out: join(dir, 'out') };
}

async function maybeExisting(rng: Rng, path: string): Promise<Buffer | undefined> {
  if (!rng.bool(0.5)) return undefined;
  const bytes = Buffer.concat([Buffer.from('existing output, keep me\n'), rng.bytes(rng.int(64))]);
  await writeFile(path, bytes);
  return bytes;
}

function registryPlan(
  rng: Rng,
  host: string,
  world: World,
  dirs: { dir: string; out: string },
  wasmFile: string,
): Plan {
  const net = [rng.bool(0.85) ? '--plain-http' : '--use-http', '--timeout', TIMEOUT];
  const byDigest = rng.bool(0.2);
  const ref = byDigest
    ? `${host}/${world.repo}@${world.top}`
    : rng.bool(0.05)
      ? `${host}/${world.repo}`
      : `${host}/${world.repo}:${world.tag}`;
  const json = rng.bool(0.3) ? ['--json'] : [];
  const select = [
    ...(rng.bool(0.15) ? ['--platform', rng.pick(['wasip1/wasm', 'linux/amd64', 'x/y/z'])] : []),
    ...(rng.bool(0.1) ? ['--layer', rng.pick([world.layerDigest, world.layerTitle, 'nope'])] : []),
  ];
  return rng.weighted<() => Plan>([
    [
      30,
      () => {
        const out = join(dirs.out, 'module.wasm');
        return {
          kind: 'pull',
          args: ['pull', ref, ...net, '--no-cache', ...json, ...select, '-o', out],
          out,
          textStdout: true,
        };
      },
    ],
    [
      4,
      () => ({
        kind: 'pull -o -',
        args: ['pull', ref, ...net, '--no-cache', ...select, '-o', '-'],
        textStdout: false,
      }),
    ],
    [
      3,
      () => {
        const out = join(dirs.out, 'cached.wasm');
        return {
          kind: 'pull (cache)',
          args: ['pull', ref, ...net, ...json, '-o', out],
          out,
          textStdout: true,
        };
      },
    ],
    [
      15,
      () => ({
        kind: 'inspect',
        args: ['inspect', ref, ...net, '--no-cache', ...json, ...select],
        textStdout: true,
      }),
    ],
    [8, () => ({ kind: 'tags', args: ['tags', `${host}/${world.repo}`, ...net, ...json], textStdout: true })],
    [5, () => ({ kind: 'resolve', args: ['resolve', ref, ...net, ...json], textStdout: true })],
    [4, () => ({ kind: 'manifest get', args: ['manifest', 'get', ref, ...net], textStdout: false })],
    [
      4,
      () => ({
        kind: 'manifest get --pretty',
        args: ['manifest', 'get', ref, ...net, rng.pick(['--pretty', '--descriptor'])],
        textStdout: true,
      }),
    ],
    [
      3,
      () => ({
        kind: 'manifest delete',
        args: ['manifest', 'delete', ref, '--force', ...net, ...json],
        textStdout: true,
      }),
    ],
    [
      6,
      () => {
        const out = join(dirs.out, 'blob.bin');
        return {
          kind: 'blob get',
          args: ['blob', 'get', `${host}/${world.repo}@${world.layerDigest}`, ...net, '-o', out],
          out,
          textStdout: true,
        };
      },
    ],
    [
      4,
      () => ({
        kind: 'tag',
        args: ['tag', ref, 'new1', ...(rng.bool(0.3) ? ['new2'] : []), ...net, ...json],
        textStdout: true,
      }),
    ],
    [
      10,
      () => ({
        kind: 'push',
        args: [
          'push',
          wasmFile,
          `${host}/${world.repo}:${rng.pick(['v1', 'v2'])}`,
          ...net,
          ...(rng.bool(0.3) ? ['--format', 'cncf', '--created', '2024-01-01T00:00:00Z'] : []),
          ...(rng.bool(0.2) ? ['--tag', 'extra'] : []),
          ...json,
        ],
        textStdout: true,
      }),
    ],
    [
      6,
      () => ({
        kind: 'copy to layout',
        args: ['copy', ref, `oci:${join(dirs.out, 'layout')}:v1`, ...net, ...json],
        textStdout: true,
      }),
    ],
    [
      3,
      () => ({
        kind: 'copy from layout',
        args: ['copy', `oci:${goodLayout}:v1`, `${host}/${world.repo}:v2`, ...net, ...json],
        textStdout: true,
      }),
    ],
    [
      2,
      () => ({
        kind: 'copy within',
        args: ['copy', ref, `${host}/other/repo:v1`, ...net, ...json],
        textStdout: true,
      }),
    ],
    [
      2,
      () => ({
        kind: 'login',
        args: ['login', host, '-u', 'fuzz', '--password-stdin', ...net],
        input: 'secret\n',
        textStdout: true,
      }),
    ],
    [2, () => ({ kind: 'run', args: ['run', ref, ...net, '--no-cache'], textStdout: false })],
  ])();
}

function layoutPlan(
  rng: Rng,
  layout: string,
  dirs: { dir: string; out: string },
  wasmFile: string,
  digest: string,
): Plan {
  const ref = rng.bool(0.15) ? `oci:${layout}@${digest}` : `oci:${layout}:v1`;
  const json = rng.bool(0.3) ? ['--json'] : [];
  return rng.weighted<() => Plan>([
    [
      6,
      () => {
        const out = join(dirs.out, 'module.wasm');
        return {
          kind: 'layout pull',
          args: ['pull', ref, '--no-cache', ...json, '-o', out],
          out,
          textStdout: true,
        };
      },
    ],
    [5, () => ({ kind: 'layout inspect', args: ['inspect', ref, '--no-cache', ...json], textStdout: true })],
    [
      3,
      () => ({
        kind: 'layout copy out',
        args: ['copy', ref, `oci:${join(dirs.out, 'copy')}:v1`, ...json],
        textStdout: true,
      }),
    ],
    [2, () => ({ kind: 'layout tags', args: ['tags', `oci:${layout}`, ...json], textStdout: true })],
    [2, () => ({ kind: 'layout resolve', args: ['resolve', ref, ...json], textStdout: true })],
    [
      2,
      () => ({
        kind: 'layout manifest get',
        args: ['manifest', 'get', ref, ...(rng.bool(0.5) ? ['--pretty'] : [])],
        textStdout: false,
      }),
    ],
    [
      2,
      () => {
        const out = join(dirs.out, 'blob.bin');
        return {
          kind: 'layout blob get',
          args: ['blob', 'get', `oci:${layout}@${digest}`, '-o', out],
          out,
          textStdout: true,
        };
      },
    ],
    [
      3,
      () => ({
        kind: 'layout push into',
        args: ['push', wasmFile, `oci:${layout}:v3`, ...json],
        textStdout: true,
      }),
    ],
    [
      2,
      () => ({
        kind: 'layout copy into',
        args: ['copy', `oci:${goodLayout}:v1`, `oci:${layout}:v2`, ...json],
        textStdout: true,
      }),
    ],
    [1, () => ({ kind: 'layout tag', args: ['tag', ref, 'v9', ...json], textStdout: true })],
    [1, () => ({ kind: 'layout run', args: ['run', ref, '--no-cache'], textStdout: false })],
  ])();
}

interface Outcome {
  label: string;
  failure?: string;
  detail: string;
  ms: number;
}

async function registryCase(seed: number, index: number): Promise<Outcome> {
  const label = `seed ${hex8(seed)} case ${index}`;
  const rng = new Rng(hash32(`registry:${hex8(seed)}:${index}`));
  const hostile = rng.bool(0.5);
  const world = buildWorld(rng.fork('world'), hostile);
  const honesty = rng.pick([1, 0.9, 0.8, 0.65, 0.5, 0.25, 0]);
  const dirs = await caseDirs(`r-${hex8(seed)}-${index}`);
  const wasmFile = join(dirs.dir, 'push.wasm');
  await writeFile(wasmFile, rng.bool(0.3) ? WASM8 : uniqueWasm(rng.fork('push')));
  const server = await startFuzzRegistry(rng.fork('server'), world, honesty);
  const plan = registryPlan(rng.fork('plan'), server.host, world, dirs, wasmFile);
  let run: Run;
  try {
    if (plan.out) plan.existing = await maybeExisting(rng.fork('existing'), plan.out);
    run = await runIsolated(plan.args, dirs.home, dirs.dir, plan.input);
  } finally {
    await server.stop();
  }
  const found = await problems(plan, run, dirs.dir, dirs.home);
  const note = `${hostile ? 'hostile artifact' : 'honest artifact'}, honesty ${honesty}, ${server.requests.length} requests`;
  const detail = describeRun(label, plan, run, found.length ? found : ['ok'], note);
  if (!found.length && !only) await rm(dirs.dir, { recursive: true, force: true });
  return { label, detail, ms: run.ms, ...(found.length ? { failure: detail } : {}) };
}

async function layoutCase(seed: number, index: number): Promise<Outcome> {
  const label = `layout seed ${hex8(seed)} case ${index}`;
  const rng = new Rng(hash32(`layout:${hex8(seed)}:${index}`));
  const hostile = rng.bool(0.5);
  const world = buildWorld(rng.fork('world'), hostile);
  const dirs = await caseDirs(`l-${hex8(seed)}-${index}`);
  const layout = join(dirs.dir, 'layout');
  const outside = join(dirs.dir, 'outside');
  await mkdir(outside);
  await writeFile(join(outside, 'sentinel'), SENTINEL);
  const top = world.tags.get(world.tag) as Stored;
  await writeLayout(layout, world, [[world.tag, top]]);
  const damage: string[] = [];
  const damages = (hostile ? 0 : 1) + rng.int(3);
  const damageRng = rng.fork('damage');
  for (let i = 0; i < damages; i++) damage.push(await damageLayout(damageRng, layout, world, outside));
  const sentinelBefore = await readFile(join(outside, 'sentinel'));
  const wasmFile = join(dirs.dir, 'push.wasm');
  await writeFile(wasmFile, uniqueWasm(rng.fork('push')));
  const plan = layoutPlan(
    rng.fork('plan'),
    layout,
    dirs,
    wasmFile,
    rng.bool(0.7) ? top.digest : world.layerDigest,
  );
  if (plan.out) plan.existing = await maybeExisting(rng.fork('existing'), plan.out);
  const run = await runIsolated(plan.args, dirs.home, dirs.dir, plan.input);
  const found = await problems(plan, run, dirs.dir, dirs.home);
  const sentinelAfter = await readFile(join(outside, 'sentinel')).catch(() => undefined);
  if (!sentinelAfter?.equals(sentinelBefore)) found.push('the file outside the layout changed');
  const note = `${hostile ? 'hostile artifact' : 'honest artifact'}; ${damage.join(', ') || 'undamaged'}`;
  const detail = describeRun(label, plan, run, found.length ? found : ['ok'], note);
  if (!found.length && !only) await rm(dirs.dir, { recursive: true, force: true });
  return { label, detail, ms: run.ms, ...(found.length ? { failure: detail } : {}) };
}

async function fuzz(
  t: TestContext,
  kind: 'registry' | 'layout',
  seed: number,
  count: number,
  indices?: number[],
): Promise<void> {
  if (only && Number.parseInt(only[1] as string, 16) !== seed) return;
  const wanted = only ? [Number(only[2])] : (indices ?? Array.from({ length: count }, (_, i) => i));
  const outcomes: Outcome[] = [];
  await pool(wanted, PARALLEL, async (i) => {
    try {
      outcomes.push(await (kind === 'registry' ? registryCase(seed, i) : layoutCase(seed, i)));
    } catch (err) {
      const label = `${kind} seed ${hex8(seed)} case ${i}`;
      const failure = `${label}: the harness failed: ${(err as Error).stack ?? String(err)}`;
      outcomes.push({ label, failure, detail: failure, ms: 0 });
    }
  });
  if (only) for (const o of outcomes) console.log(o.detail);
  const slowest = [...outcomes].sort((a, b) => b.ms - a.ms).slice(0, 3);
  t.diagnostic(
    `slowest: ${slowest.map((o) => `${o.label.replace(/.* case /, 'case ')} ${o.ms} ms`).join(', ')}`,
  );
  const failures = outcomes.filter((o) => o.failure).map((o) => o.failure as string);
  assert.ok(
    failures.length === 0,
    `${failures.length} of ${outcomes.length} cases failed:\n\n${failures.join('\n\n')}`,
  );
}

// ---------------------------------------------------------------------------------------------------
// What must not change outside the temporary directory

/**
 * A coarse view of what the CLI could touch outside its temporary directory if it ignored HOME, the
 * XDG variables, DOCKER_CONFIG, TMPDIR or its working directory: the user's own files (existence, and
 * the Docker config's bytes) and the test runner's working directory.
 */
const WATCHED = (): string[] => [
  join(homedir(), '.cache', 'wasm-to-oci'),
  join(homedir(), '.docker'),
  join(homedir(), '.wasm-to-oci'),
  join(homedir(), '.config', 'containers'),
];

async function footprint(): Promise<string[]> {
  const entries: string[] = [];
  for (const path of WATCHED())
    entries.push(`${path}: ${(await stat(path).catch(() => undefined)) ? 'present' : 'absent'}`);
  const config = await readFile(join(homedir(), '.docker', 'config.json')).catch(() => undefined);
  entries.push(`docker config: ${config ? sha256(config) : 'absent'}`);
  for (const name of await readdir(process.cwd())) entries.push(`cwd/${name}`);
  return entries;
}

let footprintBefore: string[];

before(async () => {
  footprintBefore = await footprint();
  work = await tempDir();
  HELLO = await readFile(HELLO_WASM);
  goodLayout = join(work.path, 'good-layout');
  const world = buildWorld(new Rng(1), false);
  await writeLayout(goodLayout, world, [['v1', world.tags.get('v1') as Stored]]);
});

after(async () => {
  if (!only) await work?.remove();
  else console.log(`case directories kept in ${work.path}`);
  assert.deepEqual(await footprint(), footprintBefore, 'nothing changed outside the temporary directory');
});

describe('fuzz: the CLI against a hostile registry', () => {
  for (const seed of [0x5eed0001, 0x5eed0002, 0x5eed0003, 0x5eed0004]) {
    it(`seed ${hex8(seed)}: 45 cases`, async (t) => fuzz(t, 'registry', seed, 45));
  }
});

describe('fuzz: the CLI against hostile OCI layouts', () => {
  for (const seed of [0x1a40a001, 0x1a40a002]) {
    it(`seed ${hex8(seed)}: 25 cases`, async (t) => fuzz(t, 'layout', seed, 25));
  }
});
