import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { openRepository } from '../../src/ops/target.js';
import { parseReference } from '../../src/reference.js';
import { registryCertificates } from '../harness/certs.js';
import { runCli } from '../harness/cli.js';
import { cliEnv, HELLO_WASM, tempDir, writeLargeWasm } from '../harness/fixtures.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';
import { runInTerminal } from '../harness/terminal.js';

// cosign-compatible signatures with a key pair, through the built CLI, against the real Distribution
// registry (no referrers API: the bundle referrer is listed in the sha256-<hex> index) over plain HTTP
// and TLS, and in an OCI layout. Signatures made here with node:crypto from cosign's spec are
// verified by `verify`, and what `sign` writes is checked by code written here from the specs.

const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const SIMPLE = 'application/vnd.dev.cosign.simplesigning.v1+json';
const PASSWORD = 'correct horse';

let work: Awaited<ReturnType<typeof tempDir>>;
let plain: RegistryServer;
let tls: RegistryServer;
let caPem: string;
let caFile: string;
let keys: string;

const env = (extra: NodeJS.ProcessEnv = {}) =>
  cliEnv(work.path, caFile, { COSIGN_PASSWORD: PASSWORD, ...extra });
const cli = (args: string[], extra?: NodeJS.ProcessEnv) => runCli(args, { env: env(extra), cwd: work.path });
const sha = (b: Uint8Array | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function ok(args: string[], extra?: NodeJS.ProcessEnv) {
  const res = await cli(args, extra);
  assert.equal(res.code, 0, `${args.join(' ')}\n${res.stderr}`);
  return res;
}

/** A refusal: exit 1, one `Error:` line (and maybe a hint), no stack trace. */
async function refused(args: string[], pattern: RegExp, extra?: NodeJS.ProcessEnv) {
  const res = await cli(args, extra);
  assert.equal(res.code, 1, `${args.join(' ')}\n${res.stdout}${res.stderr}`);
  const lines = res.stderr.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^Error: /);
  assert.ok(lines.length <= 2 && !/\n\s+at /.test(res.stderr), res.stderr);
  assert.match(res.stderr, pattern);
  return res;
}

before(async () => {
  work = await tempDir();
  const certs = await registryCertificates(work.path);
  ({ caPem, caFile } = certs);
  plain = await startRegistry();
  tls = await startRegistry({ tls: certs.tls });
  keys = join(work.path, 'cosign');
  await ok(['generate-key-pair']);
  await ok(['generate-key-pair', '--output-key-prefix', 'other']);
});
after(async () => {
  await plain?.stop();
  await tls?.stop();
  await work?.remove();
});

/** The registry's manifest bytes and descriptor for a reference, read with the library. */
async function manifestOf(host: string, repo: string, reference: string) {
  const target = openRepository(parseReference(`${host}/${repo}`), 'pull', { ca: [caPem] });
  try {
    const desc = await target.resolve(reference);
    const chunks: Buffer[] = [];
    for await (const c of await target.fetch(desc)) chunks.push(c as Buffer);
    return { desc, bytes: Buffer.concat(chunks), json: JSON.parse(Buffer.concat(chunks).toString()) };
  } finally {
    target.client.close();
  }
}

