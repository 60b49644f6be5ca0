import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressBar } from './progress.js';

const desc = (size: number) => ({ mediaType: 'application/wasm', digest: `sha256:${'a'.repeat(64)}`, size });

describe('progress bar', () => {
  it('draws on a terminal for large blobs, throttled, and clears at the end', () => {
    const out: string[] = [];
    let now = 0;
    const bar = progressBar({ isTTY: true, columns: 100, write: (s) => out.push(s) }, 'Pulling', () => now);
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
  it('stays silent when stderr is not a terminal or the blob is small', () => {
    const out: string[] = [];
    const piped = progressBar({ isTTY: false, write: (s) => out.push(s) }, 'Pushing');
    piped.onProgress({ type: 'start', desc: desc(1 << 30) });
    piped.onProgress({ type: 'progress', desc: desc(1 << 30), bytes: 1 << 29 });
    piped.finish();
    const small = progressBar({ isTTY: true, write: (s) => out.push(s) }, 'Pushing');
    small.onProgress({ type: 'start', desc: desc(1000) });
    small.onProgress({ type: 'progress', desc: desc(1000), bytes: 1000 });
    small.finish();
    assert.deepEqual(out, []);
  });
});
