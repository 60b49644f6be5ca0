import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadRegistryMemory } from './registry-memory.js';

describe('registry memory file', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'w2o-memory-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const file = (root: string) => join(root, 'wasm-to-oci', 'registries.json');

  it('keeps what was learnt between runs, privately, and writes only when something changed', async () => {
    const env = { XDG_CACHE_HOME: join(dir, 'a') };
    const first = loadRegistryMemory(env);
    first.save();
    await assert.rejects(stat(file(env.XDG_CACHE_HOME)), 'nothing learnt: nothing written');
    first.memory.schemes.set('127.0.0.1:5000', 'https');
    first.memory.uploads.set('ghcr.io', 'chunked');
    first.memory.noSinglePost.add('127.0.0.1:5000');
    first.save();
    assert.equal((await stat(file(env.XDG_CACHE_HOME))).mode & 0o777, 0o600);
    const second = loadRegistryMemory(env);
    assert.equal(second.memory.schemes.get('127.0.0.1:5000'), 'https');
    assert.equal(second.memory.uploads.get('ghcr.io'), 'chunked');
    assert.ok(second.memory.noSinglePost.has('127.0.0.1:5000'));
  });

  it('ignores a corrupt or hostile file', async () => {
    const cases = [
      'not json',
      'null',
      '[]',
      '{"schemes":"x","uploads":[1],"noSinglePost":{"a":1}}',
      '{"schemes":{"__proto__":"https","h":"ftp"},"uploads":{"h":"teleport","constructor":"stream"},"noSinglePost":[1,null,"ok"]}',
    ];
    for (const [i, text] of cases.entries()) {
      const root = join(dir, `bad${i}`);
      await mkdir(join(root, 'wasm-to-oci'), { recursive: true });
      await writeFile(file(root), text);
      const { memory } = loadRegistryMemory({ XDG_CACHE_HOME: root });
      assert.equal(memory.schemes.get('h'), undefined, text);
      assert.equal(memory.uploads.get('h'), undefined, text);
      assert.ok(!Object.hasOwn(Object.prototype, 'https'));
      assert.deepEqual([...memory.noSinglePost], i === 4 ? ['ok'] : [], text);
      assert.equal(await readFile(file(root), 'utf8'), text, 'left as it was');
    }
  });
});
