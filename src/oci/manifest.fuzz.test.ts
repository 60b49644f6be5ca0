import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  assertFast,
  DEPTHS,
  deepJson,
  defineOwn,
  expectResultOrError,
  expectResultOrErrorAsync,
  HOSTILE_KEYS,
  HOSTILE_STRINGS,
  mutateBytesN,
  mutateJson,
  Rng,
  toText,
  truncations,
} from '../../test/harness/fuzz.js';
import {
  anyString,
  hostileKey,
  hostileNumber,
  hostileValue,
  jsonInput,
  mostly,
  nearRecord,
  optional,
  outcome,
  params,
  withKey,
} from '../../test/harness/properties.js';
import { selectIndexEntry, selectWasmLayer } from '../wasm/select.js';
import { type Descriptor, parseAnnotations, parseDescriptor } from './descriptor.js';
import { goMap, goString } from './gojson.js';
import {
  goDescriptor,
  type ParsedManifest,
  parseManifest,
  serializeIndex,
  serializeManifest,
} from './manifest.js';
import { MediaType } from './mediatypes.js';

/**
 * Seeded fuzzing of manifests, indexes, descriptors, annotations and platforms from registries and
 * layouts: mutated documents parse or fail with INVALID_MANIFEST, UNSUPPORTED or TOO_LARGE. What parses
 * re-encodes (Go's encoding/json rules) to JSON that parses back to the same value, byte-stable on a
 * second round: nothing of the input is ever written raw.
 */

const SEEDS = [31, 32, 33];
const CODES = ['INVALID_MANIFEST', 'UNSUPPORTED', 'TOO_LARGE'];
const d = (c: string) => `sha256:${c.repeat(64)}`;

const MANIFEST = {
  schemaVersion: 2,
  mediaType: MediaType.ociManifest,
  artifactType: 'application/vnd.wasm.config.v0+json',
  config: { mediaType: 'application/vnd.wasm.config.v0+json', digest: d('a'), size: 2, data: 'e30=' },
  layers: [
    {
      mediaType: 'application/wasm',
      digest: d('b'),
      size: 1234,
      annotations: { 'org.opencontainers.image.title': 'hello.wasm', '<&>': '\u2028' },
      urls: ['https://example.com/x'],
    },
    { mediaType: 'application/vnd.wasm.content.layer.v1+wasm', digest: `sha512:${'c'.repeat(128)}`, size: 0 },
  ],
  subject: { mediaType: MediaType.ociManifest, digest: d('d'), size: 99, artifactType: 'a/b' },
  annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
};
const CLASSIC = {
  schemaVersion: 2,
  config: { mediaType: 'application/vnd.wasm.config.v1+json', digest: d('4'), size: 2 },
  layers: [{ mediaType: 'application/vnd.wasm.content.layer.v1+wasm', digest: d('5'), size: 10 }],
};
const INDEX = {
  schemaVersion: 2,
  mediaType: MediaType.ociIndex,
  manifests: [
    {
      mediaType: MediaType.ociManifest,
      digest: d('e'),
      size: 500,
      platform: { architecture: 'wasm', os: 'wasip2', 'os.version': '1', 'os.features': ['x'], variant: 'v' },
      annotations: { 'org.opencontainers.image.ref.name': 'v1' },
    },
    {
      mediaType: MediaType.dockerManifest,
      digest: d('f'),
      size: 7,
      platform: { architecture: 'amd64', os: 'linux' },
    },
  ],
  annotations: { a: 'b' },
};
const DOCS = [MANIFEST, CLASSIC, INDEX];
const HEADER_TYPES = [
  undefined,
  '',
  MediaType.ociManifest,
  MediaType.ociIndex,
  MediaType.dockerManifest,
  MediaType.dockerManifestList,
  'application/json',
  'text/html',
];

/** Strings as Go's encoder writes them: lone surrogates become U+FFFD. */
function wellFormed(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

/**
 * What a value looks like after encoding: Go's omitempty drops empty optional struct fields; the
 * entries of a map (annotations) are all kept.
 */
function encoded(value: unknown, isMap = false): unknown {
  if (typeof value === 'string') return wellFormed(value);
  if (Array.isArray(value)) return value.map((v) => encoded(v));
  if (Object.is(value, -0)) return 0; // "-0" is accepted as size 0 and written "0"
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const empty =
      v === undefined ||
      v === '' ||
      (Array.isArray(v) && v.length === 0) ||
      (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);
    // `layers` and `manifests` are written even when empty (no omitempty in the image-spec structs),
    // `architecture` and `os` of a platform are written even when empty too.
    if (empty && !isMap && !['layers', 'manifests', 'architecture', 'os'].includes(k)) continue;
    defineOwn(out, wellFormed(k), encoded(v, k === 'annotations'));
  }
  return out;
}

