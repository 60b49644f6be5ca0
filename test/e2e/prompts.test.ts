import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { basic, startBasicAuthRegistry } from '../harness/auth.js';
import { runCli } from '../harness/cli.js';
import { HELLO_WASM, tempDir, writeLargeWasm } from '../harness/fixtures.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';
import { runInTerminal } from '../harness/terminal.js';

/** Prompts on a terminal, confirmation before deleting, Ctrl-C at a prompt, environment values, the cache. */

const USER = 'alice';
const PASSWORD = 'prompted-Pa55-never-echoed';
const CTRL_C = '\x03';

let open: RegistryServer;
let guarded: RegistryServer;
let work: Awaited<ReturnType<typeof tempDir>>;

before(async () => {
  work = await tempDir();
  open = await startRegistry();
  guarded = await startBasicAuthRegistry(work.path, { [USER]: PASSWORD });
  await copyFile(HELLO_WASM, join(work.path, 'hello.wasm'));
});
after(async () => {
  await open?.stop();
  await guarded?.stop();
  await work?.remove();
});

let n = 0;
function env(): NodeJS.ProcessEnv {
  const home = join(work.path, `home${n++}`);
  return {
    HOME: home,
    DOCKER_CONFIG: join(home, '.docker'),
    XDG_CACHE_HOME: join(home, 'cache'),
    XDG_RUNTIME_DIR: '',
    REGISTRY_AUTH_FILE: '',
  };
}
const cli = (args: string[], e: NodeJS.ProcessEnv = env(), input?: string) =>
  runCli(args, { cwd: work.path, env: e, input });
const terminal = (args: string[], e: NodeJS.ProcessEnv, steps: Array<{ after: RegExp; type: string }>) =>
  runInTerminal(args, { dir: work.path, env: e, steps });

