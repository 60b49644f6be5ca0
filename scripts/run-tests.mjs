#!/usr/bin/env node
// Runs every compiled test (unit tests beside the code, integration and end-to-end tests under test/)
// with Node's own test runner. Expects `tsc -p tsconfig.test.json` to have filled .test-build/.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../.test-build/', import.meta.url).pathname;
const only = process.argv.slice(2);

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...find(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const files = find(root)
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
if (files.length === 0) {
  console.error('no test files found under .test-build/');
  process.exit(1);
}
// Tests must never replace a system file (a pull to /dev/null as root once did): checked around the run.
const nullIsDevice = () => statSync('/dev/null').isCharacterDevice();
const nullBefore = nullIsDevice();
if (!nullBefore) console.error('warning: /dev/null is not a character device before the tests');
const result = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files],
  { stdio: 'inherit' },
);
if (nullBefore && !nullIsDevice()) {
  console.error('error: a test replaced /dev/null with a regular file');
  process.exit(1);
}
process.exit(result.status ?? 1);
