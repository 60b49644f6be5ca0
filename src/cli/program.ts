import { DEFAULT_CONCURRENCY } from '../content/defaults.js';
import { VERSION } from '../version.js';
import { type CommandSpec, type OptionSpec, type OptionValues, parseCommand, suggest } from './args.js';
import {
  COPY_NETWORK_OPTIONS,
  type CommandLoader,
  type Context,
  JSON_OPTION,
  LAYOUT_OPTION,
  NETWORK_OPTIONS,
  PROGRESS_OPTIONS,
  TRUST_OPTIONS,
} from './common.js';
import { EXIT_OK, EXIT_USAGE, type Io } from './output.js';

/**
 * The command table. Effects (stdio, environment, cancellation) come in as parameters; each command's
 * module is loaded only when that command runs, so `--version` and `--help` stay fast.
 */

interface Command extends CommandSpec {
  /** Resolves to the exit code, or nothing for success. */
  run(args: string[], options: OptionValues, ctx: Context): Promise<number | undefined | void>;
}

const SELECT_OPTIONS: OptionSpec[] = [
  {
    name: 'platform',
    type: 'string',
    value: '<os/arch>',
    description: 'for an image index: the entry for this platform (e.g. wasip1/wasm)',
  },
  {
    name: 'layer',
    type: 'string',
    value: '<digest|title>',
    description: 'pick this layer when there are several',
  },
  { name: 'no-cache', type: 'boolean', description: 'neither read nor fill the local blob cache' },
  LAYOUT_OPTION,
];

/** sign and verify take `--key` for the cosign key: the TLS client certificate options are not offered. */
const COSIGN_NETWORK_OPTIONS = NETWORK_OPTIONS.filter((o) => o.name !== 'key' && o.name !== 'cert');
/** `-a k=v` and `--annotation-file`: manifest annotations (push, attach). */
const ANNOTATION_OPTIONS: OptionSpec[] = [
  {
    name: 'annotation',
    short: 'a',
    type: 'string',
    multiple: true,
    value: '<k=v>',
    description: 'manifest annotation (repeatable)',
  },
  {
    name: 'annotation-file',
    type: 'string',
    value: '<json>',
    description: 'manifest annotations from a JSON map',
  },
];

