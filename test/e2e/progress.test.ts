import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { registryCertificates } from '../harness/certs.js';
import { runCli } from '../harness/cli.js';
import { cliEnv, HELLO_WASM, tempDir, writeLargeWasm } from '../harness/fixtures.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';
import { runInTerminal } from '../harness/terminal.js';

/**
 * Progress as a user sees it: in a real terminal (script(1)) of 20, 45 and 80 columns the bar stays on
 * one line and never wraps; -q and --no-progress; without a terminal, -v names every blob and sums up,
 * and a re-push says what it skipped. Over plain HTTP and TLS.
 */

let work: Awaited<ReturnType<typeof tempDir>>;
let plain: RegistryServer;
let tls: RegistryServer;
let caFile: string;
let big: string;
const BIG = 48 * 1024 * 1024;

before(async () => {
  work = await tempDir();
  const certs = await registryCertificates(work.path);
  caFile = certs.caFile;
  [plain, tls] = await Promise.all([startRegistry(), startRegistry({ tls: certs.tls })]);
  big = join(work.path, 'big.wasm');
  await writeLargeWasm(big, BIG);
});
after(async () => {
  await plain?.stop();
  await tls?.stop();
  await work?.remove();
});

const env = (name: string): NodeJS.ProcessEnv => cliEnv(join(work.path, name), caFile);

