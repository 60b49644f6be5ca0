import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { before, describe, it } from 'node:test';
import { inspectWasm, type WasmInfo } from '../../src/wasm/inspect.js';

/**
 * Our wasm parser checked against a reference on real components: each WIT world below is turned into a
 * component by jco (wasm-tools compiled to wasm), jco prints the component's world back as WIT, and the
 * imports and exports named there must be exactly what `inspectWasm` finds in the binary.
 */

/** The few jco calls used here, typed locally so its own typings cannot get in the way. */
interface Jco {
  componentEmbed(opts: { dummy: boolean; witSource: string; world?: string }): Promise<Uint8Array>;
  componentNew(bytes: Uint8Array): Promise<Uint8Array>;
  componentWit(bytes: Uint8Array): Promise<string>;
  print(bytes: Uint8Array): Promise<string>;
}

let jco: Jco;
before(async () => {
  jco = (await import('@bytecodealliance/jco')) as unknown as Jco;
});

interface Case {
  title: string;
  witSource: string;
  /** Names the reference must report (at least), so a broken reference parser cannot pass vacuously. */
  sure: { imports: string[]; exports: string[] };
}

const CASES: Case[] = [
  {
    title: 'versioned WASI interfaces from several packages in one source',
    witSource: `
package test:cli-app@0.1.0;

world app {
  import wasi:cli/environment@0.2.0;
  import wasi:cli/exit@0.2.0;
  import wasi:cli/stdout@0.2.0;
  export wasi:cli/run@0.2.0;
}

package wasi:io@0.2.0 {
  interface error {
    resource error {
      to-debug-string: func() -> string;
    }
  }
  interface streams {
    use error.{error};
    resource output-stream {
      blocking-write-and-flush: func(contents: list<u8>) -> result<_, error>;
    }
  }
}

package wasi:cli@0.2.0 {
  interface environment {
    get-environment: func() -> list<tuple<string, string>>;
    get-arguments: func() -> list<string>;
  }
  interface exit {
    exit: func(status: result);
  }
  interface stdout {
    use wasi:io/streams@0.2.0.{output-stream};
    get-stdout: func() -> output-stream;
  }
  interface run {
    run: func() -> result;
  }
}
`,
    sure: {
      imports: [
        'wasi:cli/environment@0.2.0',
        'wasi:cli/exit@0.2.0',
        'wasi:cli/stdout@0.2.0',
        // Not named in the world, but used by stdout's types: imported too.
        'wasi:io/streams@0.2.0',
        'wasi:io/error@0.2.0',
      ],
      exports: ['wasi:cli/run@0.2.0'],
    },
  },
  {
    title: 'plain function imports and exports',
    witSource: `
package test:plain;

world plain {
  import log: func(msg: string);
  import now: func() -> u64;
  import %import: func(data: list<u8>) -> option<string>;
  export run: func();
  export add: func(a: u32, b: u32) -> u32;
  export %export: func() -> result<string, string>;
}
`,
    sure: { imports: ['log', 'now', 'import'], exports: ['run', 'add', 'export'] },
  },
  {
    title: 'exported interfaces, one of them using types from another',
    witSource: `
package test:demo@0.1.0;

interface types {
  record point { x: s32, y: s32 }
  enum color { red, green, blue }
}

interface greet {
  hello: func(name: string) -> string;
}

interface shapes {
  use types.{point, color};
  area: func(corners: list<point>) -> f64;
  paint: func(c: color);
}

interface host {
  log: func(msg: string);
}

world service {
  import host;
  import other:thing/util;
  export greet;
  export shapes;
  export version: func() -> string;
}

package other:thing {
  interface util {
    ping: func() -> bool;
  }
}
`,
    sure: {
      // types is imported because the exported shapes uses its types.
      imports: ['test:demo/host@0.1.0', 'other:thing/util', 'test:demo/types@0.1.0'],
      exports: ['test:demo/greet@0.1.0', 'test:demo/shapes@0.1.0', 'version'],
    },
  },
  {
    title: 'a world with no imports',
    witSource: `
package test:pure@1.0.0;

interface calc {
  resource accumulator {
    constructor(start: u64);
    add: func(n: u64);
    total: func() -> u64;
  }
  double: func(n: u64) -> u64;
}

world pure {
  export calc;
  export name: func() -> string;
}
`,
    sure: { imports: [], exports: ['test:pure/calc@1.0.0', 'name'] },
  },
  {
    title: 'world-level use of a type (a type import) and many packages',
    witSource: `
package test:mixed@2.1.0-rc.1;

world mixed {
  use wasi:io/streams@0.2.0.{output-stream};
  import wasi:clocks/monotonic-clock@0.2.0;
  import wasi:random/random@0.2.0;
  import sink: func(s: output-stream);
  export wasi:http/handler@0.2.0;
  export start: func();
}

package wasi:io@0.2.0 {
  interface streams {
    resource output-stream {
      write: func(contents: list<u8>);
    }
  }
}

package wasi:clocks@0.2.0 {
  interface monotonic-clock {
    now: func() -> u64;
  }
}

package wasi:random@0.2.0 {
  interface random {
    get-random-bytes: func(len: u64) -> list<u8>;
  }
}

package wasi:http@0.2.0 {
  interface handler {
    handle: func(path: string) -> u16;
  }
}
`,
    sure: {
      imports: [
        'wasi:io/streams@0.2.0',
        'output-stream',
        'wasi:clocks/monotonic-clock@0.2.0',
        'wasi:random/random@0.2.0',
        'sink',
      ],
      exports: ['wasi:http/handler@0.2.0', 'start'],
    },
  },
  {
    title: 'an empty world',
    witSource: `
package test:empty;

world nothing {}
`,
    sure: { imports: [], exports: [] },
  },
];

