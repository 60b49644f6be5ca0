#!/usr/bin/env node
// Bundles the CLI with esbuild into CommonJS files in dist/cli/:
//   main.cjs     process wiring only; it loads the others through a V8 code cache (src/cli/main.ts);
//   program.cjs  the command table and argument parsing;
//   push.cjs, pull.cjs, manage.cjs, wasm.cjs, login.cjs  one self-contained file per command module,
//                loaded only when that command runs;
//   help.cjs, completion.cjs  help text (with the examples) and the shell completion scripts, loaded
//                only when asked for;
//   signing.cjs  Notary v1 (src/sign/, loaded only with --sign);
//   cosign.cjs   the generate-key-pair, sign and verify commands (cli/cosign.ts);
//   sigstore.cjs cosign signing and verification (ops/cosign.ts, src/sign/cosign/, @noble/hashes'
//                scrypt and @noble/ciphers' secretbox), loaded by cosign.cjs and by push and pull only
//                with --sign-key / --verify-key.
// CommonJS because Node 20 starts a CommonJS file faster than an ES module (about 5 ms and 12 ms over
// `node -e 0` for a file that prints one line, measured with hyperfine here); one file per command
// because compiling what a command does not run costs too (bench/peers.mjs has the figures). The
// library (dist/index.js and its modules, from tsc) is not bundled: embedders import what they use.
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { build } from 'esbuild';

const root = new URL('../src/', import.meta.url).pathname;
const outdir = new URL('../dist/cli/', import.meta.url).pathname;
const MODULES = {
  program: 'cli/program.ts',
  push: 'cli/push.ts',
  pull: 'cli/pull.ts',
  manage: 'cli/manage.ts',
  wasm: 'cli/wasm.ts',
  login: 'cli/login.ts',
  help: 'cli/help.ts',
  completion: 'cli/completion.ts',
  signing: 'sign/index.ts',
  cosign: 'cli/cosign.ts',
  sigstore: 'ops/cosign.ts',
};

/**
 * Imports of another bundle stay outside: `./push.js`, `../sign/index.js` and so on become `./<name>.cjs`.
 * `./cosign.js` is the command module cli/cosign.ts when imported from cli/, and ops/cosign.ts (the
 * bundle sigstore.cjs) when imported from ops/.
 */
const separate = {
  name: 'separate-bundles',
  setup(b) {
    b.onResolve(
      {
        filter:
          /^\.\.?\/(program|push|pull|manage|wasm|login|help|completion|cosign|sign\/index|ops\/cosign)\.js$/,
      },
      (args) => {
        const fromOps = args.importer.startsWith(`${root}ops/`);
        const name = args.path.endsWith('/sign/index.js')
          ? 'signing'
          : args.path === '../ops/cosign.js' || (fromOps && args.path === './cosign.js')
            ? 'sigstore'
            : basename(args.path, '.js');
        const own = args.importer.endsWith(MODULES[name]);
        // The command modules are cli/<name>.ts, imported as './<name>.js' from cli/; sign/ from outside
        // it; ops/cosign.ts from cli/ and from the other operations.
        const wanted =
          name === 'signing'
            ? !args.importer.startsWith(`${root}sign/`)
            : name === 'sigstore'
              ? true
              : args.path.startsWith('./') && args.importer.startsWith(`${root}cli/`);
        return own || !wanted ? undefined : { path: `./${name}.cjs`, external: true };
      },
    );
  },
};

const common = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20.19',
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
  define: { __BUNDLED__: 'true' },
  plugins: [separate],
  write: false,
};

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const results = [
  await build({ ...common, entryPoints: [`${root}cli/main.ts`], outfile: `${outdir}main.cjs` }),
  ...(await Promise.all(
    Object.entries(MODULES).map(([name, path]) =>
      build({ ...common, entryPoints: [`${root}${path}`], outfile: `${outdir}${name}.cjs` }),
    ),
  )),
];
for (const { outputFiles } of results) {
  for (const file of outputFiles) {
    // An `import()` of a built-in or of another bundle becomes a require: an import() would start
    // Node's ES module loader, and bundles run in a vm.Script (for the code cache), where it fails.
    const text = file.text.replace(
      /\bimport\((["'])(node:[a-z_/]+|\.\/[a-z]+\.cjs)\1\)/g,
      'Promise.resolve(require($1$2$1))',
    );
    writeFileSync(file.path, text);
  }
}
chmodSync(`${outdir}main.cjs`, 0o755);
