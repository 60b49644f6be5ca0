import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { WasmOciError } from '../errors.js';
import { inspectWasm, type WasmInfo } from './inspect.js';

/**
 * inspectWasm on binaries built byte by byte here: well-formed modules and components, malformed ones
 * (each must fail with INVALID_WASM, fast), and property-based runs over random and mutated input.
 */

// --- a tiny encoder ---------------------------------------------------------------------------------

/** Unsigned LEB128 (minimal encoding); exact up to 2^53. */
function leb(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  for (;;) {
    const low = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest === 0) {
      out.push(low);
      return out;
    }
    out.push(low | 0x80);
  }
}

/** Unsigned LEB128 padded to `width` bytes (a valid, non-minimal encoding). */
function paddedLeb(value: number, width: number): number[] {
  const out: number[] = [];
  let rest = value;
  for (let i = 0; i < width; i++) {
    const low = rest % 128;
    rest = Math.floor(rest / 128);
    out.push(i === width - 1 ? low : low | 0x80);
  }
  return out;
}

const utf8 = (text: string): number[] => [...new TextEncoder().encode(text)];
/** A name: its byte length, then its UTF-8 bytes. */
const str = (text: string): number[] => [...leb(utf8(text).length), ...utf8(text)];
/** A vector: element count, then the elements. */
const vec = (items: number[][]): number[] => [...leb(items.length), ...items.flat()];
/** A section: id, body size, body. */
const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];

const MODULE = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const COMPONENT = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
const binary = (...parts: number[][]): Uint8Array => Uint8Array.from(parts.flat());

// Core module pieces.
const FUNC = (typeidx: number) => [0x00, ...leb(typeidx)];
const TABLE = (reftype: number, limits: number[]) => [0x01, reftype, ...limits];
const MEMORY = (limits: number[]) => [0x02, ...limits];
const GLOBAL = (valtype: number, mutable: boolean) => [0x03, valtype, mutable ? 0x01 : 0x00];
const TAG = (typeidx: number) => [0x04, 0x00, ...leb(typeidx)];
const coreImport = (module: string, name: string, desc: number[]) => [...str(module), ...str(name), ...desc];
const coreExport = (name: string, kind: number, index: number) => [...str(name), kind, ...leb(index)];

// Component pieces: importname/exportname is 0x00 then a name; externdesc is a sort byte then its type.
const cname = (text: string) => [0x00, ...str(text)];
const compImport = (name: string, desc: number[]) => [...cname(name), ...desc];
const compExport = (name: string, sort: number[], index: number, ascribed?: number[]) => [
  ...cname(name),
  ...sort,
  ...leb(index),
  ...(ascribed ? [0x01, ...ascribed] : [0x00]),
];