/** `kind name`, the comparable form of an import or export. */
type Entry = string;

/**
 * The imports and exports of `world root { ... }` in the WIT jco prints for a component: `import a:b/c;`
 * and `export a:b/c;` are interfaces (instances), `import f: func(...)` functions, and a world-level
 * `use pkg/iface.{t, u as v};` imports the types t and v. Any other line in the world is an error, so a
 * change in the printer cannot silently shrink the reference.
 */
function referenceFromWit(wit: string): { imports: Entry[]; exports: Entry[] } {
  const imports: Entry[] = [];
  const exports: Entry[] = [];
  const lines = wit.split('\n');
  const start = lines.findIndex((line) => /^world root\s*\{/.test(line.trim()));
  assert.ok(start >= 0, `no "world root" in:\n${wit}`);
  const braces = (line: string): number => {
    let n = 0;
    for (const ch of line) n += ch === '{' ? 1 : ch === '}' ? -1 : 0;
    return n;
  };
  let depth = braces(lines[start] ?? '');
  for (const raw of lines.slice(start + 1)) {
    if (depth <= 0) break;
    const line = raw.trim();
    const outer = depth === 1;
    depth += braces(line);
    if (!outer || depth <= 0 || line === '' || line.startsWith('//')) continue;
    const iface = /^(import|export)\s+([^\s;]+);$/.exec(line);
    const named = /^(import|export)\s+(%?[\w-]+)\s*:\s*(.*)$/.exec(line);
    const used = /^use\s+\S+\.\{([^}]*)\};$/.exec(line);
    if (iface) {
      (iface[1] === 'import' ? imports : exports).push(`instance ${iface[2]}`);
    } else if (named) {
      const rest = named[3] ?? '';
      const kind = /^(async\s+)?func\b/.test(rest) ? 'func' : rest.startsWith('interface') ? 'instance' : '';
      assert.ok(kind, `unrecognised world item: ${line}`);
      (named[1] === 'import' ? imports : exports).push(`${kind} ${(named[2] ?? '').replace(/^%/, '')}`);
    } else if (used) {
      for (const item of (used[1] ?? '').split(',')) {
        const parts = item.trim().split(/\s+as\s+/);
        const local = (parts[1] ?? parts[0] ?? '').replace(/^%/, '');
        if (local) imports.push(`type ${local}`);
      }
    } else {
      assert.fail(`unrecognised line in the world printed by jco: ${line}`);
    }
  }
  return { imports: imports.sort(), exports: exports.sort() };
}

