import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classicTitle, packClassic } from '../wasm/classic.js';
import { digestOf } from './digest.js';
import { parseManifest, serializeIndex, serializeManifest } from './manifest.js';

// FORMATS.md of the design brief section 1: the original tool's manifests, byte for byte.
const GOLDEN = [
  {
    title: 'testdata/hello.wasm',
    layer: 'sha256:4c7915b4c1f9b0c13f962998e4199ceb00db39a4a7fa4554f40ae0bed83d9510',
    size: 1624962,
    manifestSize: 411,
    manifestDigest: 'sha256:9c82cbe576ee947c00435ac8053a800a1969f4757ae4a81f870f714674afc91a',
  },
  {
    title: 'testdata/canonicaljson.wasm',
    layer: 'sha256:69286bc946266e89095151f5e12c77eae3824379b7b297141cc4cc7b5711832a',
    size: 4104496,
    manifestSize: 419,
    manifestDigest: 'sha256:aa0590cfc8f097471a42ba7b4c8e3addad420a13580a53db34ea634a36eb9363',
  },
];

const HELLO_BYTES =
  '{"schemaVersion":2,"config":{"mediaType":"application/vnd.wasm.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.wasm.content.layer.v1+wasm","digest":"sha256:4c7915b4c1f9b0c13f962998e4199ceb00db39a4a7fa4554f40ae0bed83d9510","size":1624962,"annotations":{"org.opencontainers.image.title":"testdata/hello.wasm"}}]}';

describe('classic manifest serialisation (golden vectors)', () => {
  for (const g of GOLDEN) {
    it(`reproduces the original tool's manifest for ${g.title}`, () => {
      const packed = packClassic({ digest: g.layer, size: g.size }, g.title);
      assert.equal(packed.bytes.length, g.manifestSize);
      assert.equal(packed.desc.size, g.manifestSize);
      assert.equal(digestOf(packed.bytes), g.manifestDigest);
      assert.equal(packed.desc.digest, g.manifestDigest);
      assert.equal(packed.desc.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    });
  }

  it('writes exactly the documented 411 bytes for testdata/hello.wasm', () => {
    const g = GOLDEN[0];
    assert.ok(g);
    const packed = packClassic({ digest: g.layer, size: g.size }, g.title);
    assert.equal(Buffer.from(packed.bytes).toString('utf8'), HELLO_BYTES);
  });

  it('round-trips: parse then serialise gives the same bytes', () => {
    const parsed = parseManifest(Buffer.from(HELLO_BYTES));
    assert.equal(parsed.kind, 'manifest');
    if (parsed.kind !== 'manifest') return;
    assert.equal(parsed.manifest.mediaType, undefined, 'the classic manifest has no top-level mediaType');
    assert.equal(Buffer.from(serializeManifest(parsed.manifest)).toString('utf8'), HELLO_BYTES);
  });

  it('keeps a relative title as typed and reduces an absolute path to its base name', () => {
    assert.equal(classicTitle('testdata/hello.wasm'), 'testdata/hello.wasm');
    assert.equal(classicTitle('./hello.wasm'), './hello.wasm');
    assert.equal(classicTitle('/home/me/build/hello.wasm'), 'hello.wasm');
  });

  it('escapes <, > and & in annotations as Go does', () => {
    const packed = packClassic({ digest: GOLDEN[0]?.layer ?? '', size: 1 }, 'a<b>&c.wasm');
    assert.match(Buffer.from(packed.bytes).toString(), /"a\\u003cb\\u003e\\u0026c\.wasm"/);
  });
});

describe('parseManifest', () => {
  it('reads an OCI manifest with mediaType and annotations', () => {
    const body = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.wasm.config.v0+json',
        digest: `sha256:${'a'.repeat(64)}`,
        size: 10,
      },
      layers: [{ mediaType: 'application/wasm', digest: `sha256:${'b'.repeat(64)}`, size: 20 }],
      annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
    };
    const parsed = parseManifest(Buffer.from(JSON.stringify(body)));
    assert.equal(parsed.kind, 'manifest');
    if (parsed.kind === 'manifest') {
      assert.equal(parsed.manifest.layers[0]?.mediaType, 'application/wasm');
      assert.equal(parsed.manifest.annotations?.['org.opencontainers.image.created'], '2024-01-01T00:00:00Z');
    }
  });

  it('tells an index by its manifests list when mediaType is absent', () => {
    const body = {
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${'c'.repeat(64)}`,
          size: 5,
          platform: { architecture: 'wasm', os: 'wasip1' },
        },
      ],
    };
    const parsed = parseManifest(Buffer.from(JSON.stringify(body)));
    assert.equal(parsed.kind, 'index');
    if (parsed.kind === 'index') {
      assert.equal(parsed.index.manifests[0]?.platform?.os, 'wasip1');
      assert.equal(
        Buffer.from(serializeIndex(parsed.index)).toString(),
        `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:${'c'.repeat(64)}","size":5,"platform":{"architecture":"wasm","os":"wasip1"}}]}`,
      );
    }
  });

  const bad: Array<[string, string, string]> = [
    ['not JSON', '{', 'INVALID_MANIFEST'],
    ['an array', '[]', 'INVALID_MANIFEST'],
    ['schema version 1', '{"schemaVersion":1}', 'UNSUPPORTED'],
    ['no layers', '{"schemaVersion":2,"config":{}}', 'INVALID_MANIFEST'],
    [
      'a bad digest',
      '{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:abc","size":1},"layers":[]}',
      'INVALID_MANIFEST',
    ],
    [
      'a negative size',
      `{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:${'a'.repeat(64)}","size":-1},"layers":[]}`,
      'INVALID_MANIFEST',
    ],
    [
      'non-string annotations',
      `{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:${'a'.repeat(64)}","size":1},"layers":[],"annotations":{"a":1}}`,
      'INVALID_MANIFEST',
    ],
  ];
  for (const [name, text, code] of bad) {
    it(`rejects ${name} with ${code}`, () => {
      assert.throws(() => parseManifest(Buffer.from(text)), { code });
    });
  }

  it('refuses manifests over 4 MiB before parsing', () => {
    assert.throws(() => parseManifest(Buffer.alloc(4 * 1024 * 1024 + 1, 0x20)), { code: 'TOO_LARGE' });
  });
});
