#!/usr/bin/env node
// Assembles testdata/*.wat into testdata/*.wasm with wabt (a dev dependency).
// `--check` assembles in memory and fails when a committed .wasm differs from its source.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const dir = fileURLToPath(new URL('../testdata/', import.meta.url));

export async function assemble(name, text) {
  const wabt = await wabtInit();
  const module = wabt.parseWat(name, text);
  try {
    module.validate();
    return Buffer.from(module.toBinary({ write_debug_names: false }).buffer);
  } finally {
    module.destroy();
  }
}

async function main() {
  const check = process.argv.includes('--check');
  let failed = false;
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.wat')).sort()) {
    const binary = await assemble(file, await readFile(join(dir, file), 'utf8'));
    const out = join(dir, file.replace(/\.wat$/, '.wasm'));
    if (check) {
      const committed = await readFile(out).catch(() => undefined);
      if (!committed?.equals(binary)) {
        console.error(`${out} does not match ${file}: run npm run testdata`);
        failed = true;
      }
    } else {
      await writeFile(out, binary);
      console.log(`${out}: ${binary.length} bytes`);
    }
  }
  if (failed) process.exitCode = 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