async function blobOf(host: string, repo: string, desc: Descriptor): Promise<Buffer> {
  const target = openRepository(parseReference(`${host}/${repo}`), 'pull', { ca: [caPem] });
  try {
    const chunks: Buffer[] = [];
    for await (const c of await target.fetch(desc)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  } finally {
    target.client.close();
  }
}

describe('generate-key-pair', () => {
  it('writes cosign.key (0600, the encrypted PEM type cosign writes) and cosign.pub, and refuses to overwrite', async () => {
    const key = await readFile(`${keys}.key`, 'utf8');
    assert.match(
      key,
      /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n$/,
    );
    assert.equal((await stat(`${keys}.key`)).mode & 0o777, 0o600);
    const pub = await readFile(`${keys}.pub`, 'utf8');
    const publicKey = createPublicKey(pub);
    assert.equal(publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    await refused(['generate-key-pair'], /cosign\.key exists: not overwriting it/);
    assert.equal(await readFile(`${keys}.key`, 'utf8'), key, 'untouched');
    const again = await ok(['generate-key-pair', '--output-key-prefix', 'third', '-f', '--json']);
    assert.deepEqual(JSON.parse(again.stdout), { privateKey: 'third.key', publicKey: 'third.pub' });
    await ok(['generate-key-pair', '--output-key-prefix', 'third', '-f']);
    assert.notEqual(
      await readFile(join(work.path, 'third.pub'), 'utf8'),
      await readFile(`${keys}.pub`, 'utf8'),
    );
  });

  it('without COSIGN_PASSWORD and without a terminal, says which variable to set', async () => {
    const res = await runCli(['generate-key-pair', '--output-key-prefix', 'none'], {
      env: { ...env(), COSIGN_PASSWORD: undefined },
      cwd: work.path,
    });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^Error: no password for the cosign key\nHint: set COSIGN_PASSWORD/);
    await assert.rejects(stat(join(work.path, 'none.key')), { code: 'ENOENT' });
  });

  it('asks twice on a terminal, echoes nothing, and Ctrl-C exits 130 with no file', async () => {
    const typed = await runInTerminal(['generate-key-pair', '--output-key-prefix', 'typed'], {
      dir: work.path,
      env: { ...env(), COSIGN_PASSWORD: undefined },
      steps: [
        { after: /Enter password for private key: /, type: 'pw1\r' },
        { after: /again: /, type: 'pw1\r' },
      ],
    });
    assert.equal(typed.code, 0, typed.output);
    assert.ok(!typed.output.includes('pw1'));
    const cancelled = await runInTerminal(['generate-key-pair', '--output-key-prefix', 'cancel'], {
      dir: work.path,
      env: { ...env(), COSIGN_PASSWORD: undefined },
      steps: [{ after: /Enter password for private key: /, type: '\x03' }],
    });
    assert.equal(cancelled.code, 130, cancelled.output);
    await assert.rejects(stat(join(work.path, 'cancel.key')), { code: 'ENOENT' });
    // Ctrl-C at sign's password prompt: 130, and nothing is written to the layout.
    const layout = join(work.path, 'prompt-layout');
    await ok(['push', HELLO_WASM, `oci:${layout}:v1`]);
    const signing = await runInTerminal(['sign', `oci:${layout}:v1`, '--key', `${keys}.key`], {
      dir: work.path,
      env: { ...env(), COSIGN_PASSWORD: undefined },
      steps: [{ after: /Enter password for private key: /, type: '\x03' }],
    });
    assert.equal(signing.code, 130, signing.output);
    assert.deepEqual((await ok(['tags', `oci:${layout}`])).stdout, 'v1\n');
  });
});

/** Checks the bundle referrer of `subject` with code written from the specs, not ours. */
async function independentBundleCheck(host: string, repo: string, subject: string, publicKey: KeyObject) {
  const index = await manifestOf(host, repo, `sha256-${subject.slice(7)}`);
  assert.equal(index.json.mediaType, 'application/vnd.oci.image.index.v1+json');
  const entries = (index.json.manifests as Descriptor[]).filter((m) => m.artifactType === BUNDLE);
  assert.ok(entries.length >= 1, 'listed in the fallback index, with its artifactType');
  for (const entry of entries) {
    assert.equal(
      entry.annotations?.['dev.sigstore.bundle.predicateType'],
      'https://sigstore.dev/cosign/sign/v1',
    );
    const referrer = await manifestOf(host, repo, entry.digest);
    assert.equal(referrer.json.subject.digest, subject);
    assert.equal(referrer.json.artifactType, BUNDLE);
    assert.deepEqual(referrer.json.config, {
      mediaType: 'application/vnd.oci.empty.v1+json',
      digest: sha('{}'),
      size: 2,
    });
    assert.equal(referrer.json.annotations['dev.sigstore.bundle.content'], 'dsse-envelope');
    assert.match(
      referrer.json.annotations['org.opencontainers.image.created'],
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    );
    const bundle = JSON.parse((await blobOf(host, repo, referrer.json.layers[0])).toString());
    assert.equal(bundle.mediaType, BUNDLE);
    const envelope = bundle.dsseEnvelope;
    const payload = Buffer.from(envelope.payload, 'base64');
    const type = Buffer.from(envelope.payloadType);
    const pae = Buffer.concat([
      Buffer.from(`DSSEv1 ${type.length} `),
      type,
      Buffer.from(` ${payload.length} `),
      payload,
    ]);
    assert.ok(
      verify(
        'sha256',
        pae,
        { key: publicKey, dsaEncoding: 'der' },
        Buffer.from(envelope.signatures[0].sig, 'base64'),
      ),
    );
    const statement = JSON.parse(payload.toString());
    assert.equal(statement._type, 'https://in-toto.io/Statement/v1');
    assert.equal(`sha256:${statement.subject[0].digest.sha256}`, subject);
  }
}

/**
 * Checks the `.sig` tag's signatures with code written from SIGNATURE_SPEC.md: every payload names the
 * subject; the result says which layers verify with `publicKey`.
 */
async function independentLegacyCheck(host: string, repo: string, subject: string, publicKey: KeyObject) {
  const sig = await manifestOf(host, repo, `sha256-${subject.slice(7)}.sig`);
  const verified: boolean[] = [];
  for (const layer of sig.json.layers as Descriptor[]) {
    assert.equal(layer.mediaType, SIMPLE);
    const payload = await blobOf(host, repo, layer);
    const signature = Buffer.from(layer.annotations?.['dev.cosignproject.cosign/signature'] ?? '', 'base64');
    verified.push(verify('sha256', payload, { key: publicKey, dsaEncoding: 'der' }, signature));
    const parsed = JSON.parse(payload.toString());
    assert.equal(parsed.critical.type, 'cosign container image signature');
    assert.equal(parsed.critical.image['docker-manifest-digest'], subject);
    assert.equal(parsed.critical.identity['docker-reference'], `${host}/${repo}`);
  }
  return verified;
}

for (const scheme of ['plain HTTP', 'TLS'] as const) {
  describe(`sign, verify, push --sign-key, pull --verify-key (${scheme})`, () => {
    const host = () => (scheme === 'TLS' ? tls.host : plain.host);
    const repo = `cosign/${scheme === 'TLS' ? 'tls' : 'plain'}`;

    it('push --sign-key attaches a bundle; verify and pull --verify-key accept it, 15 times', async () => {
      const ref = `${host()}/${repo}:v1`;
      const pushed = await ok(['push', HELLO_WASM, ref, '--sign-key', `${keys}.key`, '--json']);
      const result = JSON.parse(pushed.stdout);
      assert.equal(result.cosignSignature.kind, 'bundle');
      const publicKey = createPublicKey(await readFile(`${keys}.pub`, 'utf8'));
      await independentBundleCheck(host(), repo, result.manifest.digest, publicKey);
      for (let run = 0; run < 15; run++) {
        const verified = await ok(['verify', ref, '--key', `${keys}.pub`, '--json']);
        const json = JSON.parse(verified.stdout);
        assert.equal(json.subject.digest, result.manifest.digest);
        assert.deepEqual(
          json.signatures.map((s: { kind: string; verified: boolean }) => [s.kind, s.verified]),
          [['bundle', true]],
        );
        const out = join(work.path, `pulled-${scheme}-${run}.wasm`);
        const pulled = await ok(['pull', ref, '--verify-key', `${keys}.pub`, '-o', out]);
        assert.match(pulled.stdout, /Verified: 1 cosign signature \(bundle\)/);
        assert.deepEqual(await readFile(out), await readFile(HELLO_WASM));
      }
      // copy -r takes the referrer along (through the sha256-<hex> index): it verifies in the copy.
      const copied = `oci:${join(work.path, `copied-${scheme === 'TLS' ? 'tls' : 'plain'}`)}:v1`;
      await ok(['copy', '-r', ref, copied]);
      await ok(['verify', copied, '--key', `${keys}.pub`]);
    });

    it('sign --legacy-tag appends to the .sig tag (cosign 1/2), and signing twice keeps one signature per key', async () => {
      const ref = `${host()}/${repo}:legacy`;
      // Another manifest than v1's (an annotation), so the signatures of the two tests do not meet.
      await ok(['push', HELLO_WASM, ref, '-a', 'test=legacy']);
      const signed = JSON.parse(
        (await ok(['sign', ref, '--key', `${keys}.key`, '--legacy-tag', '--json'])).stdout,
      );
      assert.equal(signed.signature.kind, 'legacy');
      const again = JSON.parse(
        (await ok(['sign', ref, '--key', `${keys}.key`, '--legacy-tag', '--json'])).stdout,
      );
      assert.equal(again.signature.existed, true);
      await ok(['sign', ref, '--key', 'other.key', '--legacy-tag'], { COSIGN_PASSWORD: PASSWORD });
      const subject = signed.subject.digest as string;
      const sig = await manifestOf(host(), repo, `sha256-${subject.slice(7)}.sig`);
      assert.equal(sig.json.layers.length, 2, 'our key once, the other key appended');
      const ours = createPublicKey(await readFile(`${keys}.pub`, 'utf8'));
      const others = createPublicKey(await readFile(join(work.path, 'other.pub'), 'utf8'));
      assert.deepEqual(await independentLegacyCheck(host(), repo, subject, ours), [true, false]);
      assert.deepEqual(await independentLegacyCheck(host(), repo, subject, others), [false, true]);
      const text = await ok(['verify', ref, '--key', `${keys}.pub`]);
      assert.match(text.stdout, /^Verified: .*@sha256:[0-9a-f]{64} \(1 of 2 signatures\)\n/);
      assert.match(text.stdout, /OK {3}\.sig/);
      assert.match(text.stdout, /FAIL \.sig .*does not verify with this key/);
      // Both kinds at once: a bundle too.
      await ok(['sign', ref, '--key', `${keys}.key`]);
      const both = JSON.parse((await ok(['verify', ref, '--key', `${keys}.pub`, '--json'])).stdout);
      assert.deepEqual(
        both.signatures.map((s: { kind: string; verified: boolean }) => [s.kind, s.verified]),
        [
          ['bundle', true],
          ['legacy', true],
          ['legacy', false],
        ],
      );
    });

    it('the wrong key, an unsigned manifest and a wrong password are refused; pull writes nothing', async () => {
      const ref = `${host()}/${repo}:v1`;
      await refused(['verify', ref, '--key', 'other.pub'], /no signature of .* verifies with this key/);
      await ok(['push', HELLO_WASM, `${host()}/${repo}:unsigned`, '-a', 'test=unsigned']);
      await refused(
        ['verify', `${host()}/${repo}:unsigned`, '--key', `${keys}.pub`],
        /has no cosign signature/,
      );
      const out = join(work.path, `refused-${scheme}.wasm`);
      await refused(['pull', ref, '--verify-key', 'other.pub', '-o', out], /verifies with this key/);
      await assert.rejects(stat(out), { code: 'ENOENT' });
      const existing = join(work.path, `existing-${scheme}.wasm`);
      await writeFile(existing, 'keep me');
      await refused(
        ['pull', `${host()}/${repo}:unsigned`, '--verify-key', `${keys}.pub`, '-o', existing],
        /no cosign signature/,
      );
      assert.equal(await readFile(existing, 'utf8'), 'keep me');
      // A wrong password fails before anything is pushed: the tag does not appear.
      await refused(
        ['push', HELLO_WASM, `${host()}/${repo}:never`, '--sign-key', `${keys}.key`],
        /wrong password/,
        {
          COSIGN_PASSWORD: 'wrong',
        },
      );
      const tags = await ok(['tags', `${host()}/${repo}`]);
      assert.ok(!tags.stdout.split('\n').includes('never'), tags.stdout);
      await refused(['sign', ref, '--key', `${keys}.key`], /wrong password/, { COSIGN_PASSWORD: 'wrong' });
      await refused(
        ['sign', ref, '--key', `${keys}.pub`],
        /that is the public key|not an encrypted cosign private key/,
      );
    });
  });
}

describe('a medium module over TLS', () => {
  it('push --sign-key of 24 MiB (the streamed, single-pass push) and pull --verify-key of it', async () => {
    const big = join(work.path, 'big.wasm');
    await writeLargeWasm(big, 24 * 1024 * 1024);
    const ref = `${tls.host}/cosign/big:v1`;
    const pushed = JSON.parse((await ok(['push', big, ref, '--sign-key', `${keys}.key`, '--json'])).stdout);
    assert.equal(pushed.cosignSignature.kind, 'bundle');
    await independentBundleCheck(
      tls.host,
      'cosign/big',
      pushed.manifest.digest,
      createPublicKey(await readFile(`${keys}.pub`, 'utf8')),
    );
    const out = join(work.path, 'big-out.wasm');
    await ok(['pull', ref, '--verify-key', `${keys}.pub`, '-o', out]);
    assert.equal((await stat(out)).size, 24 * 1024 * 1024);
    await refused(
      ['pull', ref, '--verify-key', 'other.pub', '-o', join(work.path, 'big-no.wasm')],
      /verifies/,
    );
    await assert.rejects(stat(join(work.path, 'big-no.wasm')), { code: 'ENOENT' });
  });
});

describe('concurrent signers', () => {
  it('10 processes signing one manifest at once: every bundle is listed in the index afterwards', async () => {
    const ref = `${plain.host}/cosign/race:v1`;
    const pushed = JSON.parse((await ok(['push', HELLO_WASM, ref, '-a', 'test=race', '--json'])).stdout);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => ok(['sign', ref, '--key', `${keys}.key`, '--json'])),
    );
    const written = results.map((r) => JSON.parse(r.stdout).signature.manifest.digest as string);
    assert.equal(new Set(written).size, 10);
    const index = await manifestOf(plain.host, 'cosign/race', `sha256-${pushed.manifest.digest.slice(7)}`);
    const listed = (index.json.manifests as Descriptor[]).map((m) => m.digest);
    assert.deepEqual([...new Set(listed)].sort(), [...written].sort(), 'no entry lost, none twice');
    const verified = JSON.parse((await ok(['verify', ref, '--key', `${keys}.pub`, '--json'])).stdout);
    assert.equal(verified.signatures.filter((s: { verified: boolean }) => s.verified).length, 10);
  });
});

