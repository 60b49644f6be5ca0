import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { WasmOciError } from '../errors.js';
import type { Io } from './output.js';

/**
 * Asks a question on the terminal (stdin/stderr); with `secret`, what is typed is not echoed. Only used
 * when stdin is a TTY: scripts pass secrets with --password-stdin. Ctrl-C at the prompt (which a
 * terminal in raw mode delivers as a key, not as a signal) and the run's own interruption reject
 * with ABORTED, so the command exits 130; Ctrl-D (the end of input) is no answer, a usage error.
 */
export async function ask(
  io: Io,
  question: string,
  secret = false,
  signal?: AbortSignal | undefined,
): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (!muted) io.stderr.write(chunk.toString());
      callback();
    },
  });
  const rl = createInterface({
    input: io.stdin as NodeJS.ReadableStream,
    output,
    terminal: true,
  });
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise<string>((resolve, reject) => {
      let answered = false;
      const interrupted = () => {
        // The error goes on a line of its own (a secret prompt ends its line below).
        if (!secret) io.stderr.write('\n');
        reject(new WasmOciError('ABORTED', 'interrupted at the prompt: nothing was done'));
      };
      rl.on('SIGINT', interrupted);
      rl.on('close', () => {
        if (!answered) reject(new WasmOciError('USAGE', 'no answer: the input ended at the prompt'));
      });
      onAbort = interrupted;
      if (signal?.aborted) interrupted();
      signal?.addEventListener('abort', interrupted, { once: true });
      rl.question(question, (answer) => {
        answered = true;
        resolve(answer);
      });
      muted = secret;
    });
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    rl.close();
    if (secret) io.stderr.write('\n');
  }
}

/** Asks a yes/no question; only `y` or `yes` (any case) is yes. */
export async function confirm(io: Io, question: string, signal?: AbortSignal | undefined): Promise<boolean> {
  const answer = await ask(io, `${question} [y/N] `, false, signal);
  return /^\s*y(es)?\s*$/i.test(answer);
}