/** A core module importing one of each kind (several memory and table shapes) and exporting one of each. */
const MODULE_IMPORTS = section(
  2,
  vec([
    coreImport('wasi_snapshot_preview1', 'fd_write', FUNC(0)),
    coreImport('env', '__indirect_function_table', TABLE(0x70, [0x00, 0x01])),
    coreImport('env', 'externs', TABLE(0x6f, [0x01, 0x00, ...leb(1000)])),
    coreImport('env', 'memory', MEMORY([0x00, 0x01])),
    coreImport('env', 'bounded', MEMORY([0x01, 0x01, ...leb(256)])),
    coreImport('env', 'shared', MEMORY([0x03, 0x01, ...leb(65536)])),
    coreImport('env', 'mem64', MEMORY([0x04, ...leb(2 ** 40)])),
    coreImport('env', 'mem64max', MEMORY([0x05, 0x00, ...leb(2 ** 48)])),
    coreImport('env', '__stack_pointer', GLOBAL(0x7f, true)),
    coreImport('env', 'pi', GLOBAL(0x7c, false)),
    coreImport('env', 'exn', TAG(0)),
    coreImport('ünïcødé', '🦀 crab', FUNC(0)),
    coreImport('', '', FUNC(0)),
  ]),
);
const MODULE_EXPORTS = section(
  7,
  vec([
    coreExport('_start', 0x00, 2),
    coreExport('table', 0x01, 0),
    coreExport('memory', 0x02, 0),
    coreExport('sp', 0x03, 0),
    coreExport('exn', 0x04, 0),
  ]),
);
const VALID_MODULE = binary(
  MODULE,
  section(0, [...str('producers'), 0x01, 0x02, 0x03]),
  section(1, vec([[0x60, 0x00, 0x00]])),
  MODULE_IMPORTS,
  section(3, vec([[0x00]])),
  MODULE_EXPORTS,
  section(10, vec([[0x02, 0x00, 0x0b]])),
  section(0, [...str('name'), 0x00]),
);
const VALID_MODULE_INFO: WasmInfo = {
  kind: 'module',
  version: 1,
  imports: [
    { module: 'wasi_snapshot_preview1', name: 'fd_write', kind: 'func' },
    { module: 'env', name: '__indirect_function_table', kind: 'table' },
    { module: 'env', name: 'externs', kind: 'table' },
    { module: 'env', name: 'memory', kind: 'memory' },
    { module: 'env', name: 'bounded', kind: 'memory' },
    { module: 'env', name: 'shared', kind: 'memory' },
    { module: 'env', name: 'mem64', kind: 'memory' },
    { module: 'env', name: 'mem64max', kind: 'memory' },
    { module: 'env', name: '__stack_pointer', kind: 'global' },
    { module: 'env', name: 'pi', kind: 'global' },
    { module: 'env', name: 'exn', kind: 'tag' },
    { module: 'ünïcødé', name: '🦀 crab', kind: 'func' },
    { module: '', name: '', kind: 'func' },
  ],
  exports: [
    { name: '_start', kind: 'func' },
    { name: 'table', kind: 'table' },
    { name: 'memory', kind: 'memory' },
    { name: 'sp', kind: 'global' },
    { name: 'exn', kind: 'tag' },
  ],
};

/** A component with imports in nested sections that must stay out of the top-level lists. */
const NESTED_COMPONENT = binary(
  COMPONENT,
  section(
    10,
    vec([compImport('nested:only/iface@1.0.0', [0x05, 0x00]), compImport('nested-log', [0x01, 0x00])]),
  ),
  section(11, vec([compExport('nested-run', [0x01], 0)])),
  // A component nested one level deeper still.
  section(4, [...COMPONENT, ...section(10, vec([compImport('deeper', [0x01, 0x00])]))]),
);
const NESTED_MODULE = binary(
  MODULE,
  section(2, vec([coreImport('wasi:cli/environment@0.2.0', 'get-arguments', FUNC(0))])),
  section(7, vec([coreExport('cabi_realloc', 0x00, 0)])),
);

