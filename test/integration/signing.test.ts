import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hasCode } from '../../src/errors.js';
import { pull } from '../../src/ops/pull.js';
import { push } from '../../src/ops/push.js';
import type { PassphraseSource } from '../../src/sign/index.js';
import { HELLO_WASM, tempDir, writeLargeWasm } from '../harness/fixtures.js';
import { type NotaryServer, startNotaryServer } from '../harness/notary.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

/** The signing API of the library (`push({ sign })`, `pull({ verify })`) against the real servers. */

let registry: RegistryServer;
let notary: NotaryServer;
let work: Awaited<ReturnType<typeof tempDir>>;

before(async () => {
  work = await tempDir();
  [registry, notary] = await Promise.all([startRegistry(), startNotaryServer()]);
});
after(async () => {
  await Promise.all([registry?.stop(), notary?.stop()]);
  await work?.remove();
});

const asked: string[] = [];
const passphrases: PassphraseSource = async (request) => {
  asked.push(`${request.role}${request.create ? ' (new)' : ''}`);
  return request.attempt === 1 ? `library-${request.role}-passphrase` : undefined;
};

const DAY = 86_400_000;

describe('library signing API', () => {
  it('push({ sign }) then pull({ verify }); stale trust data is refused by expiry', async () => {
    const reference = `${registry.host}/lib/hello:v1`;
    const signer = join(work.path, 'signer');
    const pushed = await push({
      file: HELLO_WASM,
      reference,
      sign: { server: notary.url, dir: signer, passphrases },
    });
    assert.deepEqual(pushed.signed, {
      collection: `${registry.host}/lib/hello`,
      server: `${notary.url}/`,
      targets: ['v1'],
      created: true,
    });
    assert.deepEqual(asked, ['root (new)', 'targets (new)', 'snapshot (new)']);

    const verifier = join(work.path, 'verifier');
    const output = join(work.path, 'lib.wasm');
    const pulled = await pull({ reference, output, verify: { server: notary.url, dir: verifier } });
    assert.deepEqual(pulled.verified, {
      collection: `${registry.host}/lib/hello`,
      target: 'v1',
      role: 'targets',
      server: `${notary.url}/`,
    });
    assert.deepEqual(await readFile(output), await readFile(HELLO_WASM));

    // The server signs timestamps for 14 days: seen 15 days from now, the data is stale.
    const stale = join(work.path, 'stale.wasm');
    await assert.rejects(
      pull({
        reference,
        output: stale,
        verify: { server: notary.url, dir: verifier, now: new Date(Date.now() + 15 * DAY) },
      }),
      (err) => hasCode(err, 'TRUST') && /timestamp metadata of .* expired on/.test(err.message),
    );
    await assert.rejects(stat(stale), { code: 'ENOENT' });
    // And 11 years from now the root itself has expired.
    await assert.rejects(
      pull({
        reference,
        output: stale,
        verify: { server: notary.url, dir: verifier, now: new Date(Date.now() + 4020 * DAY) },
      }),
      (err) => hasCode(err, 'TRUST') && /root metadata of .* expired on/.test(err.message),
    );
  });

  it('a large module streamed from disk is signed and verified (SHA-512 checked on the bytes written)', async () => {
    const file = join(work.path, 'large.wasm');
    await writeLargeWasm(file, 20 * 1024 * 1024);
    const reference = `${registry.host}/lib/large:v1`;
    const dir = join(work.path, 'signer');
    const pushed = await push({
      file,
      reference,
      tags: ['stable'],
      sign: { server: notary.url, dir, passphrases },
    });
    assert.deepEqual(pushed.signed?.targets, ['v1', 'stable'], 'every tag is a signed target');
    const output = join(work.path, 'large-out.wasm');
    const pulled = await pull({
      reference,
      output,
      verify: { server: notary.url, dir: join(work.path, 'v2') },
    });
    assert.equal(pulled.size, 20 * 1024 * 1024);
    assert.deepEqual(await readFile(output), await readFile(file));
    const stable = await pull({
      reference: `${registry.host}/lib/large:stable`,
      output,
      verify: { server: notary.url, dir: join(work.path, 'v2') },
    });
    assert.equal(stable.verified?.target, 'stable');
  });

  it('a wrong passphrase from the library source is a PASSPHRASE error and nothing is pushed', async () => {
    const reference = `${registry.host}/lib/wrong:v1`;
    const dir = join(work.path, 'signer');
    // The root key exists (from the first test); a wrong passphrase for it stops the push.
    await assert.rejects(
      push({
        file: HELLO_WASM,
        reference,
        sign: { server: notary.url, dir, passphrases: async () => 'wrong' },
      }),
      (err) => hasCode(err, 'PASSPHRASE') && /wrong passphrase for the root key/.test(err.message),
    );
    await assert.rejects(pull({ reference, output: join(work.path, 'w.wasm') }), (err) =>
      hasCode(err, 'NOT_FOUND'),
    );
  });
});
