import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../harness/cli.js';
import { HELLO_WASM, TESTDATA, tempDir } from '../harness/fixtures.js';
import {
  type NotaryServer,
  runNotary,
  startNotaryServer,
  startTrustFixture,
  type TrustFixture,
  trustPath,
} from '../harness/notary.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

/**
 * Notary v1 signing end to end: the built CLI against the real Distribution registry and the real
 * notary-server, with the real `notary` CLI on the other side of every interop check.
 */

const EXIT3_WASM = join(TESTDATA, 'exit3.wasm');
const PASSPHRASES = {
  SIGNY_ROOT_PASSPHRASE: 'root-Passphrase-never-printed',
  SIGNY_TARGETS_PASSPHRASE: 'targets-Passphrase-never-printed',
  SIGNY_SNAPSHOT_PASSPHRASE: 'snapshot-Passphrase-never-printed',
};

let registry: RegistryServer;
let notary: NotaryServer;
let fixture: TrustFixture;
let work: Awaited<ReturnType<typeof tempDir>>;

before(async () => {
  work = await tempDir();
  [registry, notary] = await Promise.all([startRegistry(), startNotaryServer()]);
  fixture = await startTrustFixture(notary.url);
});
after(async () => {
  await fixture?.stop();
  await Promise.all([registry?.stop(), notary?.stop()]);
  await work?.remove();
});

let n = 0;
/** A fresh user: HOME, cache, and trust directory. */
function user(env: Record<string, string> = PASSPHRASES) {
  const home = join(work.path, `user${n++}`);
  return {
    home,
    trustDir: join(home, '.wasm-to-oci'),
    env: {
      HOME: home,
      DOCKER_CONFIG: join(home, '.docker'),
      XDG_CACHE_HOME: join(home, 'cache'),
      SIGNY_ROOT_PASSPHRASE: '',
      SIGNY_TARGETS_PASSPHRASE: '',
      SIGNY_SNAPSHOT_PASSPHRASE: '',
      ...env,
    },
  };
}