const VALID_COMPONENT = binary(
  COMPONENT,
  section(1, [...NESTED_MODULE]),
  // A type section: func() (0x40), an empty instance type (0x42), an empty component type (0x41).
  section(
    7,
    vec([
      [0x40, 0x00, 0x01, 0x00],
      [0x42, 0x00],
      [0x41, 0x00],
    ]),
  ),
  section(
    10,
    vec([
      compImport('wasi:cli/environment@0.2.0', [0x05, 0x01]),
      compImport('log', [0x01, 0x00]),
      compImport('plugin', [0x00, 0x11, 0x00]),
      compImport('child', [0x04, 0x02]),
      compImport('config', [0x02, 0x01, 0x73]),
      compImport('handle', [0x03, 0x01]),
      compImport('alias', [0x03, 0x00, 0x00]),
    ]),
  ),
  section(4, [...NESTED_COMPONENT]),
  // A second import section: components may have several, in order.
  section(10, vec([compImport('wasi:io/streams@0.2.0', [0x05, 0x01])])),
  section(8, vec([])),
  section(
    11,
    vec([
      compExport('run', [0x01], 0),
      compExport('test:demo/greet@0.1.0', [0x05], 0, [0x05, 0x01]),
      compExport('inner', [0x04], 0),
      compExport('core', [0x00, 0x11], 0),
      compExport('resource', [0x03], 0, [0x03, 0x01]),
      compExport('setting', [0x02], 0),
      compExport('typed-run', [0x01], 0, [0x01, 0x00]),
    ]),
  ),
  section(0, [...str('component-name'), 0x00]),
);
const VALID_COMPONENT_INFO: WasmInfo = {
  kind: 'component',
  version: 0x0d,
  imports: [
    { name: 'wasi:cli/environment@0.2.0', kind: 'instance' },
    { name: 'log', kind: 'func' },
    { name: 'plugin', kind: 'module' },
    { name: 'child', kind: 'component' },
    { name: 'config', kind: 'value' },
    { name: 'handle', kind: 'type' },
    { name: 'alias', kind: 'type' },
    { name: 'wasi:io/streams@0.2.0', kind: 'instance' },
  ],
  exports: [
    { name: 'run', kind: 'func' },
    { name: 'test:demo/greet@0.1.0', kind: 'instance' },
    { name: 'inner', kind: 'component' },
    { name: 'core', kind: 'module' },
    { name: 'resource', kind: 'type' },
    { name: 'setting', kind: 'value' },
    { name: 'typed-run', kind: 'func' },
  ],
};

const CORE_KINDS = ['func', 'table', 'memory', 'global', 'tag'];
const COMPONENT_KINDS = ['module', 'func', 'value', 'type', 'component', 'instance'];

// --- well-formed input ------------------------------------------------------------------------------

describe('inspectWasm on well-formed binaries', () => {
  it('reads every core import kind and export kind', () => {
    assert.deepEqual(inspectWasm(VALID_MODULE), VALID_MODULE_INFO);
  });

  it('reads an empty module and an empty component', () => {
    assert.deepEqual(inspectWasm(binary(MODULE)), { kind: 'module', version: 1, imports: [], exports: [] });
    assert.deepEqual(inspectWasm(binary(COMPONENT)), {
      kind: 'component',
      version: 0x0d,
      imports: [],
      exports: [],
    });
  });

  it('accepts padded (non-minimal) LEB128 sizes and counts', () => {
    const body = [
      ...paddedLeb(1, 5),
      ...paddedLeb(3, 2),
      ...utf8('env'),
      ...paddedLeb(1, 4),
      ...utf8('f'),
      0x00,
      ...paddedLeb(0, 5),
    ];
    const bytes = binary(MODULE, [0x02, ...paddedLeb(body.length, 5), ...body]);
    assert.deepEqual(inspectWasm(bytes).imports, [{ module: 'env', name: 'f', kind: 'func' }]);
  });

  it('reads top-level component imports and exports, leaving out nested components and modules', () => {
    assert.deepEqual(inspectWasm(VALID_COMPONENT), VALID_COMPONENT_INFO);
  });

  it('reports nothing for a component whose only imports are in a nested component', () => {
    const info = inspectWasm(
      binary(COMPONENT, section(4, [...NESTED_COMPONENT]), section(1, [...NESTED_MODULE])),
    );
    assert.deepEqual(info.imports, []);
    assert.deepEqual(info.exports, []);
    // The nested component, inspected on its own, does have them.
    assert.deepEqual(
      inspectWasm(NESTED_COMPONENT).imports.map((i) => i.name),
      ['nested:only/iface@1.0.0', 'nested-log'],
    );
  });
});

// --- malformed input --------------------------------------------------------------------------------

function assertInvalid(bytes: Uint8Array, code: 'INVALID_WASM' | 'NOT_WASM' = 'INVALID_WASM'): void {
  const started = performance.now();
  assert.throws(
    () => inspectWasm(bytes),
    (err: unknown) => {
      assert.ok(err instanceof WasmOciError, `expected a WasmOciError, got ${String(err)}`);
      assert.equal(err.code, code, err.message);
      assert.ok(err.message.length > 0, 'the message says what was wrong');
      return true;
    },
  );
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 100, `took ${elapsed.toFixed(1)} ms`);
}

