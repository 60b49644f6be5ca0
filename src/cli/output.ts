import { WasmOciError } from '../errors.js';

export interface Io {
  stdin?: (AsyncIterable<unknown> & { isTTY?: boolean | undefined }) | undefined;
  stdout: { write(data: string | Uint8Array): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean | undefined; columns?: number | undefined };
}

/** Exit codes: 0 ok, 1 failed, 2 usage, 130 interrupted. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

/** Prints `Key: value` lines (the original tool's format) or one JSON object with `--json`. */
export function printResult(
  io: Io,
  json: boolean,
  lines: Array<[string, string | number]>,
  data: object,
): void {
  if (json) io.stdout.write(`${JSON.stringify(data)}\n`);
  else io.stdout.write(lines.map(([k, v]) => `${k}: ${v}\n`).join(''));
}

/** Renders an error as one line (plus a hint) and picks the exit code; stack traces only in verbose mode. */
export function reportError(io: Io, err: unknown, verbose: boolean): number {
  if (err instanceof WasmOciError) {
    io.stderr.write(`Error: ${err.message}\n`);
    if (err.hint) io.stderr.write(`Hint: ${err.hint}\n`);
    if (verbose && err.cause) io.stderr.write(`Cause: ${String((err.cause as Error).stack ?? err.cause)}\n`);
    if (err.code === 'ABORTED') return EXIT_INTERRUPTED;
    return err.code === 'USAGE' || err.code === 'INVALID_REFERENCE' ? EXIT_USAGE : EXIT_FAILED;
  }
  const e = err as Error;
  io.stderr.write(`Error: ${e?.message ?? String(err)}\n`);
  io.stderr.write(
    verbose
      ? `${e?.stack ?? ''}\n`
      : 'Hint: this looks like a bug in wasm-to-oci; run again with --verbose for details\n',
  );
  return EXIT_FAILED;
}
