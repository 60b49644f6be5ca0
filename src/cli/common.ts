import type { ConnectOptions } from '../target.js';
import type { OptionSpec, OptionValues } from './args.js';
import type { Io } from './output.js';

/** Options every network command shares. */
export const NETWORK_OPTIONS: OptionSpec[] = [
  {
    name: 'plain-http',
    type: 'boolean',
    description: 'talk plain HTTP to the registry (loopback registries use it without asking)',
  },
  { name: 'use-http', type: 'boolean', description: 'alias of --plain-http (the original tool’s name)' },
  { name: 'insecure', short: 'k', type: 'boolean', description: 'skip TLS certificate verification' },
  { name: 'json', type: 'boolean', description: 'print the result as one JSON object' },
  {
    name: 'verbose',
    short: 'v',
    type: 'boolean',
    description: 'log HTTP requests to stderr (secrets redacted)',
  },
];

export interface Context {
  io: Io;
  signal: AbortSignal;
  env: NodeJS.ProcessEnv;
}

export function flag(options: OptionValues, name: string): boolean {
  return options[name] === true;
}

export function text(options: OptionValues, name: string): string | undefined {
  const value = options[name];
  return typeof value === 'string' ? value : undefined;
}

export function connectOptions(options: OptionValues, ctx: Context): ConnectOptions {
  return {
    plainHttp: flag(options, 'plain-http') || flag(options, 'use-http') ? true : undefined,
    insecure: flag(options, 'insecure'),
    log: flag(options, 'verbose') ? (line: string) => ctx.io.stderr.write(`${line}\n`) : undefined,
  };
}