const HUGE = [0xff, 0xff, 0xff, 0xff, 0x0f]; // 0xFFFFFFFF

const MALFORMED: [string, Uint8Array][] = [
  ['a section id with no size', binary(MODULE, [0x02])],
  ['a section size cut off mid-LEB128', binary(MODULE, [0x02, 0x80])],
  ['an import section cut off after the module name', binary(MODULE, section(2, [0x01, ...str('env')]))],
  [
    'an import section cut off inside a memory limit',
    binary(MODULE, section(2, [0x01, ...str('env'), ...str('m'), 0x02, 0x01, 0x01])),
  ],
  ['an export section cut off before the index', binary(MODULE, section(7, [0x01, ...str('f'), 0x00]))],
  [
    'a component import cut off before its externdesc',
    binary(COMPONENT, section(10, [0x01, ...cname('log')])),
  ],
  [
    'a component export cut off before its optional type',
    binary(COMPONENT, section(11, [0x01, ...cname('run'), 0x01, 0x00])),
  ],
  ['a section length past the end', binary(MODULE, [0x02, 0x20, 0x01, 0x00])],
  ['a custom section length past the end', binary(MODULE, [0x00, ...HUGE, 0x00])],
  ['a component section length past the end', binary(COMPONENT, [0x0a, 0x7f, 0x00])],
  ['a section size with a sixth LEB128 byte', binary(MODULE, [0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00])],
  ['a LEB128 that never ends', binary(MODULE, [0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80])],
  ['a section size over 32 bits', binary(MODULE, [0x02, 0xff, 0xff, 0xff, 0xff, 0x7f])],
  [
    'an import count with too many LEB128 bytes',
    binary(MODULE, section(2, [0x81, 0x80, 0x80, 0x80, 0x80, 0x00, ...coreImport('a', 'b', FUNC(0))])),
  ],
  ['0xFFFFFFFF imports in a 20-byte file', binary(MODULE, section(2, [...HUGE, ...str('env'), 0x00]))],
  ['0xFFFFFFFF exports', binary(MODULE, section(7, [...HUGE, ...str('f'), 0x00, 0x00]))],
  ['0xFFFFFFFF component imports', binary(COMPONENT, section(10, [...HUGE, ...cname('a'), 0x01, 0x00]))],
  [
    '0xFFFFFFFF component exports',
    binary(COMPONENT, section(11, [...HUGE, ...cname('a'), 0x01, 0x00, 0x00])),
  ],
  ['a name length past the end', binary(MODULE, section(2, [0x01, 0x20, ...utf8('env')]))],
  ['a name length of 0xFFFFFFFF', binary(MODULE, section(2, [0x01, ...HUGE, ...utf8('env')]))],
  [
    // The name would fit in the file, but not in its section: the section bounds it.
    'a name running out of its section into the next one',
    binary(
      MODULE,
      section(2, [0x01, 0x0a, ...utf8('env')]),
      section(0, [...str('padding'), ...utf8('xxxxxxxx')]),
    ),
  ],
  [
    'a component name length past the end',
    binary(COMPONENT, section(10, [0x01, 0x00, 0x30, ...utf8('wasi')])),
  ],
  ['an unknown core import kind', binary(MODULE, section(2, vec([coreImport('env', 'x', [0x05, 0x00])])))],
  ['an unknown core export kind', binary(MODULE, section(7, vec([coreExport('x', 0x07, 0)])))],
  [
    'unknown memory limits flags',
    binary(MODULE, section(2, vec([coreImport('env', 'm', [0x02, 0x08, 0x01])]))),
  ],
  ['an unknown component externdesc', binary(COMPONENT, section(10, vec([compImport('x', [0x06, 0x00])])))],
  ['an unknown component export sort', binary(COMPONENT, section(11, vec([compExport('x', [0x06], 0)])))],
  [
    'a bad optional-type byte in a component export',
    binary(COMPONENT, section(11, vec([[...cname('x'), 0x01, 0x00, 0x02, 0x01, 0x00]]))),
  ],
  [
    'an unknown component name encoding',
    binary(COMPONENT, section(10, vec([[0x07, ...str('x'), 0x01, 0x00]]))),
  ],
  [
    'a name that is not UTF-8 (0xFF)',
    binary(MODULE, section(2, vec([[...str('env'), 0x01, 0xff, 0x00, 0x00]]))),
  ],
  [
    'a name with a truncated UTF-8 sequence',
    binary(MODULE, section(2, vec([[...str('env'), 0x02, 0x61, 0xc3, 0x00, 0x00]]))),
  ],
  [
    'a name with an overlong UTF-8 encoding',
    binary(MODULE, section(7, vec([[0x02, 0xc0, 0x80, 0x00, 0x00]]))),
  ],
  [
    'a name with an encoded surrogate',
    binary(MODULE, section(2, vec([[0x03, 0xed, 0xa0, 0x80, ...str('f'), 0x00, 0x00]]))),
  ],
  [
    'a component name that is not UTF-8',
    binary(COMPONENT, section(10, vec([[0x00, 0x02, 0xfe, 0xff, 0x01, 0x00]]))),
  ],
  [
    'an import section with bytes left over after its entries',
    binary(MODULE, section(2, [...vec([coreImport('env', 'f', FUNC(0))]), 0x00, 0x00])),
  ],
  [
    'a component export section with bytes left over after its entries',
    binary(COMPONENT, section(11, [...vec([compExport('run', [0x01], 0)]), 0x2a])),
  ],
];