/** What a terminal shows, as rows: each \r returns to column 0 and ESC[K erases the rest of the row. */
/** `widest`: the widest bar draw. */
function rowsOf(output: string): { rows: string[]; widest: number } {
  const rows: string[] = [];
  let widest = 0;
  for (const row of output.split(/\r?\n/)) {
    let shown = '';
    for (const part of row.split('\r')) {
      const text = part.replace(/\x1b\[K/g, '');
      // A bar draw ends with ESC[K (results are ordinary lines, which the terminal may wrap).
      if (part.endsWith('\x1b[K')) widest = Math.max(widest, text.length);
      shown = text + shown.slice(text.length);
      if (part.includes('\x1b[K')) shown = text;
    }
    rows.push(shown);
  }
  return { rows, widest };
}

describe('the progress bar in a terminal', () => {
  for (const [columns, scheme] of [
    [20, 'plain HTTP'],
    [45, 'plain HTTP'],
    [80, 'plain HTTP'],
    [20, 'TLS'],
    [45, 'TLS'],
    [80, 'TLS'],
  ] as const) {
    it(`fits ${columns} columns, on one row, through a ${BIG >> 20} MiB push and pull (${scheme})`, async () => {
      const name = `${columns}-${scheme === 'TLS' ? 'tls' : 'plain'}`;
      const e = env(`tty-${name}`);
      const ref = `${(scheme === 'TLS' ? tls : plain).host}/progress/big${columns}:v1`;
      const push = await runInTerminal(['push', big, ref], { dir: work.path, env: e, columns });
      assert.equal(push.code, 0, push.output);
      assert.match(push.output, /Pushing/, 'the bar was drawn');
      const pushed = rowsOf(push.output);
      assert.ok(pushed.widest < columns, `widest draw ${pushed.widest} of ${columns} columns`);
      // One row per result line and nothing else: the bar never left a row behind.
      assert.deepEqual(
        pushed.rows.filter(Boolean).map((r) => r.split(':')[0]),
        ['Pushed', 'Size', 'Digest'],
        push.output,
      );
      const pull = await runInTerminal(
        ['pull', ref, '-o', join(work.path, `big${name}.wasm`), '--no-cache'],
        {
          dir: work.path,
          env: e,
          columns,
        },
      );
      assert.equal(pull.code, 0, pull.output);
      assert.match(pull.output, /Pulling/);
      const pulled = rowsOf(pull.output);
      assert.ok(pulled.widest < columns, `widest draw ${pulled.widest} of ${columns} columns`);
      assert.deepEqual(
        pulled.rows.filter(Boolean).map((r) => r.split(':')[0]),
        ['Pulled', 'Size', 'Digest'],
      );
    });
  }

  it('-q and --no-progress draw no bar; -q drops the notes too', async () => {
    const e = env('tty-quiet');
    const ref = `${plain.host}/progress/quiet`;
    for (const flag of ['-q', '--no-progress']) {
      const res = await runInTerminal(['push', big, ref, flag], { dir: work.path, env: e, columns: 80 });
      assert.equal(res.code, 0, res.output);
      assert.doesNotMatch(res.output, /Pushing|\[#/, `${flag}: no bar`);
      assert.match(res.output, /Pushed: /);
      if (flag === '-q') assert.doesNotMatch(res.output, /Using default tag|already there/);
      else assert.match(res.output, /Using default tag: latest/);
    }
  });
});

describe('without a terminal', () => {
  for (const scheme of ['plain HTTP', 'TLS'] as const) {
    it(`-v names every blob and sums up; a re-push says what it skipped (${scheme})`, async () => {
      const registry = scheme === 'TLS' ? tls : plain;
      const e = env(`lines-${scheme === 'TLS' ? 'tls' : 'plain'}`);
      const ref = `${registry.host}/progress/hello:v1`;
      const first = await runCli(['push', HELLO_WASM, ref, '-v'], { env: e });
      assert.equal(first.code, 0, first.stderr);
      assert.match(
        first.stderr,
        /^Uploaded +sha256:[0-9a-f]{64} \(2 bytes, application\/vnd\.wasm\.config\.v1\+json\)$/m,
      );
      assert.match(
        first.stderr,
        /^Uploaded +sha256:[0-9a-f]{64} \(151 bytes, application\/vnd\.wasm\.content\.layer\.v1\+wasm\)$/m,
      );
      assert.match(first.stderr, /^Sent 153 bytes in 2 blobs$/m);
      assert.doesNotMatch(first.stdout, /Uploaded|Sent/, 'stdout carries the result only');

      const again = await runCli(['push', HELLO_WASM, ref, '-v'], { env: e });
      assert.equal(again.code, 0, again.stderr);
      assert.equal((again.stderr.match(/^Exists +sha256:/gm) ?? []).length, 2, again.stderr);
      assert.match(again.stderr, /^Sent 0 bytes in 0 blobs; 2 blobs \(153 bytes\) already there$/m);
      const quietly = await runCli(['push', HELLO_WASM, ref], { env: e });
      assert.equal(quietly.stderr, 'Sent 0 bytes in 0 blobs; 2 blobs (153 bytes) already there\n');
      const silent = await runCli(['push', HELLO_WASM, ref, '-q'], { env: e });
      assert.equal(silent.stderr, '');
      assert.match(silent.stdout, /^Pushed: /);

      const out = join(work.path, `hello-${scheme === 'TLS' ? 'tls' : 'plain'}.wasm`);
      const pulled = await runCli(['pull', ref, '-o', out, '-v'], { env: e });
      assert.equal(pulled.code, 0, pulled.stderr);
      assert.match(pulled.stderr, /^Downloaded +sha256:[0-9a-f]{64} \(151 bytes,/m);
      assert.match(pulled.stderr, /^Received 151 bytes$/m);
      const cached = await runCli(['pull', ref, '-o', out, '-v'], { env: e });
      assert.match(cached.stderr, /^Cached +sha256:[0-9a-f]{64} \(151 bytes,/m);
      assert.match(cached.stderr, /^Received 0 bytes, 151 bytes from the cache$/m);

      const copied = await runCli(['copy', ref, `${registry.host}/progress/copy:v1`, '-v'], { env: e });
      assert.equal(copied.code, 0, copied.stderr);
      assert.equal((copied.stderr.match(/^Mounted +sha256:/gm) ?? []).length, 2, copied.stderr);
      assert.match(copied.stderr, /^Sent 0 bytes in 0 blobs; 2 blobs mounted$/m);
    });
  }
});
