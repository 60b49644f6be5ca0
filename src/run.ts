import { readFile } from 'node:fs/promises';
import { WasmOciError } from './errors.js';
import { inspectWasm } from './wasm/inspect.js';

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
}

/** The slice of the WebAssembly JS API used here (the ES lib has no typings for it; the DOM lib does). */
interface WasmInstance {
  exports: Record<string, unknown>;
}
declare const WebAssembly: {
  compile(bytes: Uint8Array): Promise<object>;
  instantiate(module: object, imports: object): Promise<WasmInstance>;
};

/** Runs the module to completion and returns its exit code. */
export async function runWasm(options: RunOptions): Promise<number> {
  const bytes = await readFile(options.file);
  const info = inspectWasm(bytes, options.file);
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
  const wasi = new WASI({
    version,
    args: [options.name ?? options.file, ...(options.args ?? [])],
    env: { ...(options.env ?? {}) },
    preopens: { ...(options.preopens ?? {}) },
    returnOnExit: true,
  });
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
