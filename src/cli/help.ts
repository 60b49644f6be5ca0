import { type CommandSpec, HELP_OPTION, type OptionSpec } from './args.js';

/**
 * Help text, rendered from the command table. A module of its own (the bundle `help.cjs`), loaded only
 * when help is asked for: the examples below are text no push or pull needs to compile.
 */

/** Examples per command: `# what it does` lines, each followed by the command. */
export const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  push: [
    '# push a module (the tag defaults to latest)',
    'wasm-to-oci push hello.wasm localhost:5000/hello:v1',
    '# the CNCF layout, two tags at once',
    'wasm-to-oci push hello.wasm localhost:5000/hello:v1,latest --format cncf',
    '# into an OCI layout directory, no registry needed',
    'wasm-to-oci push hello.wasm oci:./layout:v1',
    '# signed with a cosign key once pushed',
    'wasm-to-oci push hello.wasm localhost:5000/hello:v1 --sign-key cosign.key',
  ],
  pull: [
    '# pull into hello.wasm',
    'wasm-to-oci pull localhost:5000/hello:v1 -o hello.wasm',
    '# the wasip2 entry of an image index',
    'wasm-to-oci pull ghcr.io/org/app:v1 --platform wasip2/wasm -o app.wasm',
    '# only with a cosign signature by this key',
    'wasm-to-oci pull localhost:5000/hello:v1 --verify-key cosign.pub -o hello.wasm',
  ],
  login: [
    '# prompt for the password on a terminal',
    'wasm-to-oci login localhost:5000 -u alice',
    '# a token from a script',
    'echo "$GITHUB_TOKEN" | wasm-to-oci login ghcr.io -u my-user --password-stdin',
  ],
  logout: ['wasm-to-oci logout ghcr.io'],
  inspect: [
    '# what an artifact is: format, descriptors, imports and exports',
    'wasm-to-oci inspect localhost:5000/hello:v1',
    '# a local file, as JSON',
    'wasm-to-oci inspect hello.wasm --json',
  ],
  run: [
    'wasm-to-oci run localhost:5000/hello:v1',
    '# arguments, an environment variable and a directory for the module',
    'wasm-to-oci run tool.wasm -e LANG=C --dir ./data:/data -- --input /data/in.txt',
  ],
  copy: [
    '# between registries (the whole graph, digests preserved)',
    'wasm-to-oci copy localhost:5000/hello:v1 registry.example.com/hello:v1',
    '# every tag of a repository, but the release candidates',
    "wasm-to-oci copy --all-tags localhost:5000/hello registry.example.com/hello --exclude '*-rc*'",
    '# into a layout directory',
    'wasm-to-oci copy localhost:5000/hello:v1 oci:./backup:v1',
  ],
  tags: ['wasm-to-oci tags localhost:5000/hello', 'wasm-to-oci tags oci:./layout --json'],
  discover: [
    'wasm-to-oci discover localhost:5000/hello:v1',
    '# only the signatures, one level, as JSON',
    'wasm-to-oci discover localhost:5000/hello:v1 --artifact-type application/vnd.dev.sigstore.bundle.v0.3+json --depth 1 --json',
  ],
  'generate-key-pair': [
    '# cosign.key and cosign.pub (the password from COSIGN_PASSWORD, else asked twice)',
    'wasm-to-oci generate-key-pair',
    'COSIGN_PASSWORD=... wasm-to-oci generate-key-pair --output-key-prefix release',
  ],
  sign: [
    '# a Sigstore bundle attached as a referrer, as cosign 3 does',
    'wasm-to-oci sign localhost:5000/hello:v1 --key cosign.key',
    '# the sha256-<hex>.sig tag that cosign 1 and 2 read',
    'wasm-to-oci sign localhost:5000/hello:v1 --key cosign.key --legacy-tag',
  ],
  verify: [
    'wasm-to-oci verify localhost:5000/hello:v1 --key cosign.pub',
    '# every signature found, as JSON',
    'wasm-to-oci verify oci:./layout:v1 --key cosign.pub --json',
  ],
  attach: [
    '# attach an SBOM to what v1 names (a referrer: its subject is that manifest)',
    'wasm-to-oci attach localhost:5000/hello:v1 --artifact-type application/vnd.example.sbom.v1+json sbom.json:application/spdx+json',
    '# two files and an annotation, as JSON',
    'wasm-to-oci attach localhost:5000/hello:v1 --artifact-type application/vnd.example.report.v1 report.txt notes.md:text/markdown -a org.example.by=ci --json',
  ],
  detach: [
    '# remove a referrer that discover shows',
    'wasm-to-oci detach localhost:5000/hello:v1 sha256:<digest of the referrer>',
  ],
  resolve: [
    'wasm-to-oci resolve localhost:5000/hello:v1',
    'wasm-to-oci resolve localhost:5000/hello:v1 --json',
  ],
  tag: ['# add v1.0 and stable to what v1 names', 'wasm-to-oci tag localhost:5000/hello:v1 v1.0 stable'],
  manifest: [
    'wasm-to-oci manifest get localhost:5000/hello:v1 --pretty',
    '# delete without being asked (scripts)',
    'wasm-to-oci manifest delete localhost:5000/hello:old --force',
  ],
  blob: ['wasm-to-oci blob get localhost:5000/hello@sha256:<digest> -o layer.bin'],
  cache: ['wasm-to-oci cache ls', 'wasm-to-oci cache prune --max-size 512'],
  version: ['wasm-to-oci version', 'wasm-to-oci version --json'],
  completion: [
    '# bash: load it now, or keep it in ~/.bashrc',
    'source <(wasm-to-oci completion bash)',
    '# zsh (in ~/.zshrc, after compinit)',
    'source <(wasm-to-oci completion zsh)',
    '# fish',
    'wasm-to-oci completion fish > ~/.config/fish/completions/wasm-to-oci.fish',
  ],
};

