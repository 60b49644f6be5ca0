import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { barLine, type ProgressSettings, progressBar, progressSettings } from './progress.js';

const desc = (size: number, mediaType = 'application/wasm', n = 'a') => ({
  mediaType,
  digest: `sha256:${n.repeat(64)}`,
  size,
});
const BAR: ProgressSettings = { bar: true, lines: false, notes: false, direction: 'down' };

describe('progress bar', () => {
  it('draws on a terminal for large blobs, throttled, and clears at the end', () => {
    const out: string[] = [];
    let now = 0;
    const bar = progressBar(
      { isTTY: true, columns: 100, write: (s) => out.push(s) },
      'Pulling',
      BAR,
      () => now,
    );
    const d = desc(64 * 1024 * 1024);
    bar.onProgress({ type: 'start', desc: d });
    now = 50;
    bar.onProgress({ type: 'progress', desc: d, bytes: 1024 });
    now = 60;
    bar.onProgress({ type: 'progress', desc: d, bytes: 2048 });
    now = 1000;
    bar.onProgress({ type: 'progress', desc: d, bytes: 32 * 1024 * 1024 });
    bar.onProgress({ type: 'progress', desc: d, bytes: d.size });
    bar.finish();
    assert.equal(out.length, 3, 'two early draws throttled away, the final one forced, then a clear');
    assert.match(out[0] ?? '', /^\rPulling \[#+\.+\]  50% 32\.0\/64\.0 MiB/);
    assert.match(out[1] ?? '', /100% 64\.0\/64\.0 MiB/);
    assert.equal(out[2], '\r\x1b[K');
  });

  it('stays silent when stderr is not a terminal, the blob is small, or the bar is off', () => {
    const out: string[] = [];
    const piped = progressBar({ isTTY: false, write: (s) => out.push(s) }, 'Pushing', BAR);
    piped.onProgress({ type: 'start', desc: desc(1 << 30) });
    piped.onProgress({ type: 'progress', desc: desc(1 << 30), bytes: 1 << 29 });
    piped.finish();
    const small = progressBar({ isTTY: true, write: (s) => out.push(s) }, 'Pushing', BAR);
    small.onProgress({ type: 'start', desc: desc(1000) });
    small.onProgress({ type: 'progress', desc: desc(1000), bytes: 1000 });
    small.finish();
    const off = progressBar({ isTTY: true, write: (s) => out.push(s) }, 'Pushing', { ...BAR, bar: false });
    off.onProgress({ type: 'start', desc: desc(1 << 30) });
    off.onProgress({ type: 'progress', desc: desc(1 << 30), bytes: 1 << 30 });
    off.finish();
    off.summary();
    assert.deepEqual(out, []);
  });

  it('fits every terminal width from 1 to 240 columns, for every fill and size, and never wraps', () => {
    const totals = [0, 1, 4 * 1024 * 1024, 256 * 1024 * 1024, 64 * 1024 ** 3, 2 ** 53 - 1];
    for (let columns = 1; columns <= 240; columns++) {
      for (const total of totals) {
        for (const fill of [0, 0.001, 0.5, 0.999, 1, 1.5]) {
          for (const label of ['Pulling', 'Downloading']) {
            const line = barLine(label, Math.floor(total * fill), total, fill * 3, columns);
            assert.ok(line.length < Math.max(2, columns), `${columns} columns: ${JSON.stringify(line)}`);
            assert.ok(line.length > 0);
            assert.doesNotMatch(line, /[\r\n]/);
          }
        }
      }
    }
    // What survives as the terminal narrows: rate, then sizes, then the bar go first.
    const at = (columns: number) => barLine('Pulling', 32 * 1024 * 1024, 64 * 1024 * 1024, 1, columns);
    assert.match(at(120), /^Pulling \[#{20}\.{20}\]  50% 32\.0\/64\.0 MiB 32\.0 MiB\/s$/);
    assert.match(at(45), /^Pulling \[#+\.+\]  50% 32\.0\/64\.0 MiB$/);
    assert.match(at(30), /^Pulling \[#+\.+\]  50%$/);
    assert.equal(at(20), 'Pulling  50%');
    assert.equal(at(8), 'Pulling');
  });

  it('keeps one line on a 45-column terminal through a whole transfer', () => {
    const out: string[] = [];
    let now = 0;
    const sink = { isTTY: true, columns: 45, write: (s: string) => out.push(s) };
    const bar = progressBar(sink, 'Pushing', { ...BAR, direction: 'up' }, () => now);
    const d = desc(512 * 1024 * 1024);
    bar.onProgress({ type: 'start', desc: d });
    for (let bytes = 0; bytes <= d.size; bytes += 8 * 1024 * 1024) {
      now += 150;
      bar.onProgress({ type: 'progress', desc: d, bytes });
    }
    bar.finish();
    assert.ok(out.length > 60);
    for (const draw of out) {
      assert.ok(draw.startsWith('\r'), 'each redraw returns to the start of the line');
      // Visible text: without the carriage return and the erase-to-end-of-line escape.
      const visible = draw.replace(/^\r/, '').replace(/\x1b\[K$/, '');
      assert.ok(visible.length < 45, `${visible.length} columns: ${visible}`);
      assert.doesNotMatch(visible, /\n/);
    }
  });
});

describe('per-blob lines and summaries', () => {
  it('-v names every blob as it is skipped, mounted or sent, then sums it up', () => {
    const out: string[] = [];
    const bar = progressBar({ isTTY: false, write: (s) => out.push(s) }, 'Pushing', {
      bar: true,
      lines: true,
      notes: true,
      direction: 'up',
    });
    const config = desc(2, 'application/vnd.wasm.config.v1+json', 'c');
    const layer = desc(151, 'application/wasm', 'l');
    const other = desc(10, 'application/wasm', 'm');
    const manifest = desc(398, 'application/vnd.oci.image.manifest.v1+json', 'f');
    bar.onProgress({ type: 'skip', desc: config });
    bar.onProgress({ type: 'mount', desc: other });
    bar.onProgress({ type: 'start', desc: layer });
    bar.onProgress({ type: 'done', desc: layer });
    bar.onProgress({ type: 'done', desc: manifest });
    bar.summary();
    assert.deepEqual(out, [
      `Exists     sha256:${'c'.repeat(64)} (2 bytes, application/vnd.wasm.config.v1+json)\n`,
      `Mounted    sha256:${'m'.repeat(64)} (10 bytes, application/wasm)\n`,
      `Uploaded   sha256:${'l'.repeat(64)} (151 bytes, application/wasm)\n`,
      `Uploaded   sha256:${'f'.repeat(64)} (398 bytes, application/vnd.oci.image.manifest.v1+json)\n`,
      'Sent 151 bytes in 1 blob; 1 blob (2 bytes) already there, 1 blob mounted\n',
    ]);
  });

  it('a pull says Downloaded or Cached, and what it received', () => {
    for (const cached of [false, true]) {
      const out: string[] = [];
      const bar = progressBar({ write: (s) => out.push(s) }, 'Pulling', { ...BAR, lines: true });
      const layer = desc(151);
      if (cached) bar.onProgress({ type: 'cached', desc: layer });
      bar.onProgress({ type: 'start', desc: layer });
      bar.onProgress({ type: 'done', desc: layer });
      bar.summary();
      assert.deepEqual(out, [
        `${cached ? 'Cached    ' : 'Downloaded'} sha256:${'a'.repeat(64)} (151 bytes, application/wasm)\n`,
        cached ? 'Received 0 bytes, 151 bytes from the cache\n' : 'Received 151 bytes\n',
      ]);
    }
  });

  it('without -v, a push that skipped blobs says so once; one that skipped none says nothing', () => {
    const run = (
      events: Array<Parameters<ReturnType<typeof progressBar>['onProgress']>[0]>,
      notes = true,
    ) => {
      const out: string[] = [];
      const bar = progressBar({ write: (s) => out.push(s) }, 'Pushing', { ...BAR, notes, direction: 'up' });
      for (const e of events) bar.onProgress(e);
      bar.summary();
      return out;
    };
    const config = desc(2, 'application/vnd.wasm.config.v1+json', 'c');
    const layer = desc(151);
    assert.deepEqual(
      run([
        { type: 'skip', desc: config },
        { type: 'skip', desc: layer },
      ]),
      ['Sent 0 bytes in 0 blobs; 2 blobs (153 bytes) already there\n'],
    );
    assert.deepEqual(
      run([
        { type: 'done', desc: config },
        { type: 'done', desc: layer },
      ]),
      [],
    );
    assert.deepEqual(run([{ type: 'skip', desc: layer }], false), [], '-q and --json: no note');
  });

  it('reads -q, --no-progress, --json and -v', () => {
    assert.deepEqual(progressSettings({}, 'up'), { bar: true, lines: false, notes: true, direction: 'up' });
    assert.deepEqual(progressSettings({ quiet: true, verbose: true }, 'down'), {
      bar: false,
      lines: false,
      notes: false,
      direction: 'down',
    });
    assert.equal(progressSettings({ 'no-progress': true }, 'up').bar, false);
    assert.equal(progressSettings({ 'no-progress': true }, 'up').notes, true);
    assert.deepEqual(progressSettings({ json: true, debug: true }, 'up'), {
      bar: false,
      lines: true,
      notes: false,
      direction: 'up',
    });
  });
});