describe('manifest delete asks first', () => {
  it('on a terminal: n keeps the manifest (exit 1), Ctrl-C exits 130, y deletes it', async () => {
    const ref = `${open.host}/prompts/del:v1`;
    assert.equal((await cli(['push', 'hello.wasm', ref])).code, 0);
    const e = env();
    const question = /Delete the manifest .*prompts\/del:v1, with every tag that points at it\? \[y\/N\] /;

    const no = await terminal(['manifest', 'delete', ref], e, [{ after: question, type: 'n\r' }]);
    assert.equal(no.code, 1, no.output);
    assert.match(no.output, /Not deleted\./);
    assert.equal((await cli(['resolve', ref])).code, 0, 'still there');

    const interrupted = await terminal(['manifest', 'delete', ref], e, [{ after: question, type: CTRL_C }]);
    assert.equal(interrupted.code, 130, interrupted.output);
    assert.match(interrupted.output, /Error: interrupted at the prompt: nothing was done/);
    assert.equal((await cli(['resolve', ref])).code, 0, 'still there');

    const yes = await terminal(['manifest', 'delete', ref], e, [{ after: question, type: 'y\r' }]);
    assert.equal(yes.code, 0, yes.output);
    assert.match(yes.output, /Deleted: sha256:[0-9a-f]{64}/);
    assert.equal((await cli(['resolve', ref])).code, 1, 'gone');
  });

  it('without a terminal it needs --force', async () => {
    const ref = `${open.host}/prompts/force:v1`;
    assert.equal((await cli(['push', 'hello.wasm', ref])).code, 0);
    const refused = await cli(['manifest', 'delete', ref]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /stdin is not a terminal\nHint: add --force to delete without being asked/);
    assert.equal((await cli(['resolve', ref])).code, 0, 'nothing was deleted');
    const forced = await cli(['manifest', 'delete', ref, '-f']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal((await cli(['resolve', ref])).code, 1);
  });
});

describe('passwords asked on a terminal', () => {
  it('pull -u alice asks for the password, echoes nothing, and pulls', async () => {
    const ref = `${guarded.host}/prompts/private:v1`;
    const pushed = await cli(['push', 'hello.wasm', ref, '-u', USER, '--password-stdin'], env(), PASSWORD);
    assert.equal(pushed.code, 0, pushed.stderr);
    const out = join(work.path, 'prompted.wasm');
    const res = await terminal(['pull', ref, '-u', USER, '-o', out], env(), [
      { after: /Password for alice: /, type: `${PASSWORD}\r` },
    ]);
    assert.equal(res.code, 0, res.output);
    assert.ok(!res.output.includes(PASSWORD), 'the password was not echoed');
    assert.match(res.output, /Pulled: /);
    assert.deepEqual(await readFile(out), await readFile(HELLO_WASM));
  });

  it('Ctrl-C at the password prompt of pull exits 130 and writes nothing', async () => {
    const out = join(work.path, 'never.wasm');
    const res = await terminal(['pull', `${guarded.host}/prompts/private:v1`, '-u', USER, '-o', out], env(), [
      { after: /Password for alice: /, type: CTRL_C },
    ]);
    assert.equal(res.code, 130, res.output);
    await assert.rejects(stat(out), { code: 'ENOENT' });
  });

  it('Ctrl-C at the login prompts exits 130 and stores nothing', async () => {
    for (const steps of [
      [{ after: /Username: /, type: CTRL_C }],
      [
        { after: /Username: /, type: `${USER}\r` },
        { after: /Password: /, type: CTRL_C },
      ],
    ]) {
      const e = env();
      const res = await terminal(['login', guarded.host], e, steps);
      assert.equal(res.code, 130, res.output);
      assert.match(res.output, /Error: interrupted at the prompt/);
      await assert.rejects(stat(join(e.DOCKER_CONFIG as string, 'config.json')), { code: 'ENOENT' });
    }
  });

  it('login -u alice asks only for the password', async () => {
    const e = env();
    const res = await terminal(['login', guarded.host, '-u', USER], e, [
      { after: /Password: /, type: `${PASSWORD}\r` },
    ]);
    assert.equal(res.code, 0, res.output);
    assert.doesNotMatch(res.output, /Username: /);
    const config = JSON.parse(await readFile(join(e.DOCKER_CONFIG as string, 'config.json'), 'utf8'));
    assert.deepEqual(config.auths[guarded.host], { auth: basic(USER, PASSWORD) });
  });
});

describe('environment values are checked and named', () => {
  it('a bad WASM_TO_OCI_FORMAT is named as the variable; --format overrides it', async () => {
    const e = { ...env(), WASM_TO_OCI_FORMAT: 'cnfc' };
    const bad = await cli(['push', 'hello.wasm', `${open.host}/prompts/format:v1`], e);
    assert.equal(bad.code, 2);
    assert.equal(
      bad.stderr,
      'Error: WASM_TO_OCI_FORMAT is "cnfc", not a format\nHint: set it to classic or cncf, unset it, or override it with --format classic|cncf\n',
    );
    const flagged = await cli(
      ['push', 'hello.wasm', `${open.host}/prompts/format:v1`, '--format', 'cncf'],
      e,
    );
    assert.equal(flagged.code, 0, flagged.stderr);
    const wrongFlag = await cli(['push', 'hello.wasm', `${open.host}/prompts/format:v1`, '--format', 'x']);
    assert.match(wrongFlag.stderr, /^Error: unknown format "x"\nHint: use --format classic or --format cncf/);
  });

  it('a bad WASM_TO_OCI_CACHE_MAX_MB is named as the variable, before anything is fetched', async () => {
    for (const value of ['lots', '-1']) {
      const e = { ...env(), WASM_TO_OCI_CACHE_MAX_MB: value };
      const out = join(work.path, 'max.wasm');
      const res = await cli(['pull', `${open.host}/prompts/format:v1`, '-o', out], e);
      assert.equal(res.code, 2, res.stderr);
      assert.match(
        res.stderr,
        new RegExp(`^Error: WASM_TO_OCI_CACHE_MAX_MB takes a size in MiB, not "${value}"\\nHint: `),
      );
      await assert.rejects(stat(out), { code: 'ENOENT' });
      const ls = await cli(['cache', 'ls'], e);
      assert.equal(ls.code, 2);
    }
    const fine = await cli(['pull', `${open.host}/prompts/format:v1`, '-o', 'max.wasm'], {
      ...env(),
      WASM_TO_OCI_CACHE_MAX_MB: '16',
    });
    assert.equal(fine.code, 0, fine.stderr);
  });
});

describe('an unwritable cache directory', () => {
  it('gives one warning per run, and the push and pull still work', async () => {
    const e = env();
    // A regular file where the cache directory should be: even root cannot write under it.
    await mkdir(e.HOME as string, { recursive: true });
    await writeFile(join(e.HOME as string, 'not-a-dir'), 'x');
    e.XDG_CACHE_HOME = join(e.HOME as string, 'not-a-dir');
    const big = join(work.path, 'big.wasm');
    await writeLargeWasm(big, 17 * 1024 * 1024);
    const ref = `${open.host}/prompts/uncached:v1`;
    for (let run = 0; run < 2; run++) {
      const res = await cli(['push', big, ref], e);
      assert.equal(res.code, 0, res.stderr);
      const warnings = res.stderr.split('\n').filter((l) => l.startsWith('Warning: '));
      assert.equal(warnings.length, 1, res.stderr);
      assert.match(
        warnings[0] ?? '',
        /^Warning: cannot write the cache in .*not-a-dir\/wasm-to-oci \(a part of the path is not a directory\): .*large modules are uploaded again/,
      );
    }
    const pulled = await cli(['pull', ref, '-o', join(work.path, 'uncached.wasm')], e);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.equal(pulled.stderr.split('\n').filter((l) => l.startsWith('Warning: ')).length, 1, pulled.stderr);
    assert.equal((await stat(join(work.path, 'uncached.wasm'))).size, 17 * 1024 * 1024);
  });
});
