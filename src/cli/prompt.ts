import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import type { Io } from './output.js';

/**
 * Asks a question on the terminal (stdin/stderr); with `secret`, what is typed is not echoed. Only used
 * when stdin is a TTY: scripts pass secrets with --password-stdin.
 */
export async function ask(io: Io, question: string, secret = false): Promise<string> {
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
  try {
    return await new Promise<string>((resolve) => {
      rl.question(question, (answer) => resolve(answer));
      muted = secret;
    });
  } finally {
    rl.close();
    if (secret) io.stderr.write('\n');
  }
}
