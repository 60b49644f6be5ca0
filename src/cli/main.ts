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
/** The exit code of the signal that ended the run: 130 for SIGINT (Ctrl-C), 128 + n for the others. */
let interrupted: number | undefined;
const SIGNALS: Array<[NodeJS.Signals, number]> = [
  ['SIGINT', EXIT_INTERRUPTED],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
];
for (const [name, code] of SIGNALS) {
  process.on(name, () => {
    // A second signal does not wait for the clean-up.
    if (interrupted !== undefined) process.exit(interrupted);
    interrupted = code;
    controller.abort(new Error('interrupted'));
  });
}

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
    process.exitCode = interrupted ?? code;
  },
  (err) => {
    process.stderr.write(`Error: ${String(err)}\n`);
    process.exitCode = EXIT_FAILED;
  },
);
