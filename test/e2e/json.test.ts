import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { registryCertificates } from '../harness/certs.js';
import { runCli } from '../harness/cli.js';
import { cliEnv, HELLO_WASM, tempDir } from '../harness/fixtures.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

/**
 * The JSON contract (README, "JSON output"): every command in the command table has a row in the
 * README's table, and each command's `--json` object, run for real against the Distribution registry
 * (plain HTTP and TLS) and a layout, has exactly the fields its row names, with every descriptor in the
 * one shape. Errors with `--json` are one JSON object on stderr.
 */

const README = fileURLToPath(new URL('../../../README.md', import.meta.url));

interface Shape {
  required: string[];
  optional: string[];
}

/** The README's table: `command label` -> the shapes it may print (a row may give alternatives). */
async function contract(): Promise<Map<string, Shape[]>> {
  const text = await readFile(README, 'utf8');
  const start = text.indexOf('<!-- json-contract');
  const end = text.indexOf('<!-- /json-contract -->');
  assert.ok(start >= 0 && end > start, 'the README has the json-contract table');
  const rows = new Map<string, Shape[]>();
  for (const line of text.slice(start, end).split('\n')) {
    const m = /^\| `([a-z -]+)`(?: \([a-z]+\))? \| (.*) \|$/.exec(line);
    if (!m) continue;
    const label = m[1] as string;
    // Only the top-level objects of the cell: a `{...}` that follows "each ..." describes a nested one.
    const cell = (m[2] as string).replace(/each [a-z]+ `\{[^}]*\}`/g, '');
    const shapes = [...cell.matchAll(/`\{([^}]*)\}`/g)].map((g) => {
      const fields = (g[1] as string).split(',').map((f) => f.trim());
      return {
        required: fields.filter((f) => !f.endsWith('?')),
        optional: fields.filter((f) => f.endsWith('?')).map((f) => f.slice(0, -1)),
      };
    });
    rows.set(label, [...(rows.get(label) ?? []), ...shapes]);
  }
  return rows;
}

const DESCRIPTOR_NAMES = new Set(['manifest', 'config', 'layer', 'blob', 'subject', 'index']);
const DESCRIPTOR_FIELDS = new Set(['mediaType', 'digest', 'size', 'artifactType', 'annotations', 'platform']);
/** Names the contract replaced: they must appear nowhere. */
const RETIRED = ['uploadedBytes', 'copiedBytes', 'destinations', 'mountedBlobs', 'descriptor'];

function checkDescriptor(value: unknown, where: string, extra: string[] = []): void {
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), `${where} is an object`);
  const d = value as Record<string, unknown>;
  assert.equal(typeof d.mediaType, 'string', `${where}.mediaType`);
  assert.match(String(d.digest), /^sha256:[0-9a-f]{64}$/, `${where}.digest`);
  assert.ok(Number.isSafeInteger(d.size) && (d.size as number) >= 0, `${where}.size`);
  for (const key of Object.keys(d)) {
    assert.ok(DESCRIPTOR_FIELDS.has(key) || extra.includes(key), `${where} has no field ${key}`);
  }
}

/** Checks one printed object against the shapes its row allows, and every descriptor in it. */
function checkShape(label: string, shapes: Shape[] | undefined, value: unknown): void {
  assert.ok(shapes?.length, `the README documents ${label}`);
  assert.ok(typeof value === 'object' && value !== null, `${label}: an object`);
  const keys = Object.keys(value);
  const fits = (shapes as Shape[]).some(
    (s) =>
      s.required.every((k) => keys.includes(k)) &&
      keys.every((k) => s.required.includes(k) || s.optional.includes(k)),
  );
  assert.ok(fits, `${label}: fields ${keys.join(', ')} match none of ${JSON.stringify(shapes)}`);
  const walk = (node: unknown, path: string): void => {
    if (Array.isArray(node)) node.forEach((n, i) => walk(n, `${path}[${i}]`));
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return;
    for (const [k, v] of Object.entries(node)) {
      // Parsed documents are the registry's, not ours: `content`, `configJson`, `script`.
      if (k === 'content' || k === 'configJson' || k === 'annotations') continue;
      assert.ok(!RETIRED.includes(k), `${label}: ${path}.${k} is a retired name`);
      if (DESCRIPTOR_NAMES.has(k))
        checkDescriptor(v, `${label}: ${path}.${k}`, k === 'index' ? ['manifests'] : []);
      if (k === 'layers' || k === 'manifests') {
        assert.ok(Array.isArray(v), `${label}: ${path}.${k} is an array`);
        (v as unknown[]).forEach((d, i) => checkDescriptor(d, `${label}: ${path}.${k}[${i}]`));
      }
      if (k === 'references') {
        assert.ok(Array.isArray(v) && v.every((r) => typeof r === 'string'), `${label}: references`);
      }
      if (/^bytes(Sent|Received)$/.test(k)) assert.ok(Number.isSafeInteger(v), `${label}: ${k}`);
      walk(v, `${path}.${k}`);
    }
  };
  walk(value, label);
}

