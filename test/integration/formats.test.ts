import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pull } from '../../src/ops/pull.js';
import { HELLO_WASM, tempDir } from '../harness/fixtures.js';
import { rawPushBlob, rawPushManifest, sha256 } from '../harness/raw.js';
import { type RegistryServer, startRegistry } from '../harness/registry.js';

/**
 * Every wasm-in-OCI layout of section 3 of the design brief's FORMATS.md, built here by hand and pushed with raw HTTP
 * requests (not through the library); our pull must take the right layer each time, or list the layers.
 */

let registry: RegistryServer;
let dir: Awaited<ReturnType<typeof tempDir>>;
let module: Buffer;
const other = Buffer.from('{"not":"wasm"}');

before(async () => {
  registry = await startRegistry();
  dir = await tempDir();
  module = await readFile(HELLO_WASM);
});
after(async () => {
  await registry?.stop();
  await dir?.remove();
});

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
let n = 0;

async function publish(
  repo: string,
  config: { mediaType: string; data: Buffer },
  layers: Array<{ mediaType: string; data: Buffer; title?: string }>,
  extra: Record<string, unknown> = {},
  manifestType = OCI_MANIFEST,
): Promise<{ digest: string; size: number; mediaType: string }> {
  const configDigest = await rawPushBlob(registry.host, repo, config.data);
  const descriptors = [];
  for (const l of layers) {
    descriptors.push({
      mediaType: l.mediaType,
      digest: await rawPushBlob(registry.host, repo, l.data),
      size: l.data.length,
      ...(l.title ? { annotations: { 'org.opencontainers.image.title': l.title } } : {}),
    });
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: manifestType,
      ...extra,
      config: { mediaType: config.mediaType, digest: configDigest, size: config.data.length },
      layers: descriptors,
    }),
  );
  const digest = await rawPushManifest(registry.host, repo, 'v1', manifest, manifestType);
  return { digest, size: manifest.length, mediaType: manifestType };
}

async function pullTo(reference: string, options: { layer?: string; platform?: string } = {}) {
  const output = join(dir.path, `out${n++}.wasm`);
  const result = await pull({ reference: `${registry.host}/${reference}`, output, ...options });
  assert.deepEqual(await readFile(output), module, 'the module bytes came out');
  return result;
}

