import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Descriptor } from '../oci/descriptor.js';
import type { ImageIndex, ImageManifest } from '../oci/manifest.js';
import { detectWasm, requireWasm } from './detect.js';
import { selectIndexEntry, selectWasmLayer } from './select.js';

const bytes = (...b: number[]) => Uint8Array.from(b);

describe('detectWasm', () => {
  it('tells modules from components by the layer field', () => {
    assert.equal(detectWasm(bytes(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0)), 'module');
    assert.equal(detectWasm(bytes(0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0)), 'component');
    assert.equal(detectWasm(bytes(0, 0x61, 0x73, 0x6d, 0x0a, 0, 1, 0)), 'component');
  });
  it('refuses anything else', () => {
    assert.equal(detectWasm(bytes(0, 0x61, 0x73, 0x6d, 2, 0, 0, 0)), undefined);
    assert.equal(detectWasm(bytes(0, 0x61, 0x73, 0x6d)), undefined);
    assert.equal(detectWasm(Buffer.from('(module)')), undefined);
    assert.throws(() => requireWasm(Buffer.from('(module)'), 'x.wat'), {
      code: 'NOT_WASM',
      message: /^x\.wat is not a WebAssembly binary: it is WebAssembly text \(\.wat\), not a binary$/,
      hint: /wat2wasm/,
    });
    assert.throws(() => requireWasm(bytes(0, 0x61, 0x73, 0x6d, 9, 0, 0, 0), 'y'), {
      message: /^y is not a WebAssembly binary: it is WebAssembly version 9, layer 0, which is neither/,
      hint: undefined,
    });
    assert.throws(() => requireWasm(bytes(), 'e'), {
      message: /^e is not a WebAssembly binary: it is empty$/,
    });
    assert.throws(() => requireWasm(Buffer.from('# Title\n\nText'), 'README.md'), {
      message: /^README\.md is not a WebAssembly binary: it does not start with \\0asm$/,
      hint: undefined,
    });
  });
});

const d = (mediaType: string, n: string, title?: string): Descriptor => ({
  mediaType,
  digest: `sha256:${n.repeat(64)}`,
  size: 10,
  ...(title ? { annotations: { 'org.opencontainers.image.title': title } } : {}),
});
const manifest = (layers: Descriptor[], artifactType?: string): ImageManifest => ({
  schemaVersion: 2,
  config: d('application/vnd.oci.empty.v1+json', 'e'),
  layers,
  ...(artifactType ? { artifactType } : {}),
});

describe('selectWasmLayer', () => {
  it('takes the classic layer', async () => {
    const layer = d('application/vnd.wasm.content.layer.v1+wasm', 'a');
    assert.equal(await selectWasmLayer(manifest([layer])), layer);
  });
  it('takes the CNCF layer among non-wasm layers', async () => {
    const layer = d('application/wasm', 'b');
    assert.equal(await selectWasmLayer(manifest([d('text/plain', 'c'), layer])), layer);
  });
  it('lists the layers when several qualify', async () => {
    const layers = [
      d('application/vnd.wasm.content.layer.v1+wasm', 'a', 'one.wasm'),
      d('application/vnd.wasm.content.layer.v1+wasm', 'b', 'two.wasm'),
    ];
    await assert.rejects(
      selectWasmLayer(manifest(layers)),
      (err: Error & { code?: string; hint?: string }) => {
        assert.equal(err.code, 'NO_WASM_LAYER');
        assert.match(err.message, /2 layers hold wasm modules/);
        assert.match(err.message, /one\.wasm/);
        assert.match(err.message, /two\.wasm/);
        assert.match(err.hint ?? '', /the `layer` option/);
        return true;
      },
    );
    assert.equal(await selectWasmLayer(manifest(layers), { layer: 'two.wasm' }), layers[1]);
    assert.equal(await selectWasmLayer(manifest(layers), { layer: layers[0]?.digest }), layers[0]);
    await assert.rejects(selectWasmLayer(manifest(layers), { layer: 'three' }), { code: 'NO_WASM_LAYER' });
  });
  it('sniffs \\0asm in generic layers when asked to', async () => {
    const layers = [
      d('application/octet-stream', 'a', 'x.bin'),
      d('application/octet-stream', 'b', 'y.wasm'),
    ];
    const peek = async (l: Descriptor) =>
      l.digest === layers[1]?.digest
        ? Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])
        : Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(await selectWasmLayer(manifest(layers), { peek }), layers[1]);
  });
  it('fails when no layer holds wasm', async () => {
    await assert.rejects(selectWasmLayer(manifest([d('text/plain', 'c')])), {
      message: /no layer holds a wasm module/,
    });
  });
});

describe('selectIndexEntry', () => {
  const m = (n: string, os?: string, architecture?: string): Descriptor => ({
    ...d('application/vnd.oci.image.manifest.v1+json', n),
    ...(os && architecture ? { platform: { os, architecture } } : {}),
  });
  const index = (manifests: Descriptor[]): ImageIndex => ({ schemaVersion: 2, manifests });
  it('takes the only entry', () => {
    const only = m('a');
    assert.equal(selectIndexEntry(index([only])), only);
  });
  it('takes the wasm platform entry', () => {
    const wasm = m('b', 'wasip1', 'wasm');
    assert.equal(selectIndexEntry(index([m('a', 'linux', 'amd64'), wasm])), wasm);
  });
  it('picks by --platform', () => {
    const p2 = m('c', 'wasip2', 'wasm');
    assert.equal(selectIndexEntry(index([m('a', 'wasip1', 'wasm'), p2]), 'wasip2/wasm'), p2);
    assert.throws(() => selectIndexEntry(index([p2]), 'linux/amd64'), { code: 'NO_WASM_LAYER' });
  });
  it('refuses to guess', () => {
    assert.throws(() => selectIndexEntry(index([m('a', 'linux', 'amd64'), m('b', 'linux', 'arm64')])), {
      code: 'NO_WASM_LAYER',
    });
  });
});
