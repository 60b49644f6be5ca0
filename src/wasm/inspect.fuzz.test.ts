import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  assertFast,
  expectResultOrError,
  expectResultOrErrorAsync,
  HOSTILE_KEYS,
  mutateBytesN,
  Rng,
  truncations,
} from '../../test/harness/fuzz.js';
import { outcome, outcomeAsync, params, rarely } from '../../test/harness/properties.js';
import { WasmOciError } from '../errors.js';
import { importsByModule, inspectWasm, inspectWasmFile, type WasmInfo } from './inspect.js';

/**
 * Seeded fuzzing of the wasm inspector on the modules in testdata/ and on hand-made modules and
 * components: random and mutated bytes give a WasmInfo or NOT_WASM / INVALID_WASM, the same from
 * memory and from positioned file reads; crafted counts and section runs are answered at once.
 */

const SEEDS = [61, 62, 63];
const CODES = ['NOT_WASM', 'INVALID_WASM'];
const TESTDATA = fileURLToPath(new URL('../../../testdata/', import.meta.url));

function leb(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  for (;;) {
    const low = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest === 0) return [...out, low];
    out.push(low | 0x80);
  }
}
const str = (text: string) => {
  const bytes = [...Buffer.from(text)];
  return [...leb(bytes.length), ...bytes];
};
const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body];
const vec = (items: number[][]) => [...leb(items.length), ...items.flat()];
const MODULE = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const COMPONENT = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

const HAND_MODULE = Buffer.from([
  ...MODULE,
  ...section(1, vec([[0x60, 0x00, 0x00]])),
  ...section(
    2,
    vec([
      [...str('wasi_snapshot_preview1'), ...str('fd_write'), 0x00, 0x00],
      [...str('__proto__'), ...str('constructor'), 0x02, 0x00, 0x01],
      [...str('env'), ...str('t'), 0x01, 0x70, 0x04, ...leb(2 ** 40)],
      [...str('env'), ...str('g'), 0x03, 0x7f, 0x01],
    ]),
  ),
  ...section(7, vec([[...str('_start'), 0x00, 0x00]])),
  ...section(0, [...str('name'), 0x00]),
]);
const HAND_COMPONENT = Buffer.from([
  ...COMPONENT,
  ...section(
    10,
    vec([
      [0x00, ...str('wasi:cli/environment@0.2.0'), 0x05, 0x01],
      [0x01, ...str('log'), ...str('1.0'), 0x01, 0x00],
    ]),
  ),
  ...section(4, [...COMPONENT, ...section(10, vec([[0x00, ...str('nested'), 0x01, 0x00]]))]),
  ...section(
    11,
    vec([
      [0x00, ...str('run'), 0x01, 0x00, 0x00],
      [0x00, ...str('core'), 0x00, 0x11, 0x00, 0x01, 0x00, 0x11, 0x00],
    ]),
  ),
]);
const SAMPLES: Array<[string, Buffer]> = [
  ...['hello.wasm', 'exit3.wasm', 'probe.wasm'].map((name): [string, Buffer] => [
    name,
    readFileSync(`${TESTDATA}${name}`),
  ]),
  ['hand-made module', HAND_MODULE],
  ['hand-made component', HAND_COMPONENT],
];

/** inspectWasmFile over bytes in memory, counting its reads. */
async function fromFile(bytes: Uint8Array, reads = { count: 0 }): Promise<WasmInfo> {
  return inspectWasmFile(
    async (position, length) => {
      reads.count++;
      return bytes.slice(position, position + length);
    },
    bytes.length,
    'input',
  );
}

function checkInfo(info: WasmInfo, context: string): void {
  assert.ok(info.kind === 'module' || info.kind === 'component', context);
  for (const entry of [...info.imports, ...info.exports]) {
    assert.equal(typeof entry.name, 'string', context);
    assert.equal(typeof entry.kind, 'string', context);
  }
  const groups = importsByModule(info);
  assert.equal(Object.getPrototypeOf(groups), Object.prototype, `${context}: grouping changed a prototype`);
  for (const names of Object.values(groups)) assert.ok(Array.isArray(names), context);
}

