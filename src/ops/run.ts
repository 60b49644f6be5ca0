import type { Dirent } from 'node:fs';
import { readdir, readFile, readlink, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileError } from '../content/output.js';
import { errnoError, WasmOciError } from '../errors.js';
import { inspectWasm } from '../wasm/inspect.js';

/**
 * Runs a WASI command module with Node's built-in node:wasi (preview1, and the older `wasi_unstable`),
 * with preopened directories, environment and arguments; stdin, stdout and stderr are the process's.
 * Components need a component runtime and get a clear error instead of a crash.
 */

export interface RunOptions {
  /** The module file. */
  file: string;
  /** argv[0] as the module sees it. */
  name?: string | undefined;
  args?: readonly string[] | undefined;
  env?: Readonly<Record<string, string>> | undefined;
  /** Guest path -> host path. */
  preopens?: Readonly<Record<string, string>> | undefined;
  /** The file descriptor the module's standard output goes to (default 1). */
  stdoutFd?: number | undefined;
}

/** The slice of the WebAssembly JS API used here (the ES lib has no typings for it; the DOM lib does). */
interface WasmInstance {
  exports: Record<string, unknown>;
}
declare const WebAssembly: {
  compile(bytes: Uint8Array): Promise<object>;
  instantiate(module: object, imports: object): Promise<WasmInstance>;
};

/** Entries a preopen may hold before the symlink check gives up (and refuses it). */
const MAX_PREOPEN_ENTRIES = 200_000;

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * node:wasi follows symbolic links out of a preopened directory (a known limit: it is not a sandbox).
 * A preopen that holds a link leading outside it is refused, as wasmtime confines such links; what the
 * module itself does at run time is not confined (see SECURITY.md).
 */
export async function checkPreopen(host: string): Promise<void> {
  let root: string;
  try {
    root = await realpath(host);
    if (!(await stat(root)).isDirectory())
      throw new WasmOciError('FILE', `the \`preopens\` option ${host}: not a directory`);
  } catch (err) {
    if (err instanceof WasmOciError) throw err;
    throw fileError(err as NodeJS.ErrnoException, `the \`preopens\` option ${host}`);
  }
  const pending = [root];
  let seen = 0;
  while (pending.length) {
    const dir = pending.pop() as string;
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      continue; // Unreadable for us: unreadable for the module too.
    }
    for (const entry of entries) {
      if (++seen > MAX_PREOPEN_ENTRIES) {
        throw new WasmOciError(
          'FILE',
          `the \`preopens\` option ${host} holds more than ${MAX_PREOPEN_ENTRIES} entries to check for links`,
          {
            hint: 'preopen a smaller directory',
          },
        );
      }
      const path = join(dir, entry.name);
      if (entry.isDirectory()) pending.push(path);
      else if (entry.isSymbolicLink()) {
        const target = await realpath(path).catch(async () => resolve(dir, await readlink(path)));
        if (!inside(root, target)) {
          throw new WasmOciError(
            'FILE',
            `the \`preopens\` option ${host}: ${relative(root, path)} leads outside it (to ${target})`,
            {
              hint: 'node:wasi would follow the link out of the directory: remove it, or preopen what it points to',
            },
          );
        }
      }
    }
  }
}

/** Runs the module to completion and returns its exit code. */
export async function runWasm(options: RunOptions): Promise<number> {
  for (const host of Object.values(options.preopens ?? {})) await checkPreopen(host);
  const bytes = await readFile(options.file);
  // A pulled module lives in a temporary file: messages name what was pulled instead.
  const info = inspectWasm(bytes, options.name ?? options.file);
  if (info.kind === 'component') {
    throw new WasmOciError(
      'UNSUPPORTED',
      `${options.name ?? options.file} is a component, which node:wasi cannot run`,
      {
        hint: 'run it with a component runtime: wasmtime run <file>, or jco run <file> (npx @bytecodealliance/jco)',
      },
    );
  }
  const modules = new Set(info.imports.map((i) => i.module));
  const version = modules.has('wasi_unstable') ? 'unstable' : 'preview1';
  const { WASI } = await import('node:wasi');
  let wasi: InstanceType<typeof WASI>;
  try {
    wasi = new WASI({
      version,
      args: [options.name ?? options.file, ...(options.args ?? [])],
      env: { ...(options.env ?? {}) },
      preopens: { ...(options.preopens ?? {}) },
      ...(options.stdoutFd !== undefined ? { stdout: options.stdoutFd } : {}),
      returnOnExit: true,
    });
  } catch (err) {
    // uvwasi reports a preopen that vanished since it was checked as `UVWASI_ENOENT, uvwasi_init`.
    const code = /^UVWASI_(E[A-Z0-9]+)$/.exec(String((err as NodeJS.ErrnoException).code ?? ''))?.[1];
    if (code === undefined) throw err;
    throw errnoError(err as NodeJS.ErrnoException, 'preopening the directories', code);
  }
  let instance: WasmInstance;
  try {
    const module = await WebAssembly.compile(bytes);
    instance = await WebAssembly.instantiate(module, wasi.getImportObject());
  } catch (cause) {
    throw new WasmOciError(
      'UNSUPPORTED',
      `cannot instantiate ${options.name ?? options.file}: ${(cause as Error).message}`,
      {
        cause,
        hint: 'only WASI preview1 commands (with a _start export) run here',
      },
    );
  }
  if (!(instance.exports._start instanceof Function)) {
    throw new WasmOciError(
      'UNSUPPORTED',
      `${options.name ?? options.file} has no _start export: it is not a WASI command`,
    );
  }
  return wasi.start(instance as Parameters<typeof wasi.start>[0]);
}