function optionLabel(o: OptionSpec): string {
  const long = `--${o.name}${o.type === 'string' ? ` ${o.value ?? '<value>'}` : ''}`;
  return o.short ? `-${o.short}, ${long}` : `    ${long}`;
}

function table(rows: Array<[string, string]>): string {
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)));
  return rows
    .map(([left, right]) =>
      left.length > width
        ? `  ${left}\n  ${' '.repeat(width)}  ${right}`
        : `  ${left.padEnd(width)}  ${right}`,
    )
    .join('\n');
}

export function commandHelp(spec: CommandSpec, examples = EXAMPLES[spec.name]): string {
  const args = spec.arguments
    .map((a) =>
      a.optional ? `[${a.name}${a.variadic ? '...' : ''}]` : `<${a.name}${a.variadic ? '...' : ''}>`,
    )
    .join(' ');
  const parts = [`Usage: wasm-to-oci ${spec.name} [options]${args ? ` ${args}` : ''}`, '', spec.summary];
  if (spec.arguments.length) {
    parts.push('', 'Arguments:', table(spec.arguments.map((a) => [a.name, a.description])));
  }
  const options = [...spec.options, HELP_OPTION].filter((o) => !o.hidden);
  parts.push(
    '',
    'Options:',
    table(
      options.map((o) => [
        optionLabel(o),
        `${o.description}${o.default !== undefined ? ` (default: ${o.default})` : ''}`,
      ]),
    ),
  );
  if (spec.details) parts.push('', spec.details);
  if (examples?.length) parts.push('', 'Examples:', ...examples.map((line) => `  ${line}`));
  return `${parts.join('\n')}\n`;
}

export function programHelp(commands: readonly CommandSpec[], version: string): string {
  return [
    `wasm-to-oci ${version}: store WebAssembly modules in OCI registries and get them back`,
    '',
    'Usage: wasm-to-oci <command> [options]',
    '',
    'Commands:',
    table(commands.map((c) => [c.name, c.summary])),
    '',
    'Options:',
    table([
      ['-V, --version', 'print the version'],
      ['-h, --help', 'show help'],
    ]),
    '',
    'Examples:',
    '  wasm-to-oci push hello.wasm localhost:5000/hello:v1',
    '  wasm-to-oci run localhost:5000/hello:v1',
    '  source <(wasm-to-oci completion bash)',
    '',
    'Run "wasm-to-oci <command> --help" for the options of a command.',
    '',
  ].join('\n');
}
