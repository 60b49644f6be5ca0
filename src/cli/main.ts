#!/usr/bin/env node
/**
 * The only module that touches `process`: it wires stdio, the environment, Ctrl-C and exit codes to
 * the command tree.
 */
import { EXIT_FAILED, EXIT_INTERRUPTED, type Io } from './output.js';
import { main } from './program.js';

// node:wasi announces itself as experimental on every run; `run` is a supported command here.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'ExperimentalWarning' && /WASI/.test(warning.message)) return;
  process.stderr.write(`${warning.name}: ${warning.message}\n`);
});

const controller = new AbortController();
let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(EXIT_INTERRUPTED);
  interrupted = true;
  controller.abort(new Error('interrupted'));
});

const io: Io = {
  // Created on first use: most commands never read stdin.
  get stdin() {
    return process.stdin;
  },
  stdout: process.stdout,
  stderr: process.stderr,
};
main(process.argv.slice(2), io, process.env, controller.signal).then(
  (code) => {
    process.exitCode = interrupted ? EXIT_INTERRUPTED : code;
  },
  (err) => {
    process.stderr.write(`Error: ${String(err)}\n`);
    process.exitCode = EXIT_FAILED;
  },
);
