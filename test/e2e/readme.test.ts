import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLI } from '../harness/cli.js';
import { HELLO_WASM, tempDir } from '../harness/fixtures.js';

/** The README's promises: the demo runs, the try-it block works, its facts and links are true. */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

let work: Awaited<ReturnType<typeof tempDir>>;
let readme = '';

before(async () => {
  work = await tempDir();
  readme = await readFile(join(ROOT, 'README.md'), 'utf8');
});
after(async () => {
  await work?.remove();
});

function run(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: options.env, timeout: options.timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
      },
    );
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** HOME, caches and temporary files in this test's own directory. */
function sandbox(name: string): NodeJS.ProcessEnv {
  const home = join(work.path, name);
  return {
    ...process.env,
    HOME: home,
    DOCKER_CONFIG: join(home, '.docker'),
    XDG_CACHE_HOME: join(home, '.cache'),
    TMPDIR: join(home, 'tmp'),
    npm_config_cache: join(home, '.npm'),
    npm_config_update_notifier: 'false',
  };
}

describe('README', () => {
  it('keeps the two set-up commands at the top', () => {
    const top = readme.slice(0, readme.indexOf('## Install and use'));
    assert.match(top, /\nbash scripts\/demo\.sh {3}# npm ci, build, push testdata\/hello\.wasm/);
    assert.match(
      top,
      /\nbash \.ci\/run {11}# installs what is missing, type-checks, lints and runs every test/,
    );
  });

  it('npm run demo runs the demo script end to end', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    assert.equal(pkg.scripts.demo, 'bash scripts/demo.sh');
    const env: NodeJS.ProcessEnv = { ...sandbox('demo'), WASM_TO_OCI_DEMO_BUILT: '1' };
    await mkdir(env.TMPDIR ?? '', { recursive: true });
    const res = await run('npm', ['run', 'demo', '--silent'], { cwd: ROOT, env, timeoutMs: 240_000 });
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /== into an OCI image layout/);
    assert.match(res.stdout, /== through a throwaway Distribution registry/);
    assert.match(res.stdout, /Hello from WebAssembly!/);
    assert.match(res.stdout, /demo: pushed, pulled, verified and ran testdata\/hello\.wasm\n$/);
  });

  it('every script package.json names exists', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    for (const [name, command] of Object.entries(pkg.scripts)) {
      for (const m of command.matchAll(/(?:node|bash) ((?:scripts|bench)\/[\w.-]+)/g)) {
        assert.ok(existsSync(join(ROOT, m[1] as string)), `npm run ${name}: ${m[1]} exists`);
      }
    }
  });

  it('the install-and-use block works: install steps, a registry started as written, push and pull', async () => {
    assert.match(readme, /\nnpm i -g wasm-to-oci +# then: wasm-to-oci <command>\n/);
    assert.match(readme, /\nnpx wasm-to-oci --help +#/);
    const marker = readme.indexOf('<!-- readme-try:');
    assert.ok(marker > 0, 'the block is marked');
    const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(marker))?.[1] ?? '';
    assert.match(block, /docker-registry serve/);
    // The block as written, on a free port and in this test's directory; `wasm-to-oci` is the build
    // under test, as `npm i -g` would put it on PATH.
    const dir = join(work.path, 'try');
    const bin = join(dir, 'bin');
    await mkdir(join(dir, 'testdata'), { recursive: true });
    await mkdir(bin);
    await copyFile(HELLO_WASM, join(dir, 'testdata', 'hello.wasm'));
    await writeFile(join(bin, 'wasm-to-oci'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    await chmod(join(bin, 'wasm-to-oci'), 0o755);
    const port = await freePort();
    const script = `set -e\n${block.replaceAll(':5000', `:${port}`).replaceAll('/tmp/registry', join(dir, 'registry'))}\nkill $!\n`;
    const env: NodeJS.ProcessEnv = { ...sandbox('try'), PATH: `${bin}:${process.env.PATH}` };
    await mkdir(env.TMPDIR ?? '', { recursive: true });
    const res = await run('bash', ['-c', script], { cwd: dir, env, timeoutMs: 60_000 });
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, new RegExp(`^Pushed: localhost:${port}/wasm-to-oci:v1\\nSize: 151\\n`));
    assert.match(res.stdout, new RegExp(`\\nPulled: localhost:${port}/wasm-to-oci:v1\\nSize: 151\\n`));
    assert.deepEqual(await readFile(join(dir, 'test.wasm')), await readFile(HELLO_WASM));
  });

  it('states the real size of testdata/hello.wasm, and its links lead to files of the repository', async () => {
    const size = (await stat(HELLO_WASM)).size;
    const stated = [...readme.matchAll(/This repository's `testdata\/hello\.wasm` is [^:]*: (\d+)\s+bytes/g)];
    assert.equal(stated.length, 1);
    assert.equal(Number(stated[0]?.[1]), size);
    for (const m of readme.matchAll(/Size: (\d+)\n/g)) assert.equal(Number(m[1]), size, 'example output');
    const links = [...readme.matchAll(/\]\(([^)#:]+)(#[^)]*)?\)/g)].map((m) => m[1] as string);
    assert.ok(links.includes('docs/ARCHITECTURE.md'), 'the architecture link is the project’s own doc');
    for (const link of links) assert.ok(existsSync(join(ROOT, link)), `${link} exists`);
    assert.ok(existsSync(join(dirname(HELLO_WASM), 'hello.wat')));
  });
});
