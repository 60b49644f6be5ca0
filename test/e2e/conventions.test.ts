import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { runCli } from '../harness/cli.js';
import { HELLO_WASM, tempDir } from '../harness/fixtures.js';
import { type RecordingServer, startRecordingProxy } from '../harness/hostile.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

/** The conventions of peer tools: completion, examples, version, --debug, -H, help for a typo. */

const exec = promisify(execFile);

let registry: RegistryServer;
let recorder: RecordingServer;
let work: Awaited<ReturnType<typeof tempDir>>;

before(async () => {
  registry = await startRegistry();
  recorder = await startRecordingProxy(registry.host);
  work = await tempDir();
  await copyFile(HELLO_WASM, join(work.path, 'hello.wasm'));
});
after(async () => {
  await recorder?.stop();
  await registry?.stop();
  await work?.remove();
});

const env = (): NodeJS.ProcessEnv => ({
  HOME: join(work.path, 'home'),
  DOCKER_CONFIG: join(work.path, 'home', '.docker'),
  XDG_CACHE_HOME: join(work.path, 'cache'),
});
const cli = (args: string[]) => runCli(args, { cwd: work.path, env: env() });

const COMMANDS = [
  'push',
  'pull',
  'login',
  'logout',
  'inspect',
  'run',
  'copy',
  'tags',
  'resolve',
  'tag',
  'manifest',
  'blob',
  'cache',
  'version',
  'completion',
  'generate-key-pair',
  'sign',
  'verify',
];

/** Sources the bash completion in bash and asks it to complete `words` (the last one is being typed). */
async function complete(script: string, words: string[]): Promise<string[]> {
  const quoted = words.map((w) => `'${w.replace(/'/g, "'\\''")}'`).join(' ');
  const program = `source ${script}\nCOMP_WORDS=(${quoted})\nCOMP_CWORD=${words.length - 1}\n_wasm_to_oci\nprintf '%s\\n' "\${COMPREPLY[@]}"\n`;
  const { stdout } = await exec('bash', ['--norc', '--noprofile', '-c', program], { cwd: work.path });
  return stdout.split('\n').filter(Boolean).sort();
}

