import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { CLI } from './cli.js';

/**
 * Runs the built CLI on a real pseudo-terminal, under script(1) (util-linux), as a user at a terminal
 * would: stdin, stdout and stderr are the terminal, of `columns` columns. `steps` are typed in order,
 * each once the output so far matches its `after` (so a slow machine cannot type before a prompt).
 * script's typescript file goes into `dir` (the test's own directory).
 */
export interface TerminalStep {
  after: RegExp;
  type: string;
}

export interface TerminalResult {
  code: number | null;
  /** Everything the terminal showed (stdout and stderr together, with the terminal's CR LF). */
  output: string;
}

const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

export function runInTerminal(
  args: string[],
  options: {
    dir: string;
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    steps?: TerminalStep[];
    columns?: number;
    timeoutMs?: number;
  },
): Promise<TerminalResult> {
  const command = [
    `stty cols ${options.columns ?? 100} rows 40`,
    `exec ${[process.execPath, CLI, ...args].map(quote).join(' ')}`,
  ].join('; ');
  return new Promise((resolve, reject) => {
    const child = spawn(
      'script',
      ['-qefc', command, join(options.dir, `typescript-${process.hrtime.bigint()}`)],
      {
        cwd: options.cwd ?? options.dir,
        env: { ...process.env, ...options.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    const steps = [...(options.steps ?? [])];
    let output = '';
    let typedAt = 0;
    const next = () => {
      const step = steps[0];
      if (step && step.after.test(output.slice(typedAt))) {
        steps.shift();
        typedAt = output.length;
        // A moment for the program to switch the terminal to raw mode after printing the prompt.
        setTimeout(() => {
          child.stdin.write(step.type);
          next();
        }, 150);
      }
    };
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      next();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`terminal run timed out: ${args.join(' ')}\n${output}`));
    }, options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      // stdin stays open until the end: script ends the session when its input ends.
      child.stdin.destroy();
      resolve({ code, output });
    });
  });
}