/** Memory and file inspection agree: the same info, or errors of the same code. */
async function checkBoth(bytes: Buffer, context: string): Promise<void> {
  const memory = expectResultOrError(
    () => inspectWasm(bytes),
    CODES,
    context,
    bytes,
    (info) => checkInfo(info, context),
  );
  const file = await expectResultOrErrorAsync(() => fromFile(bytes), CODES, context, bytes);
  if (memory instanceof WasmOciError || file instanceof WasmOciError) {
    assert.equal(
      file instanceof WasmOciError ? file.code : 'ok',
      memory instanceof WasmOciError ? memory.code : 'ok',
      `${context}: memory and file inspection disagree`,
    );
  } else assert.deepEqual(file, memory, context);
}

describe('inspectWasm fuzzing', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: mutated modules and components inspect alike from memory and file, or fail`, async () => {
      const rng = new Rng(seed);
      for (let i = 0; i < 600; i++) {
        const [name, sample] = rng.pick(SAMPLES);
        const bytes =
          i % 10 === 9
            ? Buffer.concat([sample.subarray(0, 8), rng.bytes(rng.int(300))])
            : mutateBytesN(rng, sample, 1 + rng.int(4));
        await checkBoth(bytes, `seed ${seed} case ${i} (${name})`);
      }
    });
  }

  it('every truncation of every sample inspects alike or fails', async () => {
    for (const [name, sample] of SAMPLES) {
      for (const prefix of truncations(sample)) await checkBoth(prefix, `${name} cut at ${prefix.length}`);
    }
  });

  it('crafted counts and lengths fail at once', () => {
    const crafted: Array<[string, Buffer]> = [
      ['count 2^32-1', Buffer.from([...MODULE, ...section(2, [0xff, 0xff, 0xff, 0xff, 0x0f])])],
      ['count too long', Buffer.from([...MODULE, ...section(2, Array(20).fill(0x80))])],
      ['size 2^32-1', Buffer.from([...MODULE, 0x02, 0xff, 0xff, 0xff, 0xff, 0x0f])],
      ['name 2^32-1', Buffer.from([...MODULE, ...section(7, [0x01, 0xff, 0xff, 0xff, 0xff, 0x0f])])],
      [
        'limits 2^64',
        Buffer.from([...MODULE, ...section(2, [0x01, 0, 0, 0x02, 0x04, ...Array(10).fill(0xff)])]),
      ],
      ['component count', Buffer.from([...COMPONENT, ...section(11, [0xff, 0xff, 0xff, 0xff, 0x0f])])],
    ];
    for (const [what, bytes] of crafted) {
      assertFast(200, what, () => assert.throws(() => inspectWasm(bytes), { code: 'INVALID_WASM' }, what));
    }
  });

  it('refuses more than 100,000 imports or exports instead of listing millions (regression)', () => {
    // 4 bytes an import: a 4 MiB section listed a million imports (seconds, and memory in proportion).
    const n = 1_000_000;
    const body = Buffer.alloc(leb(n).length + 4 * n);
    Buffer.from(leb(n)).copy(body);
    const bytes = Buffer.concat([Buffer.from([...MODULE, 0x02, ...leb(body.length)]), body]);
    assertFast(500, 'million imports', () =>
      assert.throws(() => inspectWasm(bytes), { code: 'INVALID_WASM', message: /more than 100000 imports/ }),
    );
    const few = Buffer.concat([
      Buffer.from([...MODULE, 0x02, ...leb(4 * 1000 + 2)]),
      Buffer.from([...leb(1000)]),
      Buffer.alloc(4000),
    ]);
    assert.equal(inspectWasm(few).imports.length, 1000);
  });

  it('reads a file of tiny sections in a few reads (regression)', async () => {
    // One read per section head made 100,000 two-byte sections take seconds from a real file.
    const bytes = Buffer.concat([Buffer.from(MODULE), Buffer.alloc(2 * 100_000)]);
    const reads = { count: 0 };
    const info = await fromFile(bytes, reads);
    assert.deepEqual(info, inspectWasm(bytes));
    assert.ok(reads.count < 20, `${reads.count} reads`);
    // A wanted section whose head is in the window and whose body runs past it is read whole.
    const big = Buffer.concat([
      Buffer.from(HAND_MODULE.subarray(0, 8)),
      Buffer.alloc(65_520),
      HAND_MODULE.subarray(8),
    ]);
    assert.deepEqual(await fromFile(big), inspectWasm(big));
  });
});

describe('inspectWasm properties (fast-check)', () => {
  // inspect.test.ts has properties over inspectWasm from memory; these add structured sections with
  // hostile names and counts, bytes without a preamble, the file reader, and the one-line message.
  const nameBytes = fc.oneof(
    fc
      .constantFrom('wasi_snapshot_preview1', 'env', '_start', 'wasi:cli/run@0.2.0', ...HOSTILE_KEYS)
      .map((s) => Buffer.from(s)),
    fc.string({ unit: 'binary', maxLength: 20 }).map((s) => Buffer.from(s)),
    fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b)), // invalid UTF-8 too
  );
  /** A name with its length: honest, or any LEB128 value up to 2^35. */
  const name = fc
    .tuple(nameBytes, rarely(fc.nat({ max: 2 ** 35 }), 6))
    .map(([bytes, length]) => [...leb(length ?? bytes.length), ...bytes]);
  const count = (n: number) =>
    fc.oneof({ weight: 6, arbitrary: fc.constant(n) }, { weight: 1, arbitrary: fc.nat({ max: 2 ** 32 }) });
  const tail = fc.uint8Array({ maxLength: 6 }).map((b) => [...b]);
  const coreImport = fc
    .tuple(name, name, fc.integer({ min: 0, max: 5 }), tail)
    .map(([m, n, kind, rest]) => [...m, ...n, kind, ...rest]);
  const coreExport = fc
    .tuple(name, fc.integer({ min: 0, max: 5 }), tail)
    .map(([n, kind, rest]) => [...n, kind, ...rest]);
  const componentItem = fc
    .tuple(fc.integer({ min: 0, max: 2 }), name, tail)
    .map(([tag, n, rest]) => [tag, ...n, ...rest]);
  const entries = (item: fc.Arbitrary<number[]>) =>
    fc
      .array(item, { maxLength: 5 })
      .chain((items) => count(items.length).map((n) => [...leb(n), ...items.flat()]));
  const sectionOf = (id: number, body: fc.Arbitrary<number[]>) =>
    fc
      .tuple(body, rarely(fc.nat({ max: 2 ** 33 }), 8))
      .map(([b, size]) => [id, ...leb(size ?? b.length), ...b]);
  const custom = sectionOf(
    0,
    fc.tuple(name, tail).map(([n, rest]) => [...n, ...rest]),
  );
  const moduleBytes = fc
    .array(
      fc.oneof(
        sectionOf(2, entries(coreImport)),
        sectionOf(7, entries(coreExport)),
        custom,
        fc.tuple(fc.integer({ min: 0, max: 255 }), tail).chain(([id, b]) => sectionOf(id, fc.constant(b))),
      ),
      { maxLength: 5 },
    )
    .map((sections) => Buffer.from([...MODULE, ...sections.flat()]));
  const componentBytes = fc
    .array(
      fc.oneof(
        sectionOf(10, entries(componentItem)),
        sectionOf(11, entries(componentItem)),
        sectionOf(
          4,
          fc.constant([...COMPONENT, ...section(10, vec([[0x00, ...str('nested'), 0x01, 0x00]]))]),
        ),
        custom,
      ),
      { maxLength: 5 },
    )
    .map((sections) => Buffer.from([...COMPONENT, ...sections.flat()]));
  const input = fc.oneof(
    { weight: 3, arbitrary: moduleBytes },
    { weight: 3, arbitrary: componentBytes },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
    {
      weight: 1,
      arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map((s) => Buffer.from(`\0asm${s}`)),
    },
  );

  it('structured and raw input inspects alike from memory and file, or fails with one line', async () => {
    let infos = 0;
    await fc.assert(
      fc.asyncProperty(input, async (bytes) => {
        const memory = outcome(
          () => inspectWasm(bytes),
          CODES,
          bytes,
          (info) => checkInfo(info, 'memory'),
        );
        if (!(memory instanceof WasmOciError)) infos++;
        await outcomeAsync(() => fromFile(bytes), CODES, bytes);
        await checkBoth(bytes, 'property');
      }),
      params(0x3a5301, 800),
    );
    assert.ok(infos > 80, `only ${infos} binaries inspected`);
  });
});