describe('shell completion', () => {
  let script = '';
  before(async () => {
    const res = await cli(['completion', 'bash']);
    assert.equal(res.code, 0, res.stderr);
    script = join(work.path, 'completion.bash');
    await writeFile(script, res.stdout);
  });

  it('bash completes commands, options, actions, option values and files, from the command table', async () => {
    assert.deepEqual(await complete(script, ['wasm-to-oci', 'pu']), ['pull', 'push']);
    assert.deepEqual(await complete(script, ['wasm-to-oci', 'co']), ['completion', 'copy']);
    assert.deepEqual(await complete(script, ['wasm-to-oci', 'push', '--for']), ['--format']);
    assert.deepEqual(await complete(script, ['wasm-to-oci', 'push', '--format', '']), ['classic', 'cncf']);
    assert.deepEqual(await complete(script, ['wasm-to-oci', 'manifest', '']), ['delete', 'get']);
    assert.deepEqual(await complete(script, ['wasm-to-oci', 'manifest', 'get', '--pr']), ['--pretty']);
    assert.deepEqual(await complete(script, ['wasm-to-oci', 'completion', '']), ['bash', 'fish', 'zsh']);
    assert.deepEqual(await complete(script, ['wasm-to-oci', 'sign', '--le']), ['--legacy-tag']);
    assert.deepEqual(await complete(script, ['wasm-to-oci', 'push', '--sign-']), ['--sign-key']);
    assert.deepEqual(await complete(script, ['wasm-to-oci', 'help', 'ma']), ['manifest']);
    assert.deepEqual(await complete(script, ['wasm-to-oci', 'push', 'hel']), ['hello.wasm']);
    // An option's value is a file: `-o hel` offers files, and the next word is an argument again.
    assert.deepEqual(await complete(script, ['wasm-to-oci', 'pull', '-o', 'hel']), ['hello.wasm']);
    assert.deepEqual(
      await complete(script, ['wasm-to-oci', 'cache', '--max-size', '5', '']),
      ['ls', 'prune'],
      'an option value is not counted as the action',
    );
  });

  it('zsh and fish scripts come from the same table; an unknown shell is a usage error', async () => {
    const zsh = await cli(['completion', 'zsh']);
    assert.equal(zsh.code, 0, zsh.stderr);
    assert.match(zsh.stdout, /^#compdef wasm-to-oci\n/);
    assert.match(zsh.stdout, /bashcompinit/);
    assert.match(zsh.stdout, /complete -F _wasm_to_oci wasm-to-oci\n$/);
    const fish = await cli(['completion', 'fish']);
    assert.equal(fish.code, 0, fish.stderr);
    for (const command of COMMANDS) {
      assert.match(fish.stdout, new RegExp(`-n __fish_use_subcommand -a ${command} -d '`), command);
    }
    assert.match(fish.stdout, /__fish_seen_subcommand_from push' -l format -x -a 'classic cncf'/);
    assert.match(fish.stdout, /__fish_seen_subcommand_from pull' -s o -l out -r -F/);
    const bad = await cli(['completion', 'tcsh']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^Error: no completion for the shell 'tcsh'\nHint: use one of: bash, zsh, fish/);
  });
});

describe('help, version and typos', () => {
  it('every command’s --help ends with Examples that use the command', async () => {
    for (const command of COMMANDS) {
      const res = await cli([command, '--help']);
      assert.equal(res.code, 0, `${command}: ${res.stderr}`);
      const examples = res.stdout.split('\nExamples:\n')[1];
      assert.ok(examples, `${command} --help has an Examples section`);
      assert.match(
        examples,
        new RegExp(`^ {2}(.*\\| )?(source <\\()?wasm-to-oci ${command}\\b`, 'm'),
        command,
      );
      const viaHelp = await cli(['help', command]);
      assert.equal(viaHelp.stdout, res.stdout, `help ${command} is ${command} --help`);
    }
    const top = await cli(['--help']);
    assert.match(top.stdout, /\nExamples:\n {2}wasm-to-oci push /);
    for (const command of COMMANDS) assert.match(top.stdout, new RegExp(`\n {2}${command} +\\S`));
  });

  it('help for a misspelt command is a usage error that suggests the right one', async () => {
    const res = await cli(['help', 'pusj']);
    assert.equal(res.code, 2);
    assert.equal(res.stdout, '');
    assert.equal(
      res.stderr,
      "Error: unknown command 'pusj'\nHint: did you mean push? (see: wasm-to-oci push --help)\n",
    );
    const direct = await cli(['pusj', 'hello.wasm']);
    assert.equal(direct.code, 2);
    assert.match(direct.stderr, /Hint: did you mean push\?/);
    const far = await cli(['help', 'zzzzzz']);
    assert.equal(far.code, 2);
    assert.match(far.stderr, /^Error: unknown command 'zzzzzz'\nHint: see: wasm-to-oci --help/);
  });

  it('version prints the version, and --json an object', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    const text = await cli(['version']);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout, `wasm-to-oci ${pkg.version}\nnode ${process.versions.node}\n`);
    const json = await cli(['version', '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), { version: pkg.version, node: process.versions.node });
  });
});

describe('--debug and -H', () => {
  it('--debug logs the HTTP requests as -v does', async () => {
    const ref = `${registry.host}/conventions/debug:v1`;
    const pushed = await cli(['push', 'hello.wasm', ref, '--debug']);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stderr, /PUT .*\/v2\/conventions\/debug\/manifests\/v1/);
    const quiet = await cli(['pull', ref, '-o', 'debug.wasm']);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.doesNotMatch(quiet.stderr, /GET /);
  });

  it('-H sends extra headers to the registry, on every request of the run', async () => {
    const ref = `${recorder.host}/conventions/header:v1`;
    const res = await cli(['push', 'hello.wasm', ref, '-H', 'X-Trace-Id: abc 123', '--header=x-other:two']);
    assert.equal(res.code, 0, res.stderr);
    const seen = recorder.requests.filter((r) => r.url.startsWith('/v2/conventions/header/'));
    assert.ok(seen.length >= 3, 'blob checks, uploads and the manifest went through the recorder');
    for (const r of seen) {
      assert.equal(r.headers['x-trace-id'], 'abc 123', `${r.method} ${r.url}`);
      assert.equal(r.headers['x-other'], 'two', `${r.method} ${r.url}`);
    }
    const manifest = seen.find((r) => r.method === 'PUT' && r.url.includes('/manifests/'));
    assert.equal(
      manifest?.headers['content-type'],
      'application/vnd.oci.image.manifest.v1+json',
      'the request’s own headers stay',
    );
  });

  it('-H cannot replace Authorization, Host or the framing; malformed headers are usage errors', async () => {
    const before = recorder.requests.length;
    const cases: Array<[string, RegExp]> = [
      [
        'Authorization: Bearer stolen',
        /^Error: -H: the header authorization cannot be set\nHint: credentials come from login/,
      ],
      [
        'host: evil.example',
        /^Error: -H: the header host cannot be set\nHint: it is set by the HTTP client itself/,
      ],
      ['Content-Length: 1', /^Error: -H: the header content-length cannot be set/],
      ['no-colon', /^Error: -H wants name:value, not "no-colon"/],
      ['bad name: x', /^Error: -H wants name:value, not "bad name: x"/],
    ];
    for (const [header, message] of cases) {
      const res = await cli(['push', 'hello.wasm', `${recorder.host}/conventions/refused:v1`, '-H', header]);
      assert.equal(res.code, 2, `${header}: ${res.stderr}`);
      assert.match(res.stderr, message);
    }
    assert.equal(recorder.requests.length, before, 'nothing was sent');
  });
});

describe('pull says when the tag defaults', () => {
  it('prints Using default tag: latest on stderr, as push does', async () => {
    const pushed = await cli(['push', 'hello.wasm', `${registry.host}/conventions/defaulted`]);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(pushed.stderr, 'Using default tag: latest\n');
    const pulled = await cli(['pull', `${registry.host}/conventions/defaulted`, '-o', 'defaulted.wasm']);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.equal(pulled.stderr, 'Using default tag: latest\n');
    assert.match(pulled.stdout, /^Pulled: .*\/conventions\/defaulted:latest\n/);
    const tagged = await cli(['pull', `${registry.host}/conventions/defaulted:latest`, '-o', 'tagged.wasm']);
    assert.equal(tagged.stderr, '', 'not when the tag is given');
  });
});
