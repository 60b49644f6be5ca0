import type { Command } from 'commander';
import type { ConnectOptions } from '../target.js';
import type { Io } from './output.js';

/** Flags every network command shares. */
export interface NetworkFlags {
  plainHttp?: boolean;
  useHttp?: boolean;
  insecure?: boolean;
  json?: boolean;
  verbose?: boolean;
}

export function addNetworkFlags(cmd: Command): Command {
  return cmd
    .option('--plain-http', 'talk plain HTTP to the registry (loopback registries use it without asking)')
    .option('--use-http', 'alias of --plain-http (the original tool’s name)')
    .option('-k, --insecure', 'skip TLS certificate verification')
    .option('--json', 'print the result as one JSON object')
    .option('-v, --verbose', 'log HTTP requests to stderr (credentials redacted)');
}

export interface Context {
  io: Io;
  signal: AbortSignal;
  env: NodeJS.ProcessEnv;
}

export function connectOptions(flags: NetworkFlags, ctx: Context): ConnectOptions {
  return {
    plainHttp: flags.plainHttp || flags.useHttp ? true : undefined,
    insecure: flags.insecure,
    log: flags.verbose ? (line: string) => ctx.io.stderr.write(`${line}\n`) : undefined,
  };
}
