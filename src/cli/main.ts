#!/usr/bin/env node
/**
 * The only module that touches `process`: it wires stdio, the environment, Ctrl-C and exit codes to
 * the command tree.
 */
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type * as Vm from 'node:vm';
import { VERSION } from '../version.js';
import type { CommandLoader } from './common.js';
import type { Io } from './output.js';

/** Set by scripts/bundle.mjs: this file runs as dist/cli/main.cjs, beside the command bundles. */
declare const __BUNDLED__: boolean | undefined;

/** Exit codes, as in output.ts (not imported: `--version` loads nothing else). */
const EXIT_FAILED = 1;
const EXIT_INTERRUPTED = 130;

const controller = new AbortController();
/** The exit code of the signal that ended the run: 130 for SIGINT (Ctrl-C), 128 + n for the others. */
let interrupted: number | undefined;

/**
 * Warnings, signals and stdio for a command run (not for `--version`, which must start as fast as
 * node itself: creating process.stdout alone loads the stream and socket modules for a pipe).
 */
function setUp(): Io {
  // node:wasi announces itself as experimental on every run; `run` is a supported command here.
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.name === 'ExperimentalWarning' && /WASI/.test(warning.message)) return;
    process.stderr.write(`${warning.name}: ${warning.message}\n`);
  });

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
  return io;
}

/**
 * Exits as soon as the result is out: idle keep-alive sockets, timers of abandoned retries and
 * lingering helper pipes must not keep a finished command waiting. The write callback fires once
 * everything written before it is flushed.
 */
function exit(code: number): void {
  process.exitCode = code;
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

/**
 * The bundled CLI's command loader: a command bundle is compiled with V8's code cache, kept in
 * `$XDG_CACHE_HOME/wasm-to-oci/code/` (0600; written after a first run, so it holds what that run
 * compiled; V8 rejects a cache that does not match the source). Measured here: about 7 ms less to load
 * a command (hyperfine, --version against a command run). Any problem with the cache falls back to a plain require.
 */
function bundledLoader(dir: string): (name: string) => Promise<unknown> {
  const { createRequire, wrap } = process.getBuiltinModule('node:module');
  const { Script } = process.getBuiltinModule('node:vm');
  const cacheRoot = process.env.XDG_CACHE_HOME || (process.env.HOME ? join(process.env.HOME, '.cache') : '');
  return async (name) => {
    const file = join(dir, `${name}.cjs`);
    const requireHere = createRequire(file);
    let cacheFile: string | undefined;
    let cached: Buffer | undefined;
    try {
      const info = statSync(file);
      cacheFile = cacheRoot
        ? join(
            cacheRoot,
            'wasm-to-oci',
            'code',
            `${name}-${VERSION}-${info.size}-${Math.trunc(info.mtimeMs)}.v8`,
          )
        : undefined;
      if (cacheFile) cached = readFileSync(cacheFile);
    } catch {
      // No cache yet.
    }
    let script: Vm.Script;
    try {
      script = new Script(wrap(readFileSync(file, 'utf8')), { filename: file, cachedData: cached });
    } catch {
      return requireHere(file) as unknown;
    }
    const module = { exports: {} as Record<string, unknown> };
    script.runInThisContext()(module.exports, requireHere, module, file, dir);
    if (cacheFile && (cached === undefined || script.cachedDataRejected)) {
      const target = cacheFile;
      process.once('exit', () => {
        try {
          mkdirSync(join(target, '..'), { recursive: true, mode: 0o700 });
          writeFileSync(`${target}.${process.pid}`, script.createCachedData(), { mode: 0o600 });
          renameSync(`${target}.${process.pid}`, target);
          // Caches of earlier builds of this bundle are of no use any more.
          const dir = join(target, '..');
          for (const old of readdirSync(dir)) {
            if (old.startsWith(`${name}-`) && join(dir, old) !== target) unlinkSync(join(dir, old));
          }
        } catch {
          // Only speed is lost.
        }
      });
    }
    return module.exports;
  };
}

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  // The most common scripted call: no command module is loaded for it, and no stream is made.
  try {
    writeSync(1, `${VERSION}\n`);
  } catch {
    // A non-blocking pipe that is full (EAGAIN), say: the stream waits for it.
    process.stdout.write(`${VERSION}\n`);
  }
} else {
  const io = setUp();
  const load = typeof __BUNDLED__ !== 'undefined' && __BUNDLED__ ? bundledLoader(__dirname) : undefined;
  (load ? (load('program') as Promise<typeof import('./program.js')>) : import('./program.js'))
    .then(({ main }) => main(argv, io, process.env, controller.signal, load as CommandLoader | undefined))
    .then(
      (code) => exit(interrupted ?? code),
      (err) => {
        process.stderr.write(`Error: ${String(err)}\n`);
        exit(EXIT_FAILED);
      },
    );
}
