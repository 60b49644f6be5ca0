import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { TESTDATA } from './harness/fixtures.js';

it('testdata/*.wasm are exactly what their .wat sources assemble to', async () => {
  const url = new URL('../../scripts/build-testdata.mjs', import.meta.url).href;
  const { assemble } = (await import(url)) as { assemble(name: string, text: string): Promise<Buffer> };
  for (const name of ['hello', 'exit3', 'probe']) {
    const built = await assemble(`${name}.wat`, await readFile(join(TESTDATA, `${name}.wat`), 'utf8'));
    assert.deepEqual(
      await readFile(join(TESTDATA, `${name}.wasm`)),
      built,
      `${name}.wasm is stale: npm run testdata`,
    );
  }
});
