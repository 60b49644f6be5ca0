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

const room = (rel: string) => (rel.includes('/') ? rel.split('/')[0] : rel.replace(/\.ts$/, ''));

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
          ['auth', 'errors', 'reference'].includes(room(l) ?? '') ||
            l === 'transport/types.ts' ||
            l === 'transport/body.ts',
          `${f.rel} imports ${l}`,
        );
      }
      for (const i of f.imports) assert.ok(!/^node:(fs|child_process)/.test(i), `${f.rel} imports ${i}`);
    }
  });

  it('sign/ (Notary v1) uses only the transport, the registry client and auth scopes', () => {
    for (const f of files.filter((x) => x.rel.startsWith('sign/'))) {
      for (const l of f.local) {
        assert.ok(
          ['sign', 'errors', 'transport'].includes(room(l) ?? '') ||
            ['registry/client.ts', 'registry/errors.ts', 'auth/scope.ts'].includes(l),
          `${f.rel} imports ${l}`,
        );
      }
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

  it('the CLI uses the library through its public modules only (no registry internals)', () => {
    for (const f of files.filter((x) => x.rel.startsWith('cli/'))) {
      for (const l of f.local)
        assert.ok(
          !l.startsWith('registry/') && !l.startsWith('auth/') && !l.startsWith('sign/'),
          `${f.rel} imports ${l}`,
        );
    }
  });
});
