import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

// The public surface is reviewed through api/wasm-to-oci.api.md: the built declarations of every
// entry point must match it, and each entry point must load as the package exports it.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('public API', () => {
  it('matches the committed API report (npm run api:report after a reviewed change)', () => {
    const res = spawnSync(process.execPath, ['scripts/api-report.mjs', '--check'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /matches/);
  });

  it('loads every entry point by its package name, and keeps internals out of the root', async () => {
    // By name at run time (the type-check runs before the build makes dist/, which the names point at).
    const load = (name: string) => import(name) as Promise<Record<string, unknown>>;
    const root = await load('wasm-to-oci');
    for (const name of [
      'push',
      'pull',
      'copyArtifact',
      'inspectArtifact',
      'runWasm',
      'login',
      'WasmOciError',
      'VERSION',
    ])
      assert.ok(name in root, name);
    for (const name of ['FileBackedStore', 'readVerified', 'runHelper', 'RegistryClient', 'IN_MEMORY_LIMIT'])
      assert.ok(!(name in root), `${name} is internal to the root entry point`);
    const content = await load('wasm-to-oci/content');
    for (const name of ['copy', 'copyGraph', 'MemoryStore', 'OciLayoutStore', 'parseManifest', 'digestOf'])
      assert.equal(typeof content[name], 'function', name);
    const registry = await load('wasm-to-oci/registry');
    for (const name of ['RemoteRepository', 'RegistryClient', 'NodeHttpEngine'])
      assert.equal(typeof registry[name], 'function', name);
    const wasm = await load('wasm-to-oci/wasm');
    for (const name of ['inspectWasm', 'detectWasm', 'packModule', 'packClassic', 'selectWasmLayer'])
      assert.equal(typeof wasm[name], 'function', name);
  });
});