describe('inspectWasm on malformed binaries', () => {
  for (const [title, bytes] of MALFORMED) {
    it(`rejects ${title} with INVALID_WASM`, () => assertInvalid(bytes));
  }

  it('rejects a bad preamble with NOT_WASM', () => {
    assertInvalid(new Uint8Array(), 'NOT_WASM');
    assertInvalid(binary([0x00, 0x61, 0x73]), 'NOT_WASM');
    assertInvalid(binary(utf8('(module)\n')), 'NOT_WASM');
    assertInvalid(binary([0x00, 0x61, 0x73, 0x6d, 0x02, 0x00, 0x00, 0x00]), 'NOT_WASM');
    assertInvalid(binary([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x02, 0x00]), 'NOT_WASM');
  });
});

// --- properties -------------------------------------------------------------------------------------

/** Inspects `bytes`: returns the result, or undefined after checking that the failure is ours. */
function inspectOrOurError(bytes: Uint8Array, preambleIntact: boolean): WasmInfo | undefined {
  const started = performance.now();
  try {
    return inspectWasm(bytes);
  } catch (err) {
    if (!(err instanceof WasmOciError)) throw err;
    if (preambleIntact) assert.equal(err.code, 'INVALID_WASM', err.message);
    else assert.ok(err.code === 'INVALID_WASM' || err.code === 'NOT_WASM', err.code);
    assert.ok(err.message.length > 0);
    return undefined;
  } finally {
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 250, `inspectWasm took ${elapsed.toFixed(1)} ms on ${bytes.length} bytes`);
  }
}

/** A successful result must be well-formed: kind from the preamble, known entry kinds, string names. */
function checkShape(info: WasmInfo, bytes: Uint8Array): void {
  assert.equal(info.kind, bytes[6] === 0x01 ? 'component' : 'module');
  const kinds = info.kind === 'module' ? CORE_KINDS : COMPONENT_KINDS;
  for (const i of info.imports) {
    assert.equal(typeof i.name, 'string');
    assert.ok(kinds.includes(i.kind), `import kind ${i.kind}`);
    assert.equal(typeof i.module, info.kind === 'module' ? 'string' : 'undefined');
  }
  for (const e of info.exports) {
    assert.equal(typeof e.name, 'string');
    assert.ok(kinds.includes(e.kind), `export kind ${e.kind}`);
  }
  // Every entry takes at least a few bytes of input: nothing is invented.
  assert.ok(info.imports.length + info.exports.length <= bytes.length);
}