const COMMANDS: Command[] = [
  {
    name: 'push',
    summary: 'push a wasm module to a registry (the classic wasm-to-oci format)',
    arguments: [
      { name: 'file', description: 'the .wasm file, or - for standard input' },
      {
        name: 'reference',
        description: 'host[:port]/repository[:tag] or oci:<dir>[:tag]; the tag defaults to latest',
      },
    ],
    options: [
      {
        name: 'format',
        type: 'string',
        value: '<classic|cncf>',
        choices: ['classic', 'cncf'],
        description: 'artifact format (default: $WASM_TO_OCI_FORMAT, else classic)',
      },
      {
        name: 'tag',
        type: 'string',
        multiple: true,
        value: '<tag>',
        description: 'another tag (repeatable; or ref:t1,t2)',
      },
      {
        name: 'title',
        type: 'string',
        value: '<name>',
        description: 'the layer title annotation (default: the path as typed)',
      },
      ...ANNOTATION_OPTIONS,
      {
        name: 'artifact-type',
        type: 'string',
        value: '<type>',
        description: 'set the manifest artifactType',
      },
      {
        name: 'created',
        type: 'string',
        value: '<rfc3339>',
        description: 'cncf: creation time (else SOURCE_DATE_EPOCH, else now)',
      },
      { name: 'author', type: 'string', value: '<name>', description: 'cncf: the config author' },
      {
        name: 'target-world',
        type: 'string',
        value: '<world>',
        description: 'cncf: component.target (the WIT world)',
      },
      {
        name: 'no-cache',
        type: 'boolean',
        description: 'do not remember digests of large files between pushes',
      },
      {
        name: 'sign',
        type: 'boolean',
        description: 'sign the module with Notary v1 (a target per tag on the trust server)',
      },
      ...TRUST_OPTIONS,
      {
        name: 'sign-key',
        type: 'string',
        value: '<cosign.key>',
        description: 'sign the pushed manifest with this cosign key (a Sigstore bundle referrer)',
      },
      LAYOUT_OPTION,
      ...NETWORK_OPTIONS,
      ...PROGRESS_OPTIONS,
    ],
    details:
      'Prints "Pushed:", "Size:" (the module) and "Digest:" (the manifest). Blobs the registry already\n' +
      'has are not sent again; the tag moves only once everything it points at is stored. With --sign\n' +
      'the trust data is checked and the keys unlocked before the push (passphrases from\n' +
      'SIGNY_ROOT_PASSPHRASE, SIGNY_TARGETS_PASSPHRASE, SIGNY_SNAPSHOT_PASSPHRASE, else a prompt), then\n' +
      'the module is signed as the target named after the tag in the collection <registry>/<repository>.\n' +
      'With --sign-key the key is decrypted first (COSIGN_PASSWORD, else a prompt), and the manifest is\n' +
      'signed as `sign` does once it is pushed.',
    run: async (args, options, ctx) => (await ctx.load('push')).runPush(args, options, ctx),
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
        description: 'where to write the module (- for stdout, once verified; not with --json)',
      },
      {
        name: 'force',
        type: 'boolean',
        description: 'with --out -: write the module to standard output even when it is a terminal',
      },
      {
        name: 'layer',
        type: 'string',
        value: '<digest|title>',
        description: 'pick this layer when there are several',
      },
      { name: 'no-cache', type: 'boolean', description: 'neither read nor fill the local blob cache' },
      {
        name: 'platform',
        type: 'string',
        value: '<os/arch>',
        description: 'for an image index: the entry for this platform (e.g. wasip1/wasm)',
      },
      {
        name: 'sign',
        type: 'boolean',
        description: "accept the module only if its Notary v1 signature (the tag's target) vouches for it",
      },
      { name: 'verify', type: 'boolean', description: 'alias of --sign' },
      {
        name: 'verify-key',
        type: 'string',
        value: '<cosign.pub>',
        description: 'accept the module only with a cosign signature that verifies with this public key',
      },
      ...TRUST_OPTIONS,
      LAYOUT_OPTION,
      ...NETWORK_OPTIONS,
      ...PROGRESS_OPTIONS,
    ],
    details:
      'Prints "Pulled:", "Size:" and "Digest:" (the module). The file appears only once its digest and\n' +
      'size are verified; a failed pull leaves no file and an existing one untouched. With --sign the\n' +
      'trust data is verified first (root pinned in the trust directory on first use) and the module\n' +
      'must have the signed length, SHA-256 and SHA-512. With --verify-key the manifest must have a\n' +
      'cosign signature by that key (a bundle referrer or the .sig tag), checked before any download.',
    run: async (args, options, ctx) => (await ctx.load('pull')).runPull(args, options, ctx),
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
    run: async (args, options, ctx) => (await ctx.load('login')).runLogin(args, options, ctx),
  },
  {
    name: 'logout',
    summary: 'remove stored credentials for a registry',
    arguments: [{ name: 'registry', description: 'host[:port]' }],
    options: NETWORK_OPTIONS.filter((o) => o.name === 'registry-config' || o.name === 'json'),
    run: async (args, options, ctx) => (await ctx.load('login')).runLogout(args, options, ctx),
  },
  {
    name: 'inspect',
    summary:
      'show an artifact (format, descriptors, annotations) or a local .wasm file, with imports and exports',
    arguments: [{ name: 'subject', description: 'a reference, oci:<dir>[:tag], or a local .wasm file' }],
    options: [...SELECT_OPTIONS, ...NETWORK_OPTIONS],
    details:
      '--json prints {reference, format, manifest, config, configJson, annotations, layers, layer, wasm}\n' +
      'for an artifact and {file, size, digest, wasm} for a file; wasm is {kind, version, imports, exports}.',
    run: async (args, options, ctx) => (await ctx.load('wasm')).runInspect(args, options, ctx),
  },
  {
    name: 'run',
    summary: 'run a WASI command module (pulled and verified, or a local file) with node:wasi',
    arguments: [
      { name: 'subject', description: 'a reference, oci:<dir>[:tag], or a local .wasm file' },
      { name: 'args', description: 'arguments for the module, after --', optional: true, variadic: true },
    ],
    options: [
      {
        name: 'dir',
        type: 'string',
        multiple: true,
        value: '<host[:guest]>',
        description:
          'preopen a directory (repeatable; one holding a link out of it is refused); run is no sandbox: see SECURITY.md',
      },
      {
        name: 'env',
        short: 'e',
        type: 'string',
        multiple: true,
        value: '<K=V>',
        description: 'an environment variable for the module (repeatable)',
      },
      ...SELECT_OPTIONS,
      ...NETWORK_OPTIONS,
      ...PROGRESS_OPTIONS,
    ],
    details:
      'WASI preview1 and wasi_unstable modules; stdin, stdout and stderr are passed through and the\n' +
      "module's exit code becomes wasm-to-oci's. Components need a component runtime (wasmtime, jco).\n" +
      "With --json the module's stdout goes to stderr and stdout gets {reference, manifest, layer, exitCode}.",
    run: async (args, options, ctx) => (await ctx.load('wasm')).runRun(args, options, ctx),
  },
  {
    name: 'copy',
    summary: 'copy an artifact between registries and layouts (the whole graph, digests preserved)',
    arguments: [
      { name: 'source', description: 'host/repo[:tag][@digest] or oci:<dir>[:tag][@digest]' },
      {
        name: 'destination',
        description: 'host/repo[:tag[,tag...]] or oci:<dir>[:tag]; the source tag by default',
      },
    ],
    options: [
      {
        name: 'from-oci-layout',
        type: 'boolean',
        description: 'the source is a layout directory (same as oci:)',
      },
      {
        name: 'to-oci-layout',
        type: 'boolean',
        description: 'the destination is a layout directory (same as oci:)',
      },
      {
        name: 'recursive',
        short: 'r',
        type: 'boolean',
        description: 'also copy artifacts that refer to it (signatures)',
      },
      {
        name: 'all-tags',
        type: 'boolean',
        description: 'copy every tag of the source repository (source and destination without a tag)',
      },
      {
        name: 'include',
        type: 'string',
        multiple: true,
        value: '<glob>',
        description: 'with --all-tags: only the tags matching this shell glob (repeatable)',
      },
      {
        name: 'exclude',
        type: 'string',
        multiple: true,
        value: '<glob>',
        description: 'with --all-tags: not the tags matching this shell glob (repeatable)',
      },
      {
        name: 'concurrency',
        type: 'string',
        value: '<n>',
        default: String(DEFAULT_CONCURRENCY),
        description: 'blob transfers at once (with --all-tags: tags and requests at once)',
      },
      ...COPY_NETWORK_OPTIONS,
      ...PROGRESS_OPTIONS,
    ],
    details:
      'Skips what the destination has, mounts blobs across repositories of one registry, streams between\n' +
      'registries without temporary files. The destination tag moves only once everything is copied.\n' +
      'With --all-tags: one line per tag (Copied, Skipped when the destination has it on the same\n' +
      'manifest, Failed) and a summary; a failed tag does not stop the others, and the exit code is 1.\n' +
      'Globs: * ? [a-z] [!x]; --include keeps the tags matching any of them, --exclude then drops some.\n' +
      '--json prints {source, destination, tags: [{tag, manifest, bytesSent, skipped}], bytesSent, failed}.',
    run: async (args, options, ctx) => (await ctx.load('manage')).runCopy(args, options, ctx),
  },
  {
    name: 'tags',
    summary: 'list the tags of a repository or layout',
    arguments: [{ name: 'repository', description: 'host/repository or oci:<dir>' }],
    options: [LAYOUT_OPTION, ...NETWORK_OPTIONS],
    run: async (args, options, ctx) => (await ctx.load('manage')).runTags(args, options, ctx),
  },
  {
    name: 'discover',
    summary: 'show the artifacts that refer to a manifest (signatures, SBOMs...) as a tree',
    arguments: [{ name: 'reference', description: 'host/repo[:tag][@digest] or oci:<dir>[:tag]' }],
    options: [
      {
        name: 'artifact-type',
        type: 'string',
        value: '<type>',
        description: 'only referrers of this artifact type (first level)',
      },
      { name: 'depth', type: 'string', value: '<n>', description: 'levels to follow (default: all)' },
      LAYOUT_OPTION,
      ...NETWORK_OPTIONS,
    ],
    run: async (args, options, ctx) => (await ctx.load('manage')).runDiscover(args, options, ctx),
  },
  {
    name: 'attach',
    summary: 'attach files (an SBOM, a signature...) to a manifest as a referrer (OCI 1.1 subject)',
    arguments: [
      { name: 'reference', description: 'the subject: host/repo[:tag][@digest] or oci:<dir>[:tag]' },
      {
        name: 'file',
        description: 'a file to attach, as file[:mediaType] (default application/octet-stream)',
        optional: true,
        variadic: true,
      },
    ],
    options: [
      {
        name: 'artifact-type',
        type: 'string',
        value: '<type>',
        description: 'the artifactType of the attached artifact (required)',
      },
      ...ANNOTATION_OPTIONS,
      LAYOUT_OPTION,
      ...NETWORK_OPTIONS,
      ...PROGRESS_OPTIONS,
    ],
    details:
      'Pushes an image manifest whose subject is the manifest <reference> names, with the empty config\n' +
      'and one layer per file (titled by its base name). Prints "Attached:" (the referrer, by digest) and\n' +
      '"Digest:". A registry without the referrers API (no OCI-Subject answer) and a layout get the\n' +
      "subject's sha256-<hex> index updated: read, changed, written, read back, retried when raced.",
    run: async (args, options, ctx) => (await ctx.load('manage')).runAttach(args, options, ctx),
  },
  {
    name: 'detach',
    summary: 'remove a referrer of a manifest (from its sha256-<hex> index, then the manifest itself)',
    arguments: [
      { name: 'reference', description: 'the subject: host/repo[:tag][@digest] or oci:<dir>[:tag]' },
      { name: 'referrer', description: 'the digest of the referrer, as discover shows it' },
    ],
    options: [LAYOUT_OPTION, ...NETWORK_OPTIONS],
    details: 'The registry must allow deletes (Distribution: storage.delete.enabled).',
    run: async (args, options, ctx) => (await ctx.load('manage')).runDetach(args, options, ctx),
  },
  {
    name: 'generate-key-pair',
    summary: 'write a cosign key pair: cosign.key (ECDSA P-256, encrypted) and cosign.pub',
    arguments: [],
    options: [
      {
        name: 'output-key-prefix',
        type: 'string',
        value: '<prefix>',
        default: 'cosign',
        description: 'write <prefix>.key and <prefix>.pub',
      },
      { name: 'force', short: 'f', type: 'boolean', description: 'replace existing key files' },
      JSON_OPTION,
    ],
    details:
      'The password comes from COSIGN_PASSWORD (empty for none), else a prompt (asked twice). The files\n' +
      'are the ones cosign writes and reads: cosign.key (0600, scrypt + NaCl secretbox) and cosign.pub.',
    run: async (args, options, ctx) => (await ctx.load('cosign')).runGenerateKeyPair(args, options, ctx),
  },
  {
    name: 'sign',
    summary: 'sign a manifest with a cosign key (a Sigstore bundle referrer, or the cosign 1/2 .sig tag)',
    arguments: [{ name: 'reference', description: 'host/repo[:tag][@digest] or oci:<dir>[:tag]' }],
    options: [
      { name: 'key', type: 'string', value: '<cosign.key>', description: 'the private key (required)' },
      {
        name: 'legacy-tag',
        type: 'boolean',
        description: 'write the signature as cosign 1 and 2 do: a layer of the sha256-<hex>.sig tag',
      },
      LAYOUT_OPTION,
      ...COSIGN_NETWORK_OPTIONS,
    ],
    details:
      'A tag is resolved once; its digest is what is signed. By default the signature is a Sigstore bundle\n' +
      '(DSSE, in-toto statement, predicate https://sigstore.dev/cosign/sign/v1) attached as an OCI 1.1\n' +
      'referrer, listed in the sha256-<hex> index where the registry has no referrers API. No\n' +
      'transparency log entry is made: cosign verifies it with --insecure-ignore-tlog.',
    run: async (args, options, ctx) => (await ctx.load('cosign')).runSign(args, options, ctx),
  },
  {
    name: 'verify',
    summary: 'verify the cosign signatures of a manifest with a public key',
    arguments: [{ name: 'reference', description: 'host/repo[:tag][@digest] or oci:<dir>[:tag]' }],
    options: [
      { name: 'key', type: 'string', value: '<cosign.pub>', description: 'the public key (required)' },
      LAYOUT_OPTION,
      ...COSIGN_NETWORK_OPTIONS,
    ],
    details:
      'Reads both kinds: bundle referrers (referrers API or the sha256-<hex> index) and the layers of the\n' +
      'sha256-<hex>.sig tag. Prints each signature found; exits 1 when none verifies with the key.',
    run: async (args, options, ctx) => (await ctx.load('cosign')).runVerify(args, options, ctx),
  },
  {
    name: 'resolve',
    summary: 'print the digest a reference names',
    arguments: [{ name: 'reference', description: 'host/repo[:tag] or oci:<dir>[:tag]' }],
    options: [LAYOUT_OPTION, ...NETWORK_OPTIONS],
    run: async (args, options, ctx) => (await ctx.load('manage')).runResolve(args, options, ctx),
  },
  {
    name: 'tag',
    summary: 'add tags to what a reference names, without uploading anything',
    arguments: [
      { name: 'reference', description: 'host/repo[:tag][@digest] or oci:<dir>[:tag]' },
      { name: 'tag', description: 'the new tags', variadic: true },
    ],
    options: [LAYOUT_OPTION, ...NETWORK_OPTIONS],
    run: async (args, options, ctx) => (await ctx.load('manage')).runTag(args, options, ctx),
  },
  {
    name: 'manifest',
    summary: 'get (raw bytes, --pretty, --descriptor) or delete a manifest',
    arguments: [
      { name: 'action', description: 'get or delete', choices: ['get', 'delete'] },
      { name: 'reference', description: 'host/repo[:tag][@digest] or oci:<dir>[:tag][@digest]' },
    ],
    options: [
      { name: 'pretty', type: 'boolean', description: 'get: indent the JSON' },
      { name: 'descriptor', type: 'boolean', description: 'get: print the manifest’s descriptor instead' },
      {
        name: 'force',
        short: 'f',
        type: 'boolean',
        description: 'delete: do not ask for confirmation (needed when stdin is not a terminal)',
      },
      LAYOUT_OPTION,
      ...NETWORK_OPTIONS,
    ],
    details:
      'delete removes by digest; a tag is resolved first and the manifest goes with all its tags. It asks\n' +
      'for confirmation on a terminal (answer y); elsewhere it needs --force. Declined, it exits 1.',
    run: async (args, options, ctx) => (await ctx.load('manage')).runManifest(args, options, ctx),
  },
  {
    name: 'blob',
    summary: 'download one blob by digest into a file, verified',
    arguments: [
      { name: 'action', description: 'get', choices: ['get'] },
      { name: 'reference', description: 'host/repo@sha256:<digest> or oci:<dir>@sha256:<digest>' },
    ],
    options: [
      { name: 'out', short: 'o', type: 'string', value: '<file>', description: 'where to write the blob' },
      LAYOUT_OPTION,
      ...NETWORK_OPTIONS,
      ...PROGRESS_OPTIONS,
    ],
    run: async (args, options, ctx) => (await ctx.load('manage')).runBlob(args, options, ctx),
  },
  {
    name: 'cache',
    summary: 'list (ls) or prune the local blob cache',
    arguments: [{ name: 'action', description: 'ls or prune', choices: ['ls', 'prune'] }],
    options: [
      { name: 'max-size', type: 'string', value: '<MiB>', description: 'prune: down to this size' },
      { name: 'all', type: 'boolean', description: 'prune: remove everything' },
      JSON_OPTION,
    ],
    details:
      'The cache is an OCI layout in $XDG_CACHE_HOME/wasm-to-oci/oci (else ~/.cache/...), bounded by\n' +
      'WASM_TO_OCI_CACHE_MAX_MB (default 2048) with least-recently-used pruning.',
    run: async (args, options, ctx) => (await ctx.load('manage')).runCache(args, options, ctx),
  },
  {
    name: 'version',
    summary: 'print the version (of wasm-to-oci and of Node.js)',
    arguments: [],
    options: [JSON_OPTION],
    details: '--json prints {"version", "node"}; `wasm-to-oci --version` prints the version alone.',
    run: async (_args, options, ctx) => {
      const node = process.versions.node;
      ctx.io.stdout.write(
        options.json
          ? `${JSON.stringify({ version: VERSION, node })}\n`
          : `wasm-to-oci ${VERSION}\nnode ${node}\n`,
      );
    },
  },
  {
    name: 'completion',
    summary: 'print a shell completion script (bash, zsh or fish)',
    arguments: [{ name: 'shell', description: 'bash, zsh or fish', choices: ['bash', 'zsh', 'fish'] }],
    options: [JSON_OPTION],
    details:
      'The script completes commands, options, actions and option values, from this command table.\n' +
      '--json prints {"shell", "script"}.',
    run: async (args, options, ctx) =>
      (await ctx.load('completion')).runCompletion(args, ctx, COMMANDS, options.json === true),
  },
];

