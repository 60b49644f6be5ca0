import { VERSION } from '../version.js';
import {
  type CommandSpec,
  commandHelp,
  type OptionValues,
  parseCommand,
  programHelp,
  suggest,
} from './args.js';
import { type Context, LAYOUT_OPTION, NETWORK_OPTIONS } from './common.js';
import { EXIT_OK, EXIT_USAGE, type Io } from './output.js';

/**
 * The command table. Effects (stdio, environment, cancellation) come in as parameters; each command's
 * module is loaded only when that command runs, so `--version` and `--help` stay fast.
 */

interface Command extends CommandSpec {
  run(args: string[], options: OptionValues, ctx: Context): Promise<void>;
}

const COMMANDS: Command[] = [
  {
    name: 'push',
    summary: 'push a wasm module to a registry (the classic wasm-to-oci format)',
    arguments: [
      { name: 'file', description: 'the .wasm file' },
      {
        name: 'reference',
        description: 'host[:port]/repository[:tag] or oci:<dir>[:tag]; the tag defaults to latest',
      },
    ],
    options: [
      {
        name: 'no-cache',
        type: 'boolean',
        description: 'do not remember digests of large files between pushes',
      },
      LAYOUT_OPTION,
      ...NETWORK_OPTIONS,
    ],
    details:
      'Prints "Pushed:", "Size:" (the module) and "Digest:" (the manifest). Blobs the registry already\n' +
      'has are not sent again; the tag moves only once everything it points at is stored.',
    run: async (args, options, ctx) => (await import('./push.js')).runPush(args, options, ctx),
  },
  {
    name: 'pull',
    summary: 'pull a wasm module from a registry into a file',
    arguments: [
      { name: 'reference', description: 'host[:port]/repository[:tag][@digest] or oci:<dir>[:tag][@digest]' },
    ],
    options: [
      {
        name: 'out',
        short: 'o',
        type: 'string',
        value: '<file>',
        default: 'module.wasm',
        description: 'where to write the module',
      },
      {
        name: 'layer',
        type: 'string',
        value: '<digest|title>',
        description: 'pick this layer when there are several',
      },
      LAYOUT_OPTION,
      ...NETWORK_OPTIONS,
    ],
    details:
      'Prints "Pulled:", "Size:" and "Digest:" (the module). The file appears only once its digest and\n' +
      'size are verified; a failed pull leaves no file and an existing one untouched.',
    run: async (args, options, ctx) => (await import('./pull.js')).runPull(args, options, ctx),
  },
  {
    name: 'login',
    summary: 'check credentials against a registry and store them where Docker does',
    arguments: [{ name: 'registry', description: 'host[:port], for example ghcr.io or localhost:5000' }],
    options: NETWORK_OPTIONS,
    details:
      'Prompts on a terminal; otherwise pass the secret with --password-stdin. The credentials are\n' +
      'checked against the registry first, then stored in the configured credential helper (credHelpers,\n' +
      'credsStore) or in the Docker config file (mode 0600). Secrets are never printed.',
    run: async (args, options, ctx) => (await import('./login.js')).runLogin(args, options, ctx),
  },
  {
    name: 'logout',
    summary: 'remove stored credentials for a registry',
    arguments: [{ name: 'registry', description: 'host[:port]' }],
    options: NETWORK_OPTIONS.filter((o) => o.name === 'registry-config' || o.name === 'json'),
    run: async (args, options, ctx) => (await import('./login.js')).runLogout(args, options, ctx),
  },
];

export async function main(
  argv: string[],
  io: Io,
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
): Promise<number> {
  const [first, ...rest] = argv;
  let verbose = false;
  try {
    if (first === undefined) {
      io.stderr.write(programHelp(COMMANDS, VERSION));
      return EXIT_USAGE;
    }
    if (first === '-V' || first === '--version') {
      io.stdout.write(`${VERSION}\n`);
      return EXIT_OK;
    }
    if (first === '-h' || first === '--help') {
      io.stdout.write(programHelp(COMMANDS, VERSION));
      return EXIT_OK;
    }
    const name = first === 'help' ? rest[0] : first;
    const command = COMMANDS.find((c) => c.name === name);
    if (first === 'help') {
      io.stdout.write(command ? commandHelp(command) : programHelp(COMMANDS, VERSION));
      return EXIT_OK;
    }
    if (!command) {
      const near = suggest(
        first,
        COMMANDS.map((c) => c.name),
      );
      const { WasmOciError } = await import('../errors.js');
      throw new WasmOciError('USAGE', `unknown command '${first}'${near ? ` (did you mean ${near}?)` : ''}`, {
        hint: 'see: wasm-to-oci --help',
      });
    }
    const parsed = parseCommand(command, rest);
    if (parsed.options.help) {
      io.stdout.write(commandHelp(command));
      return EXIT_OK;
    }
    verbose = parsed.options.verbose === true;
    await command.run(parsed.args, parsed.options, { io, env, signal });
    return EXIT_OK;
  } catch (err) {
    const { reportError } = await import('./output.js');
    return reportError(io, err, verbose);
  }
}