const cli = (args: string[], env: NodeJS.ProcessEnv) => runCli(args, { env, cwd: work.path });
const sha256hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function signFlags(server = notary.url): string[] {
  return ['--sign', '--server', server];
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function assertNoSecrets(...outputs: string[]): void {
  for (const out of outputs) {
    for (const secret of Object.values(PASSPHRASES)) assert.ok(!out.includes(secret), 'a passphrase leaked');
    assert.ok(!out.includes('PRIVATE KEY'), 'key material leaked');
  }
}

describe('push --sign and pull --sign', () => {
  it('round trip: the first push creates the collection, pull verifies it on first use', async () => {
    const alice = user();
    const ref = `${registry.host}/round/hello:v1`;
    const push = await cli(['push', HELLO_WASM, ref, ...signFlags()], alice.env);
    assert.equal(push.code, 0, push.stderr);
    assert.match(
      push.stdout,
      new RegExp(`^Pushed: ${ref}\nSize: 151\nDigest: sha256:[0-9a-f]{64}\nSigned: ${ref}\n$`),
    );
    assert.match(push.stderr, /Created the trusted collection 127\.0\.0\.1:\d+\/round\/hello/);
    assertNoSecrets(push.stdout, push.stderr);

    // Keys: three files 0600 in a 0700 directory, Notary's layout, encrypted.
    const keys = await readdir(join(alice.trustDir, 'private'));
    assert.equal(keys.length, 3);
    assert.equal((await stat(alice.trustDir)).mode & 0o777, 0o700);
    assert.equal((await stat(join(alice.trustDir, 'private'))).mode & 0o777, 0o700);
    const roles: string[] = [];
    for (const name of keys) {
      assert.match(name, /^[0-9a-f]{64}\.key$/);
      const path = join(alice.trustDir, 'private', name);
      assert.equal((await stat(path)).mode & 0o777, 0o600);
      const text = await readFile(path, 'utf8');
      assert.match(text, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
      roles.push(/role: (\S+)/.exec(text)?.[1] ?? '');
    }
    assert.deepEqual(roles.sort(), ['root', 'snapshot', 'targets']);

    const bob = user({});
    const out = join(work.path, 'round.wasm');
    const pull = await cli(['pull', ref, '-o', out, ...signFlags()], bob.env);
    assert.equal(pull.code, 0, pull.stderr);
    assert.match(
      pull.stdout,
      new RegExp(`Verified: ${registry.host}/round/hello:v1 \\(signed by targets\\)\n$`),
    );
    assert.deepEqual(await readFile(out), await readFile(HELLO_WASM));
    // Bob pinned the root on first use.
    assert.ok(
      await exists(join(bob.trustDir, 'tuf', registry.host, 'round', 'hello', 'metadata', 'root.json')),
    );

    // A second push (another tag) updates the collection with the same keys.
    const v2 = await cli(['push', EXIT3_WASM, `${registry.host}/round/hello:v2`, ...signFlags()], alice.env);
    assert.equal(v2.code, 0, v2.stderr);
    assert.doesNotMatch(v2.stderr, /Created/);
    assert.equal((await readdir(join(alice.trustDir, 'private'))).length, 3);
    const pull2 = await cli(
      ['pull', `${registry.host}/round/hello:v2`, '-o', out, '--verify', '--server', notary.url],
      bob.env,
    );
    assert.equal(pull2.code, 0, pull2.stderr);
    assert.deepEqual(await readFile(out), await readFile(EXIT3_WASM));
    // v1 is still signed after v2 was added.
    const again = await cli(['pull', ref, '-o', out, ...signFlags()], bob.env);
    assert.equal(again.code, 0, again.stderr);
  });

  it('the default tag is the signed target "latest"; --json reports what was signed', async () => {
    const alice = user();
    const ref = `${registry.host}/defaulted/hello`;
    const push = await cli(['push', HELLO_WASM, ref, '--json', ...signFlags()], alice.env);
    assert.equal(push.code, 0, push.stderr);
    const result = JSON.parse(push.stdout) as {
      signed: { collection: string; targets: string[]; created: boolean };
    };
    assert.deepEqual(result.signed.targets, ['latest']);
    assert.equal(result.signed.collection, `${registry.host}/defaulted/hello`);
    assert.equal(result.signed.created, true);
    const pull = await cli(
      ['pull', ref, '-o', join(work.path, 'd.wasm'), '--json', ...signFlags()],
      user({}).env,
    );
    assert.equal(pull.code, 0, pull.stderr);
    assert.equal((JSON.parse(pull.stdout) as { verified: { target: string } }).verified.target, 'latest');
  });

  it('the root key of the trust directory is reused for a new collection', async () => {
    const alice = user();
    assert.equal(
      (await cli(['push', HELLO_WASM, `${registry.host}/reuse/a:v1`, ...signFlags()], alice.env)).code,
      0,
    );
    const push = await cli(['push', HELLO_WASM, `${registry.host}/reuse/b:v1`, ...signFlags()], alice.env);
    assert.equal(push.code, 0, push.stderr);
    const keys = await readdir(join(alice.trustDir, 'private'));
    const roles = await Promise.all(
      keys.map(
        async (k) => /role: (\S+)/.exec(await readFile(join(alice.trustDir, 'private', k), 'utf8'))?.[1],
      ),
    );
    assert.equal(roles.filter((r) => r === 'root').length, 1, 'one root key for both collections');
    assert.equal(roles.length, 5);
  });
});

describe('passphrases on a terminal', () => {
  it('asks twice for each new key and again after a wrong one, echoing nothing (under script(1))', async () => {
    const { execFile } = await import('node:child_process');
    const { CLI } = await import('../harness/cli.js');
    const alice = user({});
    const ref = `${registry.host}/tty/hello:v1`;
    const run = (typed: string[], file: string) => {
      const keys = typed.map((t) => `sleep 0.8; printf '${t}\\r'`).join('; ');
      const command =
        `(sleep 0.5; ${keys}; sleep 1.5) | script -qec "${process.execPath} ${CLI} push ${file} ${ref} ` +
        `--sign --server ${notary.url}" /dev/null`;
      return new Promise<string>((resolve, reject) =>
        execFile('sh', ['-c', command], { env: { ...process.env, ...alice.env } }, (err, stdout) =>
          err ? reject(err) : resolve(stdout),
        ),
      );
    };
    const root = 'tty-root-passphrase';
    const targets = 'tty-targets-passphrase';
    const snapshot = 'tty-snapshot-passphrase';
    const first = await run([root, root, 'short', targets, targets, snapshot, snapshot], HELLO_WASM);
    assert.match(first, /Enter a passphrase for the new root key: /);
    assert.match(first, /The passphrase must have at least 8 characters/);
    assert.match(first, /Enter a passphrase for the new targets key of 127\.0\.0\.1:\d+\/tty\/hello: /);
    assert.match(first, /Repeat the passphrase: /);
    assert.match(first, /Signed: /);
    for (const secret of [root, targets, snapshot])
      assert.ok(!first.includes(secret), 'a passphrase was echoed');
    // Next push: the existing keys' passphrases are asked, a wrong one once more.
    const second = await run(['wrong-passphrase', targets, snapshot], EXIT3_WASM);
    assert.match(second, /Passphrase for the targets key of 127\.0\.0\.1:\d+\/tty\/hello \([0-9a-f]{7}\): /);
    assert.match(second, /Wrong passphrase, try again\./);
    assert.match(second, /Signed: /);
    const pull = await cli(['pull', ref, '-o', '-', ...signFlags()], user({}).env);
    assert.equal(pull.code, 0, pull.stderr);
    assert.equal(pull.stdout, (await readFile(EXIT3_WASM)).toString());
    assert.match(pull.stderr, /Verified: /);
  });
});

describe('interop with the notary CLI', () => {
  it('notary lists and verifies what push --sign signed', async () => {
    const alice = user();
    const gun = `${registry.host}/interop/ours`;
    assert.equal((await cli(['push', HELLO_WASM, `${gun}:v1`, ...signFlags()], alice.env)).code, 0);
    const dir = join(work.path, `notary${n++}`);
    const list = await runNotary(['list', gun], { server: notary.url, dir });
    assert.equal(list.code, 0, list.stdout + list.stderr);
    const module = await readFile(HELLO_WASM);
    assert.match(list.stdout, new RegExp(`^v1\\s+${sha256hex(module)}\\s+151\\s+targets\\s*$`, 'm'));
    const verify = await runNotary(['verify', gun, 'v1'], { server: notary.url, dir, stdin: module });
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const wrong = await runNotary(['verify', gun, 'v1'], {
      server: notary.url,
      dir,
      stdin: await readFile(EXIT3_WASM),
    });
    assert.equal(wrong.code, 1);

    // notary uses our trust directory and keys as they are (same layout, same key format).
    await writeFile(join(work.path, 'extra.txt'), 'extra\n');
    const env = {
      NOTARY_TARGETS_PASSPHRASE: PASSPHRASES.SIGNY_TARGETS_PASSPHRASE,
      NOTARY_SNAPSHOT_PASSPHRASE: PASSPHRASES.SIGNY_SNAPSHOT_PASSPHRASE,
      NOTARY_ROOT_PASSPHRASE: PASSPHRASES.SIGNY_ROOT_PASSPHRASE,
    };
    const add = await runNotary(['add', gun, 'extra', join(work.path, 'extra.txt')], {
      server: notary.url,
      dir: alice.trustDir,
      env,
    });
    assert.equal(add.code, 0, add.stdout + add.stderr);
    const publish = await runNotary(['publish', gun], { server: notary.url, dir: alice.trustDir, env });
    assert.equal(publish.code, 0, publish.stdout + publish.stderr);
    // And we keep signing after notary published.
    const v2 = await cli(['push', EXIT3_WASM, `${gun}:v2`, ...signFlags()], alice.env);
    assert.equal(v2.code, 0, v2.stderr);
    const list2 = await runNotary(['list', gun], { server: notary.url, dir });
    assert.match(list2.stdout, /^extra\s/m);
    assert.match(list2.stdout, new RegExp(`^v2\\s+${sha256hex(await readFile(EXIT3_WASM))}\\s`, 'm'));
  });

  it('after notary rotates the snapshot key to the server, pushes sign targets only and pins follow the new root', async () => {
    const alice = user();
    const bob = user({});
    const gun = `${registry.host}/interop/rotated`;
    assert.equal((await cli(['push', HELLO_WASM, `${gun}:v1`, ...signFlags()], alice.env)).code, 0);
    const out = join(work.path, 'rotated.wasm');
    // Bob pins root version 1.
    assert.equal((await cli(['pull', `${gun}:v1`, '-o', out, ...signFlags()], bob.env)).code, 0);
    const env = {
      NOTARY_ROOT_PASSPHRASE: PASSPHRASES.SIGNY_ROOT_PASSPHRASE,
      NOTARY_TARGETS_PASSPHRASE: PASSPHRASES.SIGNY_TARGETS_PASSPHRASE,
      NOTARY_SNAPSHOT_PASSPHRASE: PASSPHRASES.SIGNY_SNAPSHOT_PASSPHRASE,
    };
    const rotate = await runNotary(['key', 'rotate', gun, 'snapshot', '-r'], {
      server: notary.url,
      dir: alice.trustDir,
      env,
    });
    assert.equal(rotate.code, 0, rotate.stdout + rotate.stderr);
    const push = await cli(['push', EXIT3_WASM, `${gun}:v2`, ...signFlags()], alice.env);
    assert.equal(push.code, 0, push.stderr);
    // Bob's pin is version 1; the server's root is version 2, signed by the same root key: rotation.
    const pull = await cli(['pull', `${gun}:v2`, '-o', out, ...signFlags()], bob.env);
    assert.equal(pull.code, 0, pull.stderr);
    assert.deepEqual(await readFile(out), await readFile(EXIT3_WASM));
    const pinned = JSON.parse(
      await readFile(
        join(bob.trustDir, 'tuf', registry.host, 'interop', 'rotated', 'metadata', 'root.json'),
        'utf8',
      ),
    );
    assert.equal(pinned.signed.version, 2);
  });

  it('pull --sign verifies a target that notary signed with its own keys', async () => {
    const gun = `${registry.host}/interop/theirs`;
    const plain = await cli(['push', HELLO_WASM, `${gun}:v1`], user().env);
    assert.equal(plain.code, 0, plain.stderr);
    const dir = join(work.path, `notary${n++}`);
    for (const args of [
      ['init', gun],
      ['add', gun, 'v1', HELLO_WASM],
      ['publish', gun],
    ]) {
      const r = await runNotary(args, { server: notary.url, dir });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    }
    const out = join(work.path, 'theirs.wasm');
    const pull = await cli(['pull', `${gun}:v1`, '-o', out, ...signFlags()], user({}).env);
    assert.equal(pull.code, 0, pull.stderr);
    assert.deepEqual(await readFile(out), await readFile(HELLO_WASM));

    // We hold none of their keys: signing into their collection fails before the tag moves.
    const before = await cli(['resolve', `${gun}:v1`], user().env);
    const push = await cli(['push', EXIT3_WASM, `${gun}:v1`, ...signFlags()], user().env);
    assert.equal(push.code, 1);
    assert.match(push.stderr, /holds no targets key of/);
    const afterResolve = await cli(['resolve', `${gun}:v1`], user().env);
    assert.equal(afterResolve.stdout, before.stdout, 'the tag did not move');
  });
});

describe('tampering and failures', () => {
  it('a module replaced in the registry after signing is refused, no file written', async () => {
    const gun = `${registry.host}/tamper/replaced`;
    assert.equal((await cli(['push', HELLO_WASM, `${gun}:v1`, ...signFlags()], user().env)).code, 0);
    assert.equal((await cli(['push', EXIT3_WASM, `${gun}:v1`], user().env)).code, 0);
    const out = join(work.path, 'replaced.wasm');
    const pull = await cli(['pull', `${gun}:v1`, '-o', out, ...signFlags()], user({}).env);
    assert.equal(pull.code, 1);
    assert.match(
      pull.stderr,
      /the module in the registry has \d+ bytes, the signed target "v1" .* has 151|is not the signed target/,
    );
    assert.equal(await exists(out), false);
    assert.doesNotMatch(pull.stderr, /\n\s+at /, 'no stack trace');
  });

  it('a target removed from the collection is refused', async () => {
    const alice = user();
    const gun = `${registry.host}/tamper/removed`;
    assert.equal((await cli(['push', HELLO_WASM, `${gun}:v1`, ...signFlags()], alice.env)).code, 0);
    const env = {
      NOTARY_TARGETS_PASSPHRASE: PASSPHRASES.SIGNY_TARGETS_PASSPHRASE,
      NOTARY_SNAPSHOT_PASSPHRASE: PASSPHRASES.SIGNY_SNAPSHOT_PASSPHRASE,
    };
    for (const args of [
      ['remove', gun, 'v1'],
      ['publish', gun],
    ]) {
      const r = await runNotary(args, { server: notary.url, dir: alice.trustDir, env });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    }
    const out = join(work.path, 'removed.wasm');
    const pull = await cli(['pull', `${gun}:v1`, '-o', out, ...signFlags()], user({}).env);
    assert.equal(pull.code, 1);
    assert.match(pull.stderr, /has no signed target "v1"/);
    assert.equal(await exists(out), false);
  });

  it('trust data rolled back by the server is refused', async () => {
    const alice = user();
    const bob = user({});
    const gun = `${registry.host}/tamper/rollback`;
    assert.equal(
      (await cli(['push', HELLO_WASM, `${gun}:v1`, ...signFlags(fixture.url)], alice.env)).code,
      0,
    );
    const out = join(work.path, 'rollback.wasm');
    assert.equal((await cli(['pull', `${gun}:v1`, '-o', out, ...signFlags(fixture.url)], bob.env)).code, 0);
    const old = fixture.record();
    // v1 is re-signed for another module; Bob sees the new trust data.
    assert.equal(
      (await cli(['push', EXIT3_WASM, `${gun}:v1`, ...signFlags(fixture.url)], alice.env)).code,
      0,
    );
    assert.equal((await cli(['pull', `${gun}:v1`, '-o', out, ...signFlags(fixture.url)], bob.env)).code, 0);
    assert.deepEqual(await readFile(out), await readFile(EXIT3_WASM));
    // The server now replays the old trust data (which vouches for the old module).
    fixture.replay(old);
    try {
      const pull = await cli(
        ['pull', `${gun}:v1`, '-o', join(work.path, 'rb2.wasm'), ...signFlags(fixture.url)],
        bob.env,
      );
      assert.equal(pull.code, 1);
      assert.match(
        pull.stderr,
        /timestamp metadata of .* was rolled back: version 1 is older than the version 2 trusted before/,
      );
      assert.equal(await exists(join(work.path, 'rb2.wasm')), false);
    } finally {
      fixture.clear();
    }
  });

  it('altered trust data fails its signature check', async () => {
    const gun = `${registry.host}/tamper/altered`;
    assert.equal((await cli(['push', HELLO_WASM, `${gun}:v1`, ...signFlags()], user().env)).code, 0);
    // Stretch the timestamp's expiry: a change the signature no longer covers.
    fixture.override(trustPath(gun, 'timestamp'), (body) =>
      Buffer.from(
        body.toString().replace(/"expires":"(\d{4})/, (_m, y: string) => `"expires":"${Number(y) + 5}`),
      ),
    );
    try {
      const pull = await cli(
        ['pull', `${gun}:v1`, '-o', join(work.path, 'alt.wasm'), ...signFlags(fixture.url)],
        user({}).env,
      );
      assert.equal(pull.code, 1);
      assert.match(
        pull.stderr,
        /timestamp metadata of .* is not signed by enough of its keys \(0 valid signatures, 1 needed\)/,
      );
    } finally {
      fixture.clear();
    }
  });

  it('a root replaced on the server is refused once one is pinned', async () => {
    const gun = `${registry.host}/tamper/newroot`;
    assert.equal((await cli(['push', HELLO_WASM, `${gun}:v1`, ...signFlags()], user().env)).code, 0);
    const bob = user({});
    const out = join(work.path, 'newroot.wasm');
    const first = await cli(['pull', `${gun}:v1`, '-o', out, ...signFlags()], bob.env);
    assert.equal(first.code, 0, first.stderr);
    // A second trust server holds a collection of the same name made by someone else.
    const other = await startNotaryServer();
    try {
      const mallory = user();
      assert.equal(
        (await cli(['push', HELLO_WASM, `${gun}:v1`, ...signFlags(other.url)], mallory.env)).code,
        0,
      );
      const pull = await cli(
        ['pull', `${gun}:v1`, '-o', join(work.path, 'nr2.wasm'), ...signFlags(other.url)],
        bob.env,
      );
      assert.equal(pull.code, 1);
      assert.match(pull.stderr, /differs from the pinned root of the same version 1/);
    } finally {
      await other.stop();
    }
  });

  it('a wrong passphrase fails before the push: the tag does not move', async () => {
    const alice = user();
    const gun = `${registry.host}/tamper/passphrase`;
    assert.equal((await cli(['push', HELLO_WASM, `${gun}:v1`, ...signFlags()], alice.env)).code, 0);
    const before = await cli(['resolve', `${gun}:v1`], alice.env);
    const push = await cli(['push', EXIT3_WASM, `${gun}:v1`, ...signFlags()], {
      ...alice.env,
      SIGNY_TARGETS_PASSPHRASE: 'not-the-passphrase',
    });
    assert.equal(push.code, 1);
    assert.match(push.stderr, /wrong passphrase for the targets key of 127\.0\.0\.1:\d+\/tamper\/passphrase/);
    assert.match(push.stderr, /SIGNY_TARGETS_PASSPHRASE/);
    assertNoSecrets(push.stdout, push.stderr);
    assert.equal((await cli(['resolve', `${gun}:v1`], alice.env)).stdout, before.stdout);
    // Without a terminal and without the variable, the error names the variable.
    const none = await cli(['push', EXIT3_WASM, `${gun}:v1`, ...signFlags()], {
      ...alice.env,
      SIGNY_TARGETS_PASSPHRASE: '',
    });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no passphrase for the targets key/);
    assert.match(none.stderr, /set SIGNY_TARGETS_PASSPHRASE/);
  });

  it('pull --sign of an unsigned tag, a digest, or a collection that does not exist fails clearly', async () => {
    const gun = `${registry.host}/tamper/unsigned`;
    const push = await cli(['push', HELLO_WASM, `${gun}:v1`], user().env);
    assert.equal(push.code, 0);
    const out = join(work.path, 'unsigned.wasm');
    const pull = await cli(['pull', `${gun}:v1`, '-o', out, ...signFlags()], user({}).env);
    assert.equal(pull.code, 1);
    assert.match(pull.stderr, /no trust data for 127\.0\.0\.1:\d+\/tamper\/unsigned/);
    assert.equal(await exists(out), false);
    const digest = /Digest: (\S+)/.exec(push.stdout)?.[1];
    const byDigest = await cli(['pull', `${gun}@${digest}`, '-o', out, ...signFlags()], user({}).env);
    assert.equal(byDigest.code, 2);
    assert.match(byDigest.stderr, /need a tag/);
    const layout = await cli(
      ['pull', `oci:${work.path}/nolayout:v1`, '-o', out, ...signFlags()],
      user({}).env,
    );
    assert.equal(layout.code, 2);
    const stray = await cli(['pull', `${gun}:v1`, '-o', out, '--server', notary.url], user({}).env);
    assert.equal(stray.code, 2);
    assert.match(stray.stderr, /--server only applies with --sign/);
  });
});