/** Loads a command module: an ES module import by default; the bundled CLI passes its own loader. */
const importCommand: CommandLoader = async (name) => {
  const modules = {
    push: () => import('./push.js'),
    pull: () => import('./pull.js'),
    login: () => import('./login.js'),
    wasm: () => import('./wasm.js'),
    manage: () => import('./manage.js'),
    help: () => import('./help.js'),
    completion: () => import('./completion.js'),
    cosign: () => import('./cosign.js'),
  };
  return (await modules[name]()) as never;
};

export async function main(
  argv: string[],
  io: Io,
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
  load: CommandLoader = importCommand,
): Promise<number> {
  const [first, ...rest] = argv;
  let verbose = false;
  // With --json, errors are JSON too, even those found while the command line is read.
  const dashes = rest.indexOf('--');
  let json = (dashes === -1 ? rest : rest.slice(0, dashes)).includes('--json');
  try {
    if (first === undefined) {
      const { programHelp } = await load('help');
      io.stderr.write(programHelp(COMMANDS, VERSION));
      return EXIT_USAGE;
    }
    if (first === '-V' || first === '--version') {
      io.stdout.write(`${VERSION}\n`);
      return EXIT_OK;
    }
    if (first === '-h' || first === '--help' || (first === 'help' && rest.length === 0)) {
      const { programHelp } = await load('help');
      io.stdout.write(programHelp(COMMANDS, VERSION));
      return EXIT_OK;
    }
    const name = first === 'help' ? (rest[0] as string) : first;
    const command = COMMANDS.find((c) => c.name === name);
    if (!command) {
      const near = suggest(
        name,
        COMMANDS.map((c) => c.name),
      );
      const { WasmOciError } = await import('../errors.js');
      throw new WasmOciError('USAGE', `unknown command '${name}'`, {
        hint: near
          ? `did you mean ${near}? (see: wasm-to-oci ${near} --help)`
          : 'see: wasm-to-oci --help for the commands',
      });
    }
    if (first === 'help') {
      const { commandHelp } = await load('help');
      io.stdout.write(commandHelp(command));
      return EXIT_OK;
    }
    const parsed = parseCommand(command, rest);
    if (parsed.options.help) {
      const { commandHelp } = await load('help');
      io.stdout.write(commandHelp(command));
      return EXIT_OK;
    }
    // --debug is --verbose under the name other tools give it.
    if (parsed.options.debug === true) parsed.options.verbose = true;
    verbose = parsed.options.verbose === true;
    json = parsed.options.json === true;
    const { cacheWarning, loadRegistryMemory } = await import('./registry-memory.js');
    const ctx: Context = { io, env, signal, load, warned: new Set() };
    // Told once, with the digest and blob caches' warning (the same directory).
    const registries = loadRegistryMemory(env, cacheWarning(ctx));
    ctx.memory = registries.memory;
    try {
      return (await command.run(parsed.args, parsed.options, ctx)) ?? EXIT_OK;
    } finally {
      registries.save();
    }
  } catch (err) {
    const { reportError } = await import('./output.js');
    const { refineError } = await import('./hints.js');
    return reportError(io, await refineError(err), verbose, json);
  }
}
