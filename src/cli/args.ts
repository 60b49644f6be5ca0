import { parseArgs } from 'node:util';
import { WasmOciError } from '../errors.js';

/**
 * Declarative commands over node:util's parseArgs. Commander did this well but cost ~22 ms of every
 * run just to load (measured here); parseArgs is built in and free, and help is rendered from the
 * same specs that drive parsing, so the two cannot drift apart.
 */

export interface OptionSpec {
  /** Long name without dashes: `out`, `plain-http`. */
  name: string;
  short?: string;
  type: 'boolean' | 'string';
  multiple?: boolean;
  default?: string;
  /** Placeholder for the value in help: `<file>`. */
  value?: string;
  description: string;
  /** Parsed but not listed in help (accepted only to be refused with a better message). */
  hidden?: boolean;
  /** The values it takes, when they are a fixed set (shell completion offers them). */
  choices?: readonly string[];
}

export interface ArgumentSpec {
  name: string;
  description: string;
  optional?: boolean;
  /** Takes all remaining positionals. */
  variadic?: boolean;
  /** The words it takes, when they are a fixed set (an action: get, delete); completion offers them. */
  choices?: readonly string[];
}

export interface CommandSpec {
  name: string;
  summary: string;
  arguments: ArgumentSpec[];
  options: OptionSpec[];
  /** Extra help text shown after the options. */
  details?: string;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface ParsedCommand {
  args: string[];
  options: OptionValues;
}

export const HELP_OPTION: OptionSpec = {
  name: 'help',
  short: 'h',
  type: 'boolean',
  description: 'show help',
};

function usage(message: string, command?: string): WasmOciError {
  return new WasmOciError('USAGE', message, {
    hint: command ? `see: wasm-to-oci ${command} --help` : 'see: wasm-to-oci --help',
  });
}

/** Edit distance, for "did you mean" suggestions. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(current + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = current;
    }
  }
  return row[b.length] as number;
}

export function suggest(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = distance(input, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(input.length / 3)) ? best : undefined;
}

/** Parses a command's argv (after the command name) against its spec; usage errors are WasmOciError USAGE. */
export function parseCommand(spec: CommandSpec, argv: string[]): ParsedCommand {
  const options = [...spec.options, HELP_OPTION];
  const config: NonNullable<Parameters<typeof parseArgs>[0]>['options'] = {};
  for (const o of options) {
    config[o.name] = {
      type: o.type,
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options: config, allowPositionals: true, strict: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const name = /'([^']+)'/.exec(e.message)?.[1] ?? '';
      const near = suggest(
        name.replace(/^-+/, ''),
        options.map((o) => o.name),
      );
      throw usage(`unknown option '${name}'${near ? ` (did you mean --${near}?)` : ''}`, spec.name);
    }
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      throw usage(e.message.replace(/\s+To specify.*$/s, ''), spec.name);
    }
    throw usage(e.message, spec.name);
  }
  const values = parsed.values as OptionValues;
  if (values.help) return { args: [], options: values };
  for (const o of options) {
    if (values[o.name] === undefined && o.default !== undefined) values[o.name] = o.default;
  }
  const positionals = parsed.positionals;
  const required = spec.arguments.filter((a) => !a.optional).length;
  const variadic = spec.arguments.some((a) => a.variadic);
  if (positionals.length < required) {
    throw usage(`missing required argument '${spec.arguments[positionals.length]?.name}'`, spec.name);
  }
  if (!variadic && positionals.length > spec.arguments.length) {
    throw usage(`too many arguments: '${positionals.slice(spec.arguments.length).join(' ')}'`, spec.name);
  }
  return { args: positionals, options: values };
}