describe('signatures made from the spec with node:crypto', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const other = `sha256:${'0'.repeat(64)}`;

  /** Pushes a `.sig` manifest for `subject` whose payload names `named`, signed over `signedBytes`. */
  async function pushLegacy(repo: string, subject: string, named: string, tamper = false) {
    const target = openRepository(parseReference(`${plain.host}/${repo}`), 'push', {});
    try {
      const payload = Buffer.from(
        `{"critical":{"identity":{"docker-reference":"${plain.host}/${repo}"},"image":{"docker-manifest-digest":"${named}"},"type":"cosign container image signature"},"optional":{"by":"test"}}`,
      );
      const signature = sign('sha256', payload, { key: privateKey, dsaEncoding: 'der' }).toString('base64');
      const stored = tamper ? Buffer.from(payload.toString().replace('"test"', '"evil"')) : payload;
      const layer = { mediaType: SIMPLE, digest: sha(stored), size: stored.length };
      await target.push(layer, stored);
      const config = Buffer.from('{}');
      const configDesc = {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha(config),
        size: 2,
      };
      await target.push(configDesc, config);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: configDesc,
          layers: [{ ...layer, annotations: { 'dev.cosignproject.cosign/signature': signature } }],
        }),
      );
      const desc = {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: sha(manifest),
        size: manifest.length,
      };
      await target.pushReference(desc, manifest, `sha256-${subject.slice(7)}.sig`);
    } finally {
      target.client.close();
    }
  }

  it('verify accepts one made as the spec says, and refuses a tampered payload and another digest', async () => {
    const pub = join(work.path, 'spec.pub');
    await writeFile(pub, publicKey.export({ format: 'pem', type: 'spki' }));
    for (const [repo, tamper, names] of [
      ['spec/good', false, 'subject'],
      ['spec/tampered', true, 'subject'],
      ['spec/other', false, 'other'],
    ] as const) {
      const pushed = JSON.parse(
        (await ok(['push', HELLO_WASM, `${plain.host}/${repo}:v1`, '--json'])).stdout,
      );
      await pushLegacy(
        repo,
        pushed.manifest.digest,
        names === 'subject' ? pushed.manifest.digest : other,
        tamper,
      );
      const args = ['verify', `${plain.host}/${repo}:v1`, '--key', pub];
      if (repo === 'spec/good') await ok(args);
      else await refused(args, tamper ? /does not verify with this key/ : /names sha256:0{64}, not sha256:/);
    }
  });
});