describe('pull reads every layout in the wild', () => {
  it('CNCF with null author/component', async () => {
    const config = Buffer.from(
      JSON.stringify({
        created: '2024-01-01T00:00:00Z',
        author: null,
        architecture: 'wasm',
        os: 'wasip1',
        layerDigests: [sha256(module)],
        component: null,
      }),
    );
    await publish('f/cncf', { mediaType: 'application/vnd.wasm.config.v0+json', data: config }, [
      { mediaType: 'application/wasm', data: module },
    ]);
    assert.equal((await pullTo('f/cncf:v1')).mediaType, 'application/wasm');
  });

  it('wasmCloud legacy layer', async () => {
    await publish(
      'f/wasmcloud',
      { mediaType: 'application/vnd.wasmcloud.actor.archive.config', data: other },
      [{ mediaType: 'application/vnd.module.wasm.content.layer.v1+wasm', data: module }],
    );
    await pullTo('f/wasmcloud:v1');
  });

  it('Istio / solo.io', async () => {
    await publish('f/istio', { mediaType: 'application/vnd.module.wasm.config.v1+json', data: other }, [
      { mediaType: 'application/vnd.module.wasm.content.layer.v1+wasm', data: module },
    ]);
    await pullTo('f/istio:v1');
  });

  it('oras generic push: application/wasm layer beside others', async () => {
    await publish(
      'f/oras',
      { mediaType: 'application/vnd.oci.empty.v1+json', data: Buffer.from('{}') },
      [
        { mediaType: 'text/markdown', data: Buffer.from('# readme'), title: 'README.md' },
        { mediaType: 'application/wasm', data: module, title: 'plugin.wasm' },
      ],
      { artifactType: 'application/vnd.example.plugin' },
    );
    await pullTo('f/oras:v1');
  });

  it('oras generic push with an untyped layer whose bytes start with \\0asm', async () => {
    await publish('f/sniff', { mediaType: 'application/vnd.oci.empty.v1+json', data: Buffer.from('{}') }, [
      { mediaType: 'application/vnd.oci.image.layer.v1.tar', data: Buffer.from('not a module at all') },
      { mediaType: 'application/octet-stream', data: module, title: 'plugin.bin' },
    ]);
    await pullTo('f/sniff:v1');
  });

  it('Docker schema 2 manifest', async () => {
    await publish(
      'f/docker',
      { mediaType: 'application/vnd.docker.container.image.v1+json', data: other },
      [{ mediaType: 'application/vnd.wasm.content.layer.v1+wasm', data: module }],
      {},
      'application/vnd.docker.distribution.manifest.v2+json',
    );
    await pullTo('f/docker:v1');
  });

  it('Spin application: several wasm layers are listed, and --layer picks one', async () => {
    await publish('f/spin', { mediaType: 'application/vnd.oci.image.config.v1+json', data: other }, [
      { mediaType: 'application/vnd.wasm.content.layer.v1+wasm', data: module, title: 'api.wasm' },
      {
        mediaType: 'application/vnd.wasm.content.layer.v1+wasm',
        data: Buffer.concat([module, Buffer.from([0])]),
        title: 'ui.wasm',
      },
      { mediaType: 'application/vnd.fermyon.spin.application.v1+config', data: other },
    ]);
    await assert.rejects(
      pull({ reference: `${registry.host}/f/spin:v1`, output: join(dir.path, 'never.wasm') }),
      (err: Error & { code?: string; hint?: string }) => {
        assert.equal(err.code, 'NO_WASM_LAYER');
        assert.match(err.message, /2 layers hold wasm modules/);
        assert.match(err.message, /api\.wasm/);
        assert.match(err.message, /ui\.wasm/);
        assert.match(err.hint ?? '', /the `layer` option/);
        return true;
      },
    );
    await pullTo('f/spin:v1', { layer: 'api.wasm' });
  });

  it('an image index: the wasm platform entry, or --platform', async () => {
    const wasip1 = await publish(
      'f/index',
      { mediaType: 'application/vnd.wasm.config.v0+json', data: Buffer.from('{"os":"wasip1"}') },
      [{ mediaType: 'application/wasm', data: module }],
    );
    const linuxConfig = Buffer.from('{"os":"linux"}');
    const linux = await publish(
      'f/index',
      { mediaType: 'application/vnd.oci.image.config.v1+json', data: linuxConfig },
      [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', data: other }],
    );
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { ...linux, platform: { os: 'linux', architecture: 'amd64' } },
          { ...wasip1, platform: { os: 'wasip1', architecture: 'wasm' } },
        ],
      }),
    );
    const indexDigest = await rawPushManifest(
      registry.host,
      'f/index',
      'multi',
      index,
      'application/vnd.oci.image.index.v1+json',
    );
    assert.equal((await pullTo('f/index:multi')).manifest.digest, wasip1.digest);
    assert.equal((await pullTo('f/index:multi', { platform: 'wasip1/wasm' })).manifest.digest, wasip1.digest);
    assert.equal((await pullTo(`f/index@${indexDigest}`)).manifest.digest, wasip1.digest, 'by digest too');
    await assert.rejects(
      pull({
        reference: `${registry.host}/f/index:multi`,
        output: join(dir.path, 'x'),
        platform: 'wasip2/wasm',
      }),
      {
        code: 'NO_WASM_LAYER',
      },
    );
  });

  it('a GHCR-style sha256-<hex> tag resolves like any tag', async () => {
    const published = await publish(
      'f/ghcr',
      { mediaType: 'application/vnd.wasm.config.v1+json', data: Buffer.from('{}') },
      [{ mediaType: 'application/vnd.wasm.content.layer.v1+wasm', data: module }],
    );
    const manifest = await (await import('../harness/raw.js')).rawGetManifest(registry.host, 'f/ghcr', 'v1');
    await rawPushManifest(
      registry.host,
      'f/ghcr',
      `sha256-${published.digest.slice(7)}`,
      manifest.body,
      OCI_MANIFEST,
    );
    await pullTo(`f/ghcr:sha256-${published.digest.slice(7)}`);
  });

  it('one tar layer that is no tar archive: said so, nothing written', async () => {
    await publish('f/badtar', { mediaType: 'application/vnd.oci.image.config.v1+json', data: other }, [
      { mediaType: 'application/vnd.oci.image.layer.v1.tar', data: other, title: 'rootfs.tar' },
    ]);
    await assert.rejects(
      pull({ reference: `${registry.host}/f/badtar:v1`, output: join(dir.path, 'never.wasm') }),
      {
        code: 'INVALID_WASM',
        message:
          /^layer sha256:[0-9a-f]{64} \(application\/vnd\.oci\.image\.layer\.v1\.tar\) is not a readable tar archive: /,
      },
    );
    await assert.rejects(readFile(join(dir.path, 'never.wasm')), { code: 'ENOENT' });
  });

  it('no wasm layer at all: the layers are listed', async () => {
    await publish('f/none', { mediaType: 'application/vnd.oci.image.config.v1+json', data: other }, [
      { mediaType: 'application/vnd.oci.image.layer.v1.tar', data: other, title: 'rootfs.tar' },
      { mediaType: 'text/plain', data: other, title: 'notes.txt' },
    ]);
    await assert.rejects(
      pull({ reference: `${registry.host}/f/none:v1`, output: join(dir.path, 'never.wasm') }),
      /no layer holds a wasm module; the layers are: application\/vnd\.oci\.image\.layer\.v1\.tar 14 bytes rootfs\.tar; text\/plain 14 bytes notes\.txt$/,
    );
  });
});