const samePreamble = (a: Uint8Array, b: Uint8Array) =>
  a.length >= 8 && a.subarray(0, 8).every((x, i) => x === b[i]);

describe('inspectWasm properties', () => {
  it('returns or throws WasmOciError on random bytes after a valid preamble', () => {
    fc.assert(
      fc.property(fc.constantFrom(MODULE, COMPONENT), fc.uint8Array({ maxLength: 512 }), (preamble, tail) => {
        const bytes = binary(preamble, [...tail]);
        const info = inspectOrOurError(bytes, true);
        if (info) checkShape(info, bytes);
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it('returns or throws WasmOciError on random sections with honest sizes', () => {
    // Random bodies inside correctly sized import/export sections reach far deeper into the parser.
    const sections = (ids: number[]) =>
      fc.array(
        fc
          .tuple(fc.constantFrom(...ids), fc.uint8Array({ maxLength: 64 }))
          .map(([id, body]) => section(id, [...body])),
        { maxLength: 6 },
      );
    fc.assert(
      fc.property(
        fc.oneof(
          sections([2, 7, 0, 1]).map((s) => binary(MODULE, ...s)),
          sections([10, 11, 0, 4]).map((s) => binary(COMPONENT, ...s)),
        ),
        (bytes) => {
          const info = inspectOrOurError(bytes, true);
          if (info) checkShape(info, bytes);
        },
      ),
      { seed: 42, numRuns: 500 },
    );
  });

  type Mutation =
    | { op: 'flip'; at: number; bit: number }
    | { op: 'set'; at: number; value: number }
    | { op: 'insert'; at: number; value: number }
    | { op: 'delete'; at: number };
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ op: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
  );

  function mutate(original: Uint8Array, mutations: Mutation[], truncate: number | null): Uint8Array {
    const bytes = [...original];
    for (const m of mutations) {
      if (bytes.length === 0) break;
      const at = m.at % bytes.length;
      if (m.op === 'flip') bytes[at] = (bytes[at] ?? 0) ^ (1 << m.bit);
      else if (m.op === 'set') bytes[at] = m.value;
      else if (m.op === 'insert') bytes.splice(at, 0, m.value);
      else bytes.splice(at, 1);
    }
    return Uint8Array.from(truncate === null ? bytes : bytes.slice(0, truncate % (bytes.length + 1)));
  }

  for (const [title, original] of [
    ['module', VALID_MODULE],
    ['component', VALID_COMPONENT],
  ] as const) {
    it(`returns or throws WasmOciError on mutations of a valid ${title}`, () => {
      fc.assert(
        fc.property(
          fc.array(mutation, { minLength: 1, maxLength: 8 }),
          fc.option(fc.nat(), { freq: 3 }),
          (mutations, truncate) => {
            const bytes = mutate(original, mutations, truncate);
            const info = inspectOrOurError(bytes, samePreamble(bytes, original));
            if (info) checkShape(info, bytes);
          },
        ),
        { seed: 42, numRuns: 500 },
      );
    });

    it(`throws INVALID_WASM on every truncation of a valid ${title}`, () => {
      // Cutting anywhere inside a section leaves a section that runs past the end.
      const ends = new Set<number>();
      let pos = 8;
      while (pos < original.length) {
        const id = original[pos];
        let size = 0;
        let shift = 0;
        let p = pos + 1;
        for (;;) {
          const b = original[p++] ?? 0;
          size += (b & 0x7f) * 2 ** shift;
          shift += 7;
          if ((b & 0x80) === 0) break;
        }
        assert.ok(id !== undefined);
        pos = p + size;
        ends.add(pos);
      }
      for (let length = 9; length < original.length; length++) {
        if (ends.has(length)) inspectWasm(original.subarray(0, length));
        else assertInvalid(original.subarray(0, length));
      }
    });
  }
});