describe('an OCI layout', () => {
  it('signs (both kinds), verifies and pulls with --verify-key, without a registry', async () => {
    const layout = `oci:${join(work.path, 'layout')}`;
    await ok(['push', HELLO_WASM, `${layout}:v1`, '--sign-key', `${keys}.key`]);
    await ok(['sign', `${layout}:v1`, '--key', `${keys}.key`, '--legacy-tag']);
    const verified = JSON.parse(
      (await ok(['verify', `${layout}:v1`, '--key', `${keys}.pub`, '--json'])).stdout,
    );
    assert.deepEqual(
      verified.signatures.map((s: { kind: string; verified: boolean }) => [s.kind, s.verified]),
      [
        ['bundle', true],
        ['legacy', true],
      ],
    );
    const tags = (await ok(['tags', layout])).stdout.trim().split('\n');
    const hex = verified.subject.digest.slice(7);
    assert.deepEqual(tags.sort(), [`sha256-${hex}`, `sha256-${hex}.sig`, 'v1'].sort());
    const out = join(work.path, 'from-layout.wasm');
    await ok(['pull', `${layout}:v1`, '--verify-key', `${keys}.pub`, '-o', out]);
    assert.deepEqual(await readFile(out), await readFile(HELLO_WASM));
    await refused(
      ['pull', `${layout}:v1`, '--verify-key', 'other.pub', '-o', join(work.path, 'no.wasm')],
      /verifies/,
    );
    await assert.rejects(stat(join(work.path, 'no.wasm')), { code: 'ENOENT' });
  });
});
