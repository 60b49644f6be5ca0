import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { before, describe, it } from 'node:test';
import { inspectWasm } from '../../src/wasm/inspect.js';
import { HELLO_WASM } from '../harness/fixtures.js';

/**
 * Our component parser against a reference: components built here from WIT with jco (componentEmbed +
 * componentNew), whose own WIT printer (componentWit) lists the world's imports and exports.
 */

interface Jco {
  componentEmbed(options: { dummy: boolean; witSource: string }): Promise<Uint8Array>;
  componentNew(core: Uint8Array): Promise<Uint8Array>;
  componentWit(component: Uint8Array): Promise<string>;
}
let jco: Jco;
before(async () => {
  jco = (await import('@bytecodealliance/jco')) as unknown as Jco;
});

const WASI_CLI = `package wasi:cli@0.2.0 {
  interface environment { get-environment: func() -> list<tuple<string, string>>; }
  interface stdout { print: func(s: string); }
}`;

const WORLDS: Array<[string, string]> = [
  [
    'interfaces with versions, functions both ways',
    `package test:demo@0.1.0;
interface greet { hello: func(name: string) -> string; }
world demo { import wasi:cli/environment@0.2.0; import log: func(msg: string); export greet; export run: func(); }
${WASI_CLI}`,
  ],
  [
    'no imports at all',
    `package test:pure@1.0.0;
world pure { export add: func(a: u32, b: u32) -> u32; export sub: func(a: u32, b: u32) -> u32; }`,
  ],
  [
    'several interfaces from several packages',
    `package test:multi@2.1.0;
interface store { get: func(key: string) -> option<string>; set: func(key: string, value: string); }
interface events { emit: func(name: string); }
world app {
  import wasi:cli/environment@0.2.0;
  import wasi:cli/stdout@0.2.0;
  import events;
  export store;
  export version: func() -> string;
}
${WASI_CLI}`,
  ],
  [
    'unversioned package, inline interface export',
    `package local:thing;
world thing { import clock: func() -> u64; export handler: interface { handle: func(input: list<u8>) -> list<u8>; } }`,
  ],
];

/** The `import`/`export` names of the world jco prints. */
function witNames(wit: string): { imports: string[]; exports: string[] } {
  const imports: string[] = [];
  const exports: string[] = [];
  const world = /world root \{([\s\S]*?)\n\}/.exec(wit)?.[1] ?? '';
  for (const line of world.split('\n')) {
    const m = /^\s*(import|export)\s+([^\s:;]+(?::[^\s;/:]+\/[^\s;:@]+(?:@[^\s;:]+)?)?)\s*[:;{]/.exec(line);
    if (!m) continue;
    (m[1] === 'import' ? imports : exports).push(m[2] as string);
  }
  return { imports, exports };
}

describe('component imports and exports match jco’s WIT printer', () => {
  for (const [what, wit] of WORLDS) {
    it(what, async () => {
      const core = await jco.componentEmbed({ dummy: true, witSource: wit });
      assert.equal(inspectWasm(core).kind, 'module', 'the embedded core module is a module');
      const component = await jco.componentNew(core);
      const reference = witNames(await jco.componentWit(component));
      const ours = inspectWasm(component);
      assert.equal(ours.kind, 'component');
      assert.deepEqual(ours.imports.map((i) => i.name).sort(), reference.imports.sort());
      assert.deepEqual(ours.exports.map((e) => e.name).sort(), reference.exports.sort());
      assert.ok(reference.exports.length > 0, 'the reference parse found the exports');
    });
  }

  it('testdata/hello.wasm is a WASI preview1 core module', async () => {
    const info = inspectWasm(await readFile(HELLO_WASM));
    assert.equal(info.kind, 'module');
    assert.deepEqual(info.imports, [{ module: 'wasi_snapshot_preview1', name: 'fd_write', kind: 'func' }]);
    assert.deepEqual(info.exports, [
      { name: 'memory', kind: 'memory' },
      { name: '_start', kind: 'func' },
    ]);
  });
});