function entries(info: WasmInfo): { imports: Entry[]; exports: Entry[] } {
  return {
    imports: info.imports.map((i) => `${i.kind} ${i.name}`).sort(),
    exports: info.exports.map((e) => `${e.kind} ${e.name}`).sort(),
  };
}

const names = (list: Entry[]): string[] => list.map((e) => e.slice(e.indexOf(' ') + 1)).sort();

/** Imports (`module name kind`) and exports (`name kind`) of a core module, read from the WAT jco prints. */
function referenceFromWat(wat: string): { imports: string[]; exports: string[] } {
  const kinds = '(func|table|memory|global|tag)';
  const imports = [...wat.matchAll(new RegExp(`\\(import "([^"]*)" "([^"]*)" \\(${kinds}\\b`, 'g'))].map(
    (m) => `${m[1]} ${m[2]} ${m[3]}`,
  );
  const exports = [...wat.matchAll(new RegExp(`\\(export "([^"]*)" \\(${kinds}\\b`, 'g'))].map(
    (m) => `${m[1]} ${m[2]}`,
  );
  return { imports: imports.sort(), exports: exports.sort() };
}

describe('components built by jco match the WIT jco reads back', () => {
  for (const c of CASES) {
    it(c.title, async () => {
      const core = await jco.componentEmbed({ dummy: true, witSource: c.witSource });
      const component = await jco.componentNew(core);
      const reference = referenceFromWit(await jco.componentWit(component));
      for (const name of c.sure.imports) assert.ok(names(reference.imports).includes(name), `import ${name}`);
      for (const name of c.sure.exports) assert.ok(names(reference.exports).includes(name), `export ${name}`);
      if (c.sure.imports.length === 0) assert.deepEqual(reference.imports, []);

      const info = inspectWasm(component);
      assert.equal(info.kind, 'component');
      assert.equal(info.version, 0x0d);
      for (const i of info.imports)
        assert.equal(i.module, undefined, `component import ${i.name} has a module`);
      const ours = entries(info);
      assert.deepEqual(names(ours.imports), names(reference.imports), 'import names');
      assert.deepEqual(names(ours.exports), names(reference.exports), 'export names');
      assert.deepEqual(ours.imports, reference.imports, 'import kinds');
      assert.deepEqual(ours.exports, reference.exports, 'export kinds');
    });

    it(`${c.title}: the embedded core module parses as a module`, async () => {
      const core = await jco.componentEmbed({ dummy: true, witSource: c.witSource });
      const info = inspectWasm(core);
      assert.equal(info.kind, 'module');
      assert.equal(info.version, 1);
      const reference = referenceFromWat(await jco.print(core));
      assert.deepEqual(info.imports.map((i) => `${i.module} ${i.name} ${i.kind}`).sort(), reference.imports);
      assert.deepEqual(info.exports.map((e) => `${e.name} ${e.kind}`).sort(), reference.exports);
      assert.ok(
        info.exports.some((e) => e.kind === 'memory'),
        'a dummy module exports its memory',
      );
    });
  }
});

describe('testdata/hello.wasm', () => {
  it('is a WASI preview1 core module importing fd_write and exporting memory and _start', async () => {
    const bytes = await readFile(new URL('../../../testdata/hello.wasm', import.meta.url));
    const info = inspectWasm(bytes);
    assert.equal(info.kind, 'module');
    assert.equal(info.version, 1);
    assert.deepEqual(info.imports, [{ module: 'wasi_snapshot_preview1', name: 'fd_write', kind: 'func' }]);
    assert.deepEqual(
      info.exports.find((e) => e.name === 'memory'),
      { name: 'memory', kind: 'memory' },
    );
    assert.deepEqual(
      info.exports.find((e) => e.name === '_start'),
      { name: '_start', kind: 'func' },
    );
  });
});