let work: Awaited<ReturnType<typeof tempDir>>;
let plain: RegistryServer;
let tls: RegistryServer;
let caFile: string;
let rows: Map<string, Shape[]>;

before(async () => {
  work = await tempDir();
  const certs = await registryCertificates(work.path);
  caFile = certs.caFile;
  [plain, tls] = await Promise.all([startRegistry(), startRegistry({ tls: certs.tls })]);
  rows = await contract();
});
after(async () => {
  await plain?.stop();
  await tls?.stop();
  await work?.remove();
});

const env = (name: string): NodeJS.ProcessEnv => cliEnv(join(work.path, name), caFile);

describe('the JSON contract', () => {
  it('documents every command of the command table', async () => {
    const help = await runCli(['--help'], { env: env('help') });
    assert.equal(help.code, 0, help.stderr);
    const commands = [...help.stdout.matchAll(/^ {2}([a-z][a-z-]*) {2,}/gm)].map((m) => m[1] as string);
    assert.ok(commands.length >= 16, commands.join(' '));
    const documented = new Set([...rows.keys()].map((label) => label.split(' ')[0]));
    for (const command of commands) assert.ok(documented.has(command), `README documents ${command} --json`);
    // And every command takes --json.
    for (const command of commands) {
      const res = await runCli([command, '--help'], { env: env('help') });
      assert.match(res.stdout, /--json/, `${command} --help lists --json`);
    }
  });

  for (const scheme of ['plain HTTP', 'TLS'] as const) {
    it(`holds for every command over ${scheme} and a layout`, async () => {
      const registry = scheme === 'TLS' ? tls : plain;
      const e = env(scheme === 'TLS' ? 'tls' : 'plain');
      const repo = `${registry.host}/json/hello`;
      const run = async (label: string, args: string[], code = 0) => {
        const res = await runCli([...args, '--json'], { env: e, cwd: work.path });
        assert.equal(res.code, code, `${label}: ${res.stderr}`);
        const lines = res.stdout.split('\n').filter(Boolean);
        assert.equal(lines.length, 1, `${label}: one line of JSON on stdout, got ${res.stdout}`);
        const value = JSON.parse(lines[0] as string) as Record<string, unknown>;
        checkShape(label, rows.get(label), value);
        return { value, res };
      };
      const out = (name: string) => join(work.path, `${scheme === 'TLS' ? 'tls' : 'plain'}-${name}`);
      const pushed = (await run('push', ['push', HELLO_WASM, `${repo}:v1`])).value;
      assert.equal((pushed.manifest as { digest: string }).digest.length, 71);
      assert.equal((pushed.layer as { size: number }).size, 151, 'layer is the module');
      assert.equal(pushed.bytesSent, 153, 'module and config');
      const again = (await run('push', ['push', HELLO_WASM, `${repo}:v1`])).value;
      assert.equal(again.bytesSent, 0, 're-push sends nothing');
      const pulled = (await run('pull', ['pull', `${repo}:v1`, '-o', out('pulled.wasm'), '--no-cache']))
        .value;
      assert.deepEqual(pulled.manifest, pushed.manifest, 'pull names the same manifest');
      assert.equal(pulled.bytesReceived, 151);
      const cached = (await run('pull', ['pull', `${repo}:v1`, '-o', out('cached.wasm')])).value;
      await run('pull', ['pull', `${repo}:v1`, '-o', out('cached2.wasm')]).then(({ value }) => {
        assert.equal(value.fromCache, true);
        assert.equal(value.bytesReceived, 0, 'a cached pull downloads nothing');
      });
      assert.equal(typeof cached.fromCache, 'boolean');
      await run('inspect', ['inspect', `${repo}:v1`]);
      await run('inspect', ['inspect', HELLO_WASM]);
      const ran = await run('run', ['run', `${repo}:v1`]);
      assert.equal(ran.value.exitCode, 0);
      assert.match(ran.res.stderr, /Hello from WebAssembly!/, "the module's output goes to stderr");
      await run('run', ['run', HELLO_WASM]);
      const copied = (await run('copy', ['copy', `${repo}:v1`, `${registry.host}/json/copy:v1`])).value;
      assert.deepEqual(copied.references, [`${registry.host}/json/copy:v1`]);
      assert.equal(copied.blobsMounted, 2, 'mounted within one registry');
      const layout = `oci:${out('layout')}:v1`;
      const toLayout = (await run('copy', ['copy', `${repo}:v1`, layout])).value;
      assert.equal(toLayout.bytesSent, 153);
      const all = (await run('copy', ['copy', '--all-tags', repo, `${registry.host}/json/all`])).value;
      assert.deepEqual(
        (all.tags as Array<{ tag: string; skipped: boolean }>).map((t) => [t.tag, t.skipped]),
        [['v1', false]],
      );
      assert.deepEqual(all.failed, []);
      assert.deepEqual((await run('tags', ['tags', repo])).value.tags, ['v1']);
      const note = out('note.json');
      await writeFile(note, '{"note":"attached"}');
      const attached = (
        await run('attach', [
          'attach',
          `${repo}:v1`,
          '--artifact-type',
          'application/vnd.example.note+json',
          note,
        ])
      ).value;
      assert.equal(attached.artifactType, 'application/vnd.example.note+json');
      const tree = (await run('discover', ['discover', `${repo}:v1`])).value as {
        referrers: Array<{ manifest: { digest: string } }>;
      };
      const referrer = (attached.manifest as { digest: string }).digest;
      assert.deepEqual(
        tree.referrers.map((r) => r.manifest.digest),
        [referrer],
      );
      const detached = (await run('detach', ['detach', `${repo}:v1`, referrer])).value;
      assert.equal(detached.detached, referrer);
      const cosign = { ...e, COSIGN_PASSWORD: 'pw' };
      const prefix = out('cosign');
      const keys = await runCli(['generate-key-pair', '--output-key-prefix', prefix, '--json'], {
        env: cosign,
      });
      assert.equal(keys.code, 0, keys.stderr);
      checkShape('generate-key-pair', rows.get('generate-key-pair'), JSON.parse(keys.stdout));
      for (const extra of [[], ['--legacy-tag']]) {
        const signed = await runCli(['sign', `${repo}:v1`, '--key', `${prefix}.key`, ...extra, '--json'], {
          env: cosign,
        });
        assert.equal(signed.code, 0, signed.stderr);
        checkShape('sign', rows.get('sign'), JSON.parse(signed.stdout));
      }
      const verified = (await run('verify', ['verify', `${repo}:v1`, '--key', `${prefix}.pub`])).value;
      assert.deepEqual(
        (verified.signatures as Array<{ kind: string }>).map((s) => s.kind),
        ['bundle', 'legacy'],
      );
      await run('resolve', ['resolve', `${repo}:v1`]);
      await run('resolve', ['resolve', layout]);
      const tagged = (await run('tag', ['tag', `${repo}:v1`, 'v2'])).value;
      assert.deepEqual(tagged.references, [`${repo}:v2`]);
      const got = (await run('manifest get', ['manifest', 'get', `${repo}:v1`])).value;
      assert.equal((got.content as { schemaVersion: number }).schemaVersion, 2);
      const layer = pushed.layer as { digest: string };
      const blob = (await run('blob get', ['blob', 'get', `${repo}@${layer.digest}`, '-o', out('blob')]))
        .value;
      assert.equal(blob.bytesReceived, 151);
      const deleted = (
        await run('manifest delete', ['manifest', 'delete', `${registry.host}/json/copy:v1`, '-f'])
      ).value;
      assert.equal(deleted.resolvedFromTag, 'v1');
      await run('cache ls', ['cache', 'ls']);
      await run('cache prune', ['cache', 'prune']);
      await run('version', ['version']);
      await run('completion', ['completion', 'bash']);
      const login = await runCli(['login', registry.host, '-u', 'alice', '--password-stdin', '--json'], {
        env: e,
        input: 'secret\n',
      });
      assert.equal(login.code, 0, login.stderr);
      checkShape('login', rows.get('login'), JSON.parse(login.stdout));
      assert.doesNotMatch(login.stdout + login.stderr, /secret/, 'the password is never printed');
      await run('logout', ['logout', registry.host]);
    });
  }

  it('prints errors as one JSON object on stderr, with the exit code of the error', async () => {
    const e = env('errors');
    const cases: Array<[string[], number, string]> = [
      [['pull', `${plain.host}/json/none:v1`, '-o', join(work.path, 'none.wasm')], 1, 'NOT_FOUND'],
      [['pull'], 2, 'USAGE'],
      [['frob'], 2, 'USAGE'],
      [['push', HELLO_WASM, 'not a reference!'], 2, 'INVALID_REFERENCE'],
      [['tags', `oci:${join(work.path, 'no-such-layout')}`], 1, 'NOT_FOUND'],
      [['pull', `${plain.host}/json/hello:v1`, '-o', '-'], 2, 'USAGE'],
    ];
    for (const [args, code, errorCode] of cases) {
      const res = await runCli([...args, '--json'], { env: e, cwd: work.path });
      assert.equal(res.code, code, `${args.join(' ')}: ${res.stderr}`);
      assert.equal(res.stdout, '', 'nothing on stdout');
      const lines = res.stderr.split('\n').filter(Boolean);
      assert.equal(lines.length, 1, `one line: ${res.stderr}`);
      const parsed = JSON.parse(lines[0] as string) as { error: Record<string, unknown> };
      assert.deepEqual(Object.keys(parsed), ['error']);
      assert.equal(parsed.error.code, errorCode, res.stderr);
      assert.equal(typeof parsed.error.message, 'string');
      for (const key of Object.keys(parsed.error)) assert.ok(['code', 'message', 'hint'].includes(key), key);
    }
    // Without --json the same error stays text.
    const text = await runCli(['pull'], { env: e });
    assert.match(text.stderr, /^Error: missing required argument/);
  });
});
