import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HELLO_WASM, tempDir } from '../../test/harness/fixtures.js';
import { hasCode } from '../errors.js';
import { parseManifest } from '../oci/manifest.js';
import { copyAllTags, type TagOutcome } from './copy.js';
import { push } from './push.js';
import { getManifest, listTags, resolveReference } from './repository.js';

// copyAllTags between layouts, in process: selection, order, a corrupt blob failing one tag only,
// cancellation ending the whole copy, and the checks made before anything is opened.

let work: Awaited<ReturnType<typeof tempDir>>;
let source: string;
const TAGS = ['a1', 'a2', 'b1', 'b2', 'c1', 'latest'];

before(async () => {
  work = await tempDir();
  source = `oci:${join(work.path, 'src')}`;
  const hello = await readFile(HELLO_WASM);
  for (const [i, tag] of TAGS.entries()) {
    // A distinct module per tag: hello.wasm with one more custom section byte.
    const file = join(work.path, `${tag}.wasm`);
    await writeFile(file, Buffer.concat([hello, Buffer.from([0, 2, 1, 0x61 + i])]));
    await push({ file, reference: `${source}:${tag}` });
  }
});
after(async () => {
  await work?.remove();
});

let n = 0;
const fresh = () => `oci:${join(work.path, `dst${n++}`)}`;

describe('copyAllTags', () => {
  it('copies the selected tags in sorted order, reporting each as it settles; a rerun skips them all', async () => {
    const destination = fresh();
    const seen: TagOutcome[] = [];
    const result = await copyAllTags({
      source,
      destination,
      include: ['a*', 'b?', 'latest'],
      exclude: ['b2'],
      concurrency: 2,
      onTag: (o) => seen.push(o),
    });
    assert.deepEqual(
      result.tags.map((t) => t.tag),
      ['a1', 'a2', 'b1', 'latest'],
    );
    assert.deepEqual(seen.map((o) => o.tag).sort(), ['a1', 'a2', 'b1', 'latest']);
    assert.deepEqual(result.failed, []);
    assert.equal(result.source, source);
    assert.equal(result.destination, destination);
    assert.deepEqual((await listTags({ reference: destination })).sort(), ['a1', 'a2', 'b1', 'latest']);
    for (const t of result.tags) {
      assert.equal((await resolveReference({ reference: `${source}:${t.tag}` })).digest, t.manifest.digest);
      assert.equal(
        (await resolveReference({ reference: `${destination}:${t.tag}` })).digest,
        t.manifest.digest,
      );
    }
    const again = await copyAllTags({
      source,
      destination,
      include: ['a*', 'b?', 'latest'],
      exclude: ['b2'],
    });
    assert.ok(again.tags.every((t) => t.skipped && t.bytesSent === 0));
    assert.equal(again.bytesSent, 0);
  });

  it('fails only the tag whose blob is corrupt, and a rerun after the repair completes', async () => {
    const corrupt = `oci:${join(work.path, 'corrupt')}`;
    await copyAllTags({ source, destination: corrupt });
    const { bytes } = await getManifest({ reference: `${corrupt}:b1` });
    const parsed = parseManifest(bytes);
    assert.equal(parsed.kind, 'manifest');
    const layer = parsed.kind === 'manifest' ? parsed.manifest.layers[0] : undefined;
    const blob = join(work.path, 'corrupt', 'blobs', 'sha256', layer?.digest.slice(7) ?? '');
    const good = await readFile(blob);
    const bad = Buffer.from(good);
    bad.writeUInt8((bad.at(-1) ?? 0) ^ 0xff, bad.length - 1);
    await writeFile(blob, bad);
    const destination = fresh();
    const result = await copyAllTags({ source: corrupt, destination });
    assert.deepEqual(
      result.failed.map((f) => [f.tag, f.error.code]),
      [['b1', 'DIGEST_MISMATCH']],
    );
    assert.deepEqual(
      result.tags.map((t) => t.tag),
      TAGS.filter((t) => t !== 'b1'),
    );
    assert.deepEqual(
      (await listTags({ reference: destination })).sort(),
      TAGS.filter((t) => t !== 'b1'),
    );
    await writeFile(blob, good);
    const rerun = await copyAllTags({ source: corrupt, destination });
    assert.deepEqual(result.failed.length, 1);
    assert.deepEqual(rerun.failed, []);
    assert.deepEqual(
      rerun.tags.filter((t) => !t.skipped).map((t) => [t.tag, t.bytesSent]),
      [['b1', layer?.size]],
    );
  });

  it('ends the whole copy when cancelled', async () => {
    const controller = new AbortController();
    const destination = fresh();
    await assert.rejects(
      copyAllTags({
        source,
        destination,
        concurrency: 1,
        signal: controller.signal,
        onTag: () => controller.abort(),
      }),
      (err: unknown) => hasCode(err, 'ABORTED'),
    );
    assert.ok((await listTags({ reference: destination })).length < TAGS.length);
  });

  it('checks references and patterns before opening anything', async () => {
    const missing = `oci:${join(work.path, 'never-created')}`;
    for (const [options, message] of [
      [{ source: `${source}:a1`, destination: missing }, /needs a source repository/],
      [{ source, destination: `${missing}:v1` }, /needs a destination repository/],
      [{ source: missing, destination: missing, include: ['[a'] }, /pattern "\[a" of the `include` option/],
      [{ source: missing, destination: missing, exclude: [''] }, /of the `exclude` option is empty/],
    ] as const) {
      await assert.rejects(
        copyAllTags(options),
        (err: unknown) => hasCode(err, 'USAGE') && message.test(err.message),
      );
    }
    // A source that does not exist is an error of the listing, not a usage error.
    await assert.rejects(copyAllTags({ source: missing, destination: fresh() }), (err: unknown) =>
      hasCode(err, 'NOT_FOUND'),
    );
  });
});
