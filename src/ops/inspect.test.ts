import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { deepJson } from '../../test/harness/fuzz.js';
import { jsonSafe } from '../cli/output.js';
import { OciLayoutStore } from '../content/layout.js';
import { digestOf } from '../oci/digest.js';
import { serializeManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatypes.js';
import { WasmMediaType } from '../wasm/mediatypes.js';
import { inspectArtifact } from './inspect.js';

/** inspectArtifact on layouts whose config blob is hostile JSON. */

const HELLO = fileURLToPath(new URL('../../../testdata/hello.wasm', import.meta.url));

describe('inspectArtifact config JSON', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-describe-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function artifact(name: string, config: Buffer): Promise<string> {
    const store = new OciLayoutStore(join(dir, name));
    const module = await readFile(HELLO);
    const layer = { mediaType: WasmMediaType.cncfLayer, digest: digestOf(module), size: module.length };
    const configDesc = { mediaType: WasmMediaType.cncfConfig, digest: digestOf(config), size: config.length };
    await store.push(layer, module);
    await store.push(configDesc, config);
    const bytes = serializeManifest({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: configDesc,
      layers: [layer],
    });
    await store.pushReference(
      { mediaType: MediaType.ociManifest, digest: digestOf(bytes), size: bytes.length },
      bytes,
      'v1',
    );
    return `oci:${store.root}:v1`;
  }

  it('reports a JSON config, and leaves out one nested too deep to print (regression)', async () => {
    // A config of 12,000 nested arrays made `inspect --json` overflow the stack in JSON.stringify.
    const shallow = await inspectArtifact({
      reference: await artifact('shallow', Buffer.from('{"os":"wasip1"}')),
    });
    assert.deepEqual(shallow.configJson, { os: 'wasip1' });
    for (const kind of ['array', 'object', 'mixed'] as const) {
      const report = await inspectArtifact({
        reference: await artifact(`deep-${kind}`, Buffer.from(deepJson(12_000, kind))),
      });
      assert.equal(report.configJson, undefined, kind);
      assert.equal(typeof jsonSafe(report), 'string');
    }
    const limit = await inspectArtifact({
      reference: await artifact('at-limit', Buffer.from(deepJson(511, 'mixed'))),
    });
    assert.ok(limit.configJson !== undefined);
    assert.equal(typeof jsonSafe(limit), 'string');
  });
});
