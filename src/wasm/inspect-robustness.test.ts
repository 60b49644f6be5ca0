import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { WasmOciError } from '../errors.js';
import { inspectWasm } from './inspect.js';

// Hand-built binaries (a tiny encoder below), malformed inputs, and property-based tests: whatever the
// bytes, the parser returns or throws our error, quickly.

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
};
const name = (s: string) => [...uleb(Buffer.byteLength(s)), ...Buffer.from(s)];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const MODULE = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const COMPONENT = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

const moduleBytes = Uint8Array.from([
  ...MODULE,
  ...section(2, [
    ...uleb(6),
    ...name('wasi_snapshot_preview1'),
    ...name('fd_write'),
    0x00,
    ...uleb(0),
    ...name('env'),
    ...name('table'),
    0x01,
    0x70,
    0x00,
    ...uleb(1),
    ...name('env'),
    ...name('memory'),
    0x02,
    0x01,
    ...uleb(1),
    ...uleb(16),
    ...name('env'),
    ...name('memory64'),
    0x02,
    0x04,
    ...uleb(1),
    ...name('env'),
    ...name('global'),
    0x03,
    0x7f,
    0x01,
    ...name('env'),
    ...name('tag'),
    0x04,
    0x00,
    ...uleb(0),
  ]),
  ...section(7, [...uleb(2), ...name('_start'), 0x00, ...uleb(1), ...name('memory'), 0x02, ...uleb(0)]),
  ...section(0, [...name('custom'), 1, 2, 3]),
]);

const nested = [
  ...COMPONENT,
  ...section(10, [...uleb(1), 0x00, ...name('inner:hidden/import'), 0x05, ...uleb(0)]),
];
const componentBytes = Uint8Array.from([
  ...COMPONENT,
  ...section(4, nested),
  ...section(10, [
    ...uleb(2),
    0x00,
    ...name('wasi:cli/environment@0.2.0'),
    0x05,
    ...uleb(0),
    0x00,
    ...name('log'),
    0x01,
    ...uleb(1),
  ]),
  ...section(11, [
    ...uleb(3),
    0x00,
    ...name('run'),
    0x01,
    ...uleb(2),
    0x00,
    0x00,
    ...name('test:demo/greet@0.1.0'),
    0x05,
    ...uleb(1),
    0x01,
    0x05,
    ...uleb(3),
    0x00,
    ...name('core'),
    0x00,
    0x11,
    ...uleb(0),
    0x00,
  ]),
]);

describe('inspectWasm on hand-built binaries', () => {
  it('reads every core import kind and the exports', () => {
    const info = inspectWasm(moduleBytes);
    assert.equal(info.kind, 'module');
    assert.deepEqual(
      info.imports.map((i) => [i.module, i.name, i.kind]),
      [
        ['wasi_snapshot_preview1', 'fd_write', 'func'],
        ['env', 'table', 'table'],
        ['env', 'memory', 'memory'],
        ['env', 'memory64', 'memory'],
        ['env', 'global', 'global'],
        ['env', 'tag', 'tag'],
      ],
    );
    assert.deepEqual(info.exports, [
      { name: '_start', kind: 'func' },
      { name: 'memory', kind: 'memory' },
    ]);
  });

  it('reads a component’s top-level imports and exports, not those of nested components', () => {
    const info = inspectWasm(componentBytes);
    assert.equal(info.kind, 'component');
    assert.deepEqual(info.imports, [
      { name: 'wasi:cli/environment@0.2.0', kind: 'instance' },
      { name: 'log', kind: 'func' },
    ]);
    assert.deepEqual(info.exports, [
      { name: 'run', kind: 'func' },
      { name: 'test:demo/greet@0.1.0', kind: 'instance' },
      { name: 'core', kind: 'module' },
    ]);
  });

  const malformed: Array<[string, number[]]> = [
    ['a truncated section', [...MODULE, 2, 10, 1, 2]],
    ['a section longer than the file', [...MODULE, 7, ...uleb(1000), 0]],
    ['an overlong LEB128', [...MODULE, 2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
    ['a huge vector count', [...MODULE, ...section(2, [0xff, 0xff, 0xff, 0xff, 0x0f])]],
    ['a name past the end', [...MODULE, ...section(2, [1, 50, 0x61])]],
    ['an unknown import kind', [...MODULE, ...section(2, [1, ...name('m'), ...name('f'), 0x09, 0])]],
    ['invalid UTF-8 in a name', [...MODULE, ...section(2, [1, 2, 0xc3, 0x28, ...name('f'), 0x00, 0])]],
    ['an unknown component externdesc', [...COMPONENT, ...section(10, [1, 0x00, ...name('x'), 0x09, 0])]],
  ];
  for (const [what, bytes] of malformed) {
    it(`fails clearly on ${what}`, () => {
      assert.throws(
        () => inspectWasm(Uint8Array.from(bytes)),
        (err: unknown) => {
          assert.ok(err instanceof WasmOciError);
          assert.equal(err.code, 'INVALID_WASM');
          assert.ok(err.message.length > 10);
          return true;
        },
      );
    });
  }
});

/** Runs the parser and checks that it only ever returns or throws WasmOciError, in bounded time. */
function survives(bytes: Uint8Array): boolean {
  const started = Date.now();
  try {
    inspectWasm(bytes);
  } catch (err) {
    if (!(err instanceof WasmOciError)) throw err;
  }
  return Date.now() - started < 500;
}

describe('inspectWasm, property-based', () => {
  it('random bytes after a module or component preamble', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ maxLength: 512 }), (component, tail) =>
        survives(Uint8Array.from([...(component ? COMPONENT : MODULE), ...tail])),
      ),
      { seed: 42, numRuns: 500 },
    );
  });

  it('mutations of valid binaries: flipped, inserted, deleted bytes and truncation', () => {
    const mutation = fc.oneof(
      fc.record({
        kind: fc.constant('flip' as const),
        at: fc.nat(),
        value: fc.integer({ min: 0, max: 255 }),
      }),
      fc.record({
        kind: fc.constant('insert' as const),
        at: fc.nat(),
        value: fc.integer({ min: 0, max: 255 }),
      }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), value: fc.constant(0) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), value: fc.constant(0) }),
    );
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(mutation, { minLength: 1, maxLength: 6 }),
        (component, mutations) => {
          const bytes = [...(component ? componentBytes : moduleBytes)];
          for (const m of mutations) {
            const at = 8 + (m.at % Math.max(1, bytes.length - 8));
            if (m.kind === 'flip') bytes[at] = m.value;
            else if (m.kind === 'insert') bytes.splice(at, 0, m.value);
            else if (m.kind === 'delete') bytes.splice(at, 1);
            else bytes.length = Math.min(bytes.length, at);
          }
          return survives(Uint8Array.from(bytes));
        },
      ),
      { seed: 42, numRuns: 800 },
    );
  });
});