function body(parsed: ParsedManifest): unknown {
  return parsed.kind === 'index' ? parsed.index : parsed.manifest;
}

function serialize(parsed: ParsedManifest): Uint8Array {
  return parsed.kind === 'index' ? serializeIndex(parsed.index) : serializeManifest(parsed.manifest);
}

/** Re-encoding what parsed gives JSON of the same value, and the same bytes the second time. */
function checkRoundTrip(parsed: ParsedManifest, context: string): void {
  const bytes = serialize(parsed);
  const text = Buffer.from(bytes).toString('utf8');
  assert.ok(
    !/[<>&\u2028\u2029\u0000-\u001f]/.test(text),
    `${context}: unescaped character in ${text.slice(0, 200)}`,
  );
  assert.deepEqual(JSON.parse(text), encoded(body(parsed)), `${context}: encoding changed the value`);
  const again = parseManifest(bytes, parsed.mediaType);
  assert.equal(again.kind, parsed.kind, context);
  assert.deepEqual(Buffer.from(serialize(again)), Buffer.from(bytes), `${context}: not byte-stable`);
}

/** The choices made from a parsed manifest or index: a descriptor or NO_WASM_LAYER. */
async function checkSelection(parsed: ParsedManifest, rng: Rng, context: string): Promise<void> {
  if (parsed.kind === 'index') {
    const platform = rng.pick([undefined, 'wasip2/wasm', '*/*', 'linux', rng.pick(HOSTILE_STRINGS), '/']);
    expectResultOrError(() => selectIndexEntry(parsed.index, platform), ['NO_WASM_LAYER'], context);
  } else {
    const layer = rng.pick([undefined, d('b'), 'hello.wasm', rng.pick(HOSTILE_KEYS)]);
    await expectResultOrErrorAsync(
      () => selectWasmLayer(parsed.manifest, { layer, peek: async () => Buffer.from('\0asm\x01\0\0\0') }),
      ['NO_WASM_LAYER'],
      context,
    );
  }
}

