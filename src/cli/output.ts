import { errnoError, isErrnoError, WasmOciError } from '../errors.js';
import { withFlags } from './flags.js';
import { errorJson } from './json.js';

export interface Io {
  stdin?: (AsyncIterable<unknown> & { isTTY?: boolean | undefined }) | undefined;
  stdout: { write(data: string | Uint8Array): unknown; isTTY?: boolean | undefined };
  stderr: { write(text: string): unknown; isTTY?: boolean | undefined; columns?: number | undefined };
}

/** Exit codes: 0 ok, 1 failed, 2 usage, 130 interrupted. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

/**
 * A string of outside origin (a registry's message, a tag, an annotation, a module's names) made safe
 * for a terminal, as git does with remote messages: control characters (C0, DEL, C1), which could
 * clear the screen, set the window title or hide a link (ESC, OSC 8), and the bidirectional overrides
 * that reorder text are shown as escapes instead of being obeyed.
 */
export function terminalSafe(text: string): string {
  return text.replace(
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u{${c.charCodeAt(0).toString(16)}}`,
  );
}

/** terminalSafe for a single line: line breaks and tabs are shown as escapes too. */
export function lineSafe(text: string): string {
  return terminalSafe(text).replace(/[\t\n]/g, (c) => (c === '\t' ? '\\t' : '\\n'));
}

/**
 * JSON for a terminal: JSON.stringify escapes C0 controls but leaves DEL, C1 controls and the bidi
 * overrides; here they become \\uXXXX escapes too, so the text is still the same JSON value.
 */
export function jsonSafe(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(
    /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Prints `Key: value` lines (the original tool's format) or one JSON object with `--json`. */
export function printResult(
  io: Io,
  json: boolean,
  lines: Array<[string, string | number]>,
  data: object,
): void {
  if (json) io.stdout.write(`${jsonSafe(data)}\n`);
  else io.stdout.write(lines.map(([k, v]) => `${k}: ${lineSafe(String(v))}\n`).join(''));
}

/** One error on stderr: an `Error:` line and a `Hint:` line, or with `json` one `{"error": ...}` object. */
export function writeError(
  io: Io,
  json: boolean,
  code: string,
  message: string,
  hint: string | undefined,
): void {
  if (json) io.stderr.write(`${jsonSafe(errorJson(code, message, hint))}\n`);
  else {
    io.stderr.write(`Error: ${lineSafe(message)}\n`);
    if (hint) io.stderr.write(`Hint: ${lineSafe(hint)}\n`);
  }
}

/**
 * Renders an error as one line (plus a hint) and picks the exit code; stack traces only in verbose mode.
 * With `json`, the error is one JSON object on stderr instead (`{"error": {"code", "message", "hint"}}`).
 */
export function reportError(io: Io, err: unknown, verbose: boolean, json = false): number {
  if (err instanceof WasmOciError) {
    writeError(io, json, err.code, withFlags(err.message), err.hint ? withFlags(err.hint) : undefined);
    if (verbose && err.cause) io.stderr.write(`Cause: ${String((err.cause as Error).stack ?? err.cause)}\n`);
    if (err.code === 'ABORTED') return EXIT_INTERRUPTED;
    return err.code === 'USAGE' || err.code === 'INVALID_REFERENCE' ? EXIT_USAGE : EXIT_FAILED;
  }
  // An operating-system error no layer put in words (a full disk, a missing directory for WASI): a
  // failure of the machine, not a bug; the path is shown unless it is one of our temporary names.
  const uvwasi = /^UVWASI_(E[A-Z0-9]+)$/.exec(String((err as NodeJS.ErrnoException)?.code ?? ''));
  if (isErrnoError(err) || uvwasi) {
    const e = err as NodeJS.ErrnoException;
    const code = uvwasi ? uvwasi[1] : e.code;
    const path =
      typeof e.path === 'string' && !/\.part$|wasm-to-oci-[a-z]+-/.test(e.path) ? e.path : undefined;
    const what = path ?? (uvwasi ? 'WASI set-up' : `${e.syscall} failed`);
    return reportError(io, errnoError(e, what, code), verbose, json);
  }
  const e = err as Error;
  const message = e?.message ?? String(err);
  const hint = 'this looks like a bug in wasm-to-oci; run again with --verbose for details';
  // In verbose text mode the stack trace takes the hint's place.
  writeError(io, json, 'INTERNAL', message, json || !verbose ? hint : undefined);
  if (verbose) io.stderr.write(`${e?.stack ?? ''}\n`);
  return EXIT_FAILED;
}
