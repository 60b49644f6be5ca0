import { Command, CommanderError, Option } from 'commander';
import { VERSION } from '../version.js';
import { addNetworkFlags, type Context } from './common.js';
import { EXIT_OK, EXIT_USAGE, type Io } from './output.js';

/**
 * The command tree. Effects (stdio, environment, cancellation) come in as parameters; commands are
 * loaded lazily so `--version` and `--help` stay fast.
 */

function build(ctx: Context, setVerbose: (v: boolean) => void): Command {
  const program = new Command('wasm-to-oci')
    .description('Store WebAssembly modules in OCI registries and get them back')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
    });

  addNetworkFlags(
    program
      .command('push')
      .description('push a wasm module to a registry (classic wasm-to-oci format)')
      .argument('<file>', 'the .wasm file')
      .argument('<reference>', 'host[:port]/repository[:tag]; the tag defaults to latest')
      .option('--no-cache', 'do not remember digests of large files between pushes'),
  ).action(async (file: string, reference: string, flags) => {
    setVerbose(flags.verbose ?? false);
    const { runPush } = await import('./push.js');
    await runPush(file, reference, flags, ctx);
  });

  addNetworkFlags(
    program
      .command('pull')
      .description('pull a wasm module from a registry into a file')
      .argument('<reference>', 'host[:port]/repository[:tag][@digest]; the tag defaults to latest')
      .option('-o, --out <file>', 'where to write the module', 'module.wasm')
      .addOption(new Option('--layer <digest|title>', 'pick this layer when the artifact has several')),
  ).action(async (reference: string, flags) => {
    setVerbose(flags.verbose ?? false);
    const { runPull } = await import('./pull.js');
    await runPull(reference, flags, ctx);
  });

  return program;
}

export async function main(
  argv: string[],
  io: Io,
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
): Promise<number> {
  let verbose = false;
  const program = build({ io, env, signal }, (v) => {
    verbose = v;
  });
  try {
    if (argv.length === 0) {
      program.outputHelp({ error: true });
      return EXIT_USAGE;
    }
    await program.parseAsync(argv, { from: 'user' });
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT_OK;
      if (err.code === 'commander.help') return EXIT_OK;
      return EXIT_USAGE;
    }
    const { reportError } = await import('./output.js');
    return reportError(io, err, verbose);
  }
}