describe('parseManifest fuzzing', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: mutated manifests and indexes parse, round-trip, or fail with a manifest code`, async () => {
      const rng = new Rng(seed);
      let parsedCount = 0;
      for (let i = 0; i < 700; i++) {
        const doc = rng.pick(DOCS);
        const text =
          i % 10 === 9
            ? mutateBytesN(rng, Buffer.from(JSON.stringify(doc)), 3).toString('latin1')
            : mutateJson(rng, doc);
        const mediaType = rng.pick(HEADER_TYPES);
        const context = `seed ${seed} case ${i}`;
        const parsed = expectResultOrError(
          () => parseManifest(Buffer.from(text), mediaType),
          CODES,
          context,
          text,
        );
        if (parsed instanceof Error) continue;
        parsedCount++;
        checkRoundTrip(parsed, context);
        await checkSelection(parsed, rng, context);
      }
      assert.ok(parsedCount > 80, `only ${parsedCount} documents parsed`);
    });
  }

  it('every truncation of a manifest and an index is INVALID_MANIFEST', () => {
    for (const doc of DOCS) {
      for (const prefix of truncations(Buffer.from(JSON.stringify(doc)))) {
        assert.throws(() => parseManifest(prefix), { code: 'INVALID_MANIFEST' }, prefix.toString());
      }
    }
  });

  it('random bytes are INVALID_MANIFEST', () => {
    const rng = new Rng(34);
    for (let i = 0; i < 300; i++) {
      const bytes = rng.bytes(rng.int(200));
      expectResultOrError(() => parseManifest(bytes), CODES, `random ${i}`, bytes);
    }
  });

  it('refuses a schemaVersion that is no number without converting it (regression)', () => {
    // String(schemaVersion) threw TypeError for {"toString":1} and overflowed the stack for deep arrays.
    for (const value of [
      '{"toString":1}',
      '{"valueOf":{},"toString":{}}',
      deepJson(200_000),
      '"2\\n3"',
      '[2]',
    ]) {
      assert.throws(
        () => parseManifest(Buffer.from(`{"schemaVersion":${value},"layers":[]}`)),
        { code: 'UNSUPPORTED' },
        value.slice(0, 30),
      );
    }
  });

  it('deep nesting anywhere is refused or dropped, never a stack overflow', () => {
    for (const depth of DEPTHS) {
      for (const kind of ['array', 'object', 'mixed'] as const) {
        for (const doc of DOCS) {
          for (const key of Object.keys(doc)) {
            const text = JSON.stringify({ ...doc, [key]: '@' }).replace('"@"', deepJson(depth, kind));
            expectResultOrError(() => parseManifest(Buffer.from(text)), CODES, `${key} depth ${depth}`, text);
          }
        }
      }
    }
  });

  it('large inline data and many annotations are checked quickly', () => {
    const data = 'AAAA'.repeat(768 * 1024);
    const big = { ...CLASSIC, config: { ...CLASSIC.config, size: 3 * 768 * 1024, data } };
    assertFast(3000, 'data', () =>
      expectResultOrError(() => parseManifest(Buffer.from(JSON.stringify(big))), CODES, 'data'),
    );
    const annotations = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, 'v']));
    assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ ...CLASSIC, annotations }))), {
      code: 'INVALID_MANIFEST',
    });
    assert.throws(() => parseManifest(Buffer.alloc(4 * 1024 * 1024 + 1, 0x20)), { code: 'TOO_LARGE' });
  });
});

describe('descriptor and Go JSON fuzzing', () => {
  const base = MANIFEST.layers[0] as unknown as Descriptor;
  for (const seed of SEEDS) {
    it(`seed ${seed}: parsed descriptors encode to JSON that parses back to them`, () => {
      const rng = new Rng(seed + 100);
      for (let i = 0; i < 600; i++) {
        const doc = rng.pick([base, INDEX.manifests[0], MANIFEST.config, MANIFEST.subject]);
        const text = mutateJson(rng, doc);
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          continue;
        }
        const context = `seed ${seed} case ${i}`;
        const desc = expectResultOrError(
          () => parseDescriptor(value, 'd'),
          ['INVALID_MANIFEST'],
          context,
          text,
        );
        if (desc instanceof Error) continue;
        const json = goDescriptor(desc).json;
        assert.deepEqual(JSON.parse(json), encoded(desc), `${context}: ${json.slice(0, 200)}`);
        assert.equal(goDescriptor(parseDescriptor(JSON.parse(json), 'd')).json, json, context);
        expectResultOrError(() => parseAnnotations(value, 'a'), ['INVALID_MANIFEST'], context, text);
      }
    });

    it(`seed ${seed}: any string and map survives goString / goMap`, () => {
      const rng = new Rng(seed + 200);
      for (let i = 0; i < 600; i++) {
        const s = rng.string(rng.int(40));
        const encodedString = goString(s);
        assert.equal(JSON.parse(encodedString), wellFormed(s), JSON.stringify(s));
        assert.ok(!/[<>&\u2028\u2029\u0000-\u001f]/.test(encodedString), JSON.stringify(s));
        const map: Record<string, string> = {};
        defineOwn(map, rng.pick(HOSTILE_KEYS), s);
        defineOwn(map, s, rng.pick(HOSTILE_STRINGS));
        assert.deepEqual(JSON.parse(goMap(map).json), encoded(map, true), JSON.stringify(s));
      }
    });
  }
});

describe('manifest, index and descriptor properties (fast-check)', () => {
  const mediaType = mostly(
    fc.constantFrom(
      MediaType.ociManifest,
      MediaType.ociIndex,
      MediaType.dockerManifest,
      MediaType.dockerManifestList,
      'application/wasm',
      'application/vnd.wasm.config.v0+json',
      'application/vnd.wasm.content.layer.v1+wasm',
      'a/b',
    ),
    fc.oneof(fc.constantFrom('a/b; charset=x', 'x', 'a/', '/b', 'A/B'), anyString(30)),
  );
  const digest = mostly(
    fc.constantFrom(d('a'), d('b'), `sha512:${'c'.repeat(128)}`),
    fc.oneof(
      fc.constantFrom(`sha256:${'A'.repeat(64)}`, 'sha256:', 'md5:x', `sha256:${'a'.repeat(63)}`),
      fc.stringMatching(/^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{1,80}$/),
      anyString(20),
    ),
    4,
  );
  const annotations = mostly(
    fc.dictionary(
      mostly(fc.constantFrom('org.opencontainers.image.title', '<&>', 'a.b'), hostileKey, 3),
      anyString(20),
      { maxKeys: 5 },
    ),
    fc.tuple(hostileKey, anyString(10)).map(([k, v]) => withKey(k, v)),
    4,
  );
  const platform = nearRecord({
    architecture: mostly(fc.constantFrom('wasm', 'amd64', '')),
    os: mostly(fc.constantFrom('wasip1', 'wasip2', 'linux')),
    'os.version': optional(anyString(10)),
    'os.features': optional(fc.array(anyString(10), { maxLength: 3 })),
    variant: optional(anyString(10)),
  });
  const descriptorOf = (weight: number) =>
    nearRecord(
      {
        mediaType,
        digest,
        size: mostly(fc.oneof(fc.constantFrom(0, 2, 3, 1234), fc.nat()), hostileNumber, 4),
        annotations: optional(annotations),
        urls: optional(fc.array(mostly(fc.constant('https://example.com/x')), { maxLength: 3 })),
        data: fc.oneof(
          { weight: 8, arbitrary: fc.constant(undefined) },
          fc.constantFrom('e30=', '', 'AAAA', 'e30', '===='),
          fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b).toString('base64')),
        ),
        platform: optional(platform),
        artifactType: optional(mediaType),
      },
      weight,
    );
  const descriptor = descriptorOf(8);
  /** A descriptor of valid values only, now and then a near-valid one: what manifests and indexes list. */
  const listed = mostly(
    fc.record(
      {
        mediaType: fc.constantFrom('application/wasm', MediaType.ociManifest, 'a/b'),
        digest: fc.constantFrom(d('a'), d('b'), `sha512:${'c'.repeat(128)}`),
        size: fc.nat(),
        annotations: fc.dictionary(
          fc.constantFrom('org.opencontainers.image.title', '<&>', 'a.b'),
          anyString(20),
          {
            maxKeys: 3,
          },
        ),
        platform: fc.record({
          architecture: fc.constantFrom('wasm', ''),
          os: fc.constantFrom('wasip2', 'linux'),
        }),
      },
      { requiredKeys: ['mediaType', 'digest', 'size'] },
    ),
    descriptorOf(20),
    12,
  );
  const list = (item: fc.Arbitrary<unknown>) =>
    fc.oneof(
      { weight: 5, arbitrary: fc.array(item, { maxLength: 3 }) },
      { weight: 1, arbitrary: hostileValue },
    );
  const manifestType = fc.constantFrom(MediaType.ociManifest, MediaType.dockerManifest, undefined);
  const indexType = fc.constantFrom(MediaType.ociIndex, MediaType.dockerManifestList, undefined);
  const artifactType = optional(fc.constantFrom('application/vnd.wasm.config.v0+json', 'a/b'));
  const manifest = nearRecord(
    {
      schemaVersion: mostly(fc.constant(2), fc.constantFrom(1, '2', 2.0000001)),
      mediaType: mostly(manifestType, mediaType),
      artifactType: mostly(artifactType, mediaType),
      config: listed,
      layers: list(listed),
      subject: optional(listed),
      annotations: optional(annotations),
    },
    16,
  );
  const index = nearRecord(
    {
      schemaVersion: mostly(fc.constant(2), fc.constantFrom(1, '2')),
      mediaType: mostly(indexType, mediaType),
      artifactType: mostly(artifactType, mediaType),
      manifests: list(listed),
      subject: optional(listed),
      annotations: optional(annotations),
    },
    16,
  );
  const headerType = fc.constantFrom(...HEADER_TYPES);

  it('any manifest or index parses, re-encodes byte-stably and selects, or fails with a manifest code', async () => {
    let parsed = 0;
    await fc.assert(
      fc.asyncProperty(
        jsonInput(fc.oneof(manifest, index)),
        headerType,
        fc.nat(),
        async (bytes, type, seed) => {
          const result = outcome(() => parseManifest(bytes, type), CODES, bytes);
          if (result instanceof Error) return;
          parsed++;
          checkRoundTrip(result, 'property');
          await checkSelection(result, new Rng(seed), 'property');
        },
      ),
      params(0x0c1a01, 600),
    );
    assert.ok(parsed > 60, `only ${parsed} documents parsed`);
  });

  it('any descriptor value parses to one that re-encodes to itself, or fails with INVALID_MANIFEST', () => {
    let parsed = 0;
    fc.assert(
      fc.property(
        fc.oneof({ weight: 5, arbitrary: descriptor }, { weight: 1, arbitrary: hostileValue }),
        (value) => {
          let json: unknown;
          try {
            json = JSON.parse(toText(value));
          } catch {
            return; // deep nesting past JSON.parse, or a raw piece that is no JSON
          }
          const desc = outcome(() => parseDescriptor(json, 'd'), ['INVALID_MANIFEST'], value);
          outcome(
            () => parseAnnotations((json as { annotations?: unknown })?.annotations, 'a'),
            ['INVALID_MANIFEST'],
            value,
          );
          if (desc instanceof Error) return;
          parsed++;
          const text = goDescriptor(desc).json;
          assert.deepEqual(JSON.parse(text), encoded(desc), text.slice(0, 200));
          assert.equal(goDescriptor(parseDescriptor(JSON.parse(text), 'd')).json, text);
        },
      ),
      params(0x0c1a02, 1500),
    );
    assert.ok(parsed > 100, `only ${parsed} descriptors parsed`);
  });
});
