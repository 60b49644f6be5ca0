import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The house rules of docs/ARCHITECTURE.md, checked on the sources: imports flow one way, oci/ does no
 * I/O, auth/ knows nothing of files or helpers, only the CLI prints, only cli/main.ts touches process.
 */

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
  });
}

const files = sources(SRC).map((path) => {
  const text = readFileSync(path, 'utf8');
  const rel = relative(SRC, path);
  // Static imports and re-exports, dynamic import() calls, and built-ins reached through
  // process.getBuiltinModule: a rule holds whichever way a module is reached.
  const imports = [
    ...[...text.matchAll(/^(?:import|export)[^'"]*from '([^']+)'/gm)].map((m) => m[1] as string),
    ...[...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)].map((m) => m[1] as string),
    ...[...text.matchAll(/\bgetBuiltinModule\(\s*'([^']+)'\s*\)/g)].map((m) => m[1] as string),
  ];
  const local = imports
    .filter((i) => i.startsWith('.'))
    .map((i) => relative(SRC, join(SRC, rel, '..', i)).replace(/\.js$/, '.ts'));
  return { rel, text, imports, local };
});

/** A file's room: its folder under src/, or '.' for the few modules at the root. */
const room = (rel: string) => (rel.includes('/') ? (rel.split('/')[0] as string) : '.');
const ROOT_MODULES = ['index.ts', 'errors.ts', 'reference.ts', 'copy.ts', 'version.ts'];

describe('architecture', () => {
  it('finds the sources', () => assert.ok(files.length > 20));

  it('oci/ imports only oci/ and errors, and no I/O module', () => {
    for (const f of files.filter((x) => x.rel.startsWith('oci/'))) {
      for (const l of f.local) assert.ok(l.startsWith('oci/') || l === 'errors.ts', `${f.rel} imports ${l}`);
      for (const i of f.imports)
        assert.ok(!/^node:(fs|http|https|net|child_process)/.test(i), `${f.rel} imports ${i}`);
    }
  });

  it('auth/ knows nothing of files, helpers, registries or the CLI', () => {
    for (const f of files.filter((x) => x.rel.startsWith('auth/'))) {
      for (const l of f.local) {
        assert.ok(
          room(l) === 'auth' ||
            ['errors.ts', 'reference.ts'].includes(l) ||
            l === 'transport/types.ts' ||
            l === 'transport/body.ts',
          `${f.rel} imports ${l}`,
        );
      }
      for (const i of f.imports) assert.ok(!/^node:(fs|child_process)/.test(i), `${f.rel} imports ${i}`);
    }
  });

  it('the rooms are the folders, and the root holds only its five modules', () => {
    const rooms = new Set(files.map((f) => room(f.rel)));
    assert.deepEqual([...rooms].sort(), [
      '.',
      'auth',
      'cache',
      'cli',
      'content',
      'credentials',
      'oci',
      'ops',
      'registry',
      'sign',
      'transport',
      'wasm',
    ]);
    assert.deepEqual(
      files
        .filter((f) => room(f.rel) === '.')
        .map((f) => f.rel)
        .sort(),
      [...ROOT_MODULES].sort(),
    );
  });

  it('sign/notary/ (Notary v1) uses only the transport, the registry client, auth scopes and atomic writes', () => {
    for (const f of files.filter((x) => x.rel.startsWith('sign/notary/'))) {
      for (const l of f.local) {
        assert.ok(
          ['sign', 'transport'].includes(room(l)) ||
            [
              'errors.ts',
              'registry/client.ts',
              'registry/errors.ts',
              'auth/scope.ts',
              'content/atomic.ts',
            ].includes(l),
          `${f.rel} imports ${l}`,
        );
      }
    }
  });

  it('sign/cosign/ (cosign formats) uses only sign/, the spec model, errors and its crypto', () => {
    const cosign = files.filter((x) => x.rel.startsWith('sign/cosign/'));
    assert.ok(cosign.length >= 5);
    for (const f of cosign) {
      for (const l of f.local) {
        assert.ok(
          ['sign', 'oci'].includes(room(l)) || ['errors.ts', 'content/types.ts'].includes(l),
          `${f.rel} imports ${l}`,
        );
      }
      for (const i of f.imports.filter((x) => !x.startsWith('.'))) {
        assert.ok(
          ['node:crypto', '@noble/hashes/scrypt.js', '@noble/ciphers/salsa.js'].includes(i),
          `${f.rel} imports ${i}`,
        );
      }
    }
    // scrypt and secretbox stay off every other path (push and pull reach them only through a lazy
    // import of ops/cosign.ts).
    for (const f of files.filter((x) => !x.rel.startsWith('sign/cosign/'))) {
      for (const i of f.imports) assert.ok(!i.startsWith('@noble/'), `${f.rel} imports ${i}`);
    }
    for (const f of files.filter((x) => ['ops/push.ts', 'ops/pull.ts'].includes(x.rel))) {
      assert.ok(
        !/^import (?!type )[^'"]*from '\.\/cosign\.js'/m.test(f.text),
        `${f.rel} loads cosign eagerly`,
      );
    }
  });

  it('sign/index.ts orchestrates signing without reaching into operations, stores or the CLI', () => {
    for (const f of files.filter((x) => x.rel.startsWith('sign/'))) {
      for (const l of f.local) {
        assert.ok(
          !['ops', 'cli', 'cache', 'wasm'].includes(room(l)) && !l.startsWith('content/layout'),
          `${f.rel} imports ${l}`,
        );
      }
    }
  });

  it('only the CLI and the public index reach the operations (ops/ is the top of the library)', () => {
    for (const f of files.filter((x) => !['ops', 'cli'].includes(room(x.rel)) && x.rel !== 'index.ts')) {
      for (const l of f.local) assert.ok(room(l) !== 'ops', `${f.rel} imports ${l}`);
    }
  });

  it('cache/ and the root copy() use content, descriptors and errors only', () => {
    for (const f of files.filter((x) => room(x.rel) === 'cache' || x.rel === 'copy.ts')) {
      for (const l of f.local) {
        assert.ok(
          ['cache', 'content', 'oci'].includes(room(l)) || l === 'errors.ts',
          `${f.rel} imports ${l}`,
        );
      }
    }
  });

  it('errors, reference and version stand alone', () => {
    for (const f of files.filter((x) => ['errors.ts', 'reference.ts', 'version.ts'].includes(x.rel))) {
      for (const l of f.local) assert.ok(l === 'errors.ts', `${f.rel} imports ${l}`);
    }
  });

  it('nothing in src/ imports the package entry points (they are for users, not for bundles)', () => {
    const entries = ['index.ts', 'content/index.ts', 'registry/index.ts', 'wasm/index.ts'];
    for (const f of files) {
      for (const l of f.local) assert.ok(!entries.includes(l), `${f.rel} imports ${l}`);
    }
  });

  it("the library's messages and hints name options, not CLI flags (the CLI adds those)", () => {
    for (const f of files.filter((x) => !x.rel.startsWith('cli/'))) {
      const code = f.text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
      const flag = /(?<![\w-])--[a-z][a-z-]+/.exec(code);
      assert.equal(flag, null, `${f.rel} names the flag ${flag?.[0]}`);
    }
  });

  it('nothing outside cli/ imports cli/', () => {
    for (const f of files.filter((x) => !x.rel.startsWith('cli/'))) {
      for (const l of f.local) assert.ok(!l.startsWith('cli/'), `${f.rel} imports ${l}`);
    }
  });

  it('the library never prints and only cli/main.ts touches process', () => {
    for (const f of files.filter((x) => !x.rel.startsWith('cli/'))) {
      assert.ok(!/console\.|process\.(stdout|stderr|exit)/.test(f.text), `${f.rel} prints or exits`);
    }
    for (const f of files.filter((x) => x.rel.startsWith('cli/') && x.rel !== 'cli/main.ts')) {
      assert.ok(!/\bprocess\.(stdout|stderr|exit|on|argv|env)\b/.test(f.text), `${f.rel} touches process`);
    }
  });

  it('registry/api.ts spells every distribution API path', () => {
    // Code lines only (comments may name paths); the trust server's `v2/<GUN>/_trust/tuf/` paths are
    // Notary's API, built in sign/notary/server.ts.
    for (const f of files.filter((x) => !['registry/api.ts', 'sign/notary/server.ts'].includes(x.rel))) {
      const code = f.text.split('\n').filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line));
      for (const line of code) assert.ok(!/['"`]\/?v2\//.test(line), `${f.rel} spells ${line.trim()}`);
    }
  });

  it('the CLI uses the library through the operations and the public building blocks only', () => {
    const allowed = (l: string) =>
      ['cli', 'ops', 'cache'].includes(room(l)) ||
      ROOT_MODULES.includes(l) ||
      [
        'sign/index.ts',
        'content/output.ts',
        'content/atomic.ts',
        'content/defaults.ts',
        'credentials/source.ts',
        'oci/descriptor.ts',
      ].includes(l);
    for (const f of files.filter((x) => x.rel.startsWith('cli/'))) {
      for (const l of f.local) assert.ok(allowed(l), `${f.rel} imports ${l}`);
    }
  });
});
