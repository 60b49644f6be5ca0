import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import type { ConnectOptions, RegistryMemory } from '../ops/target.js';
import type { OptionSpec, OptionValues } from './args.js';
import type { Io } from './output.js';

/** `--oci-layout`: the reference is an OCI image-layout directory (`<dir>[:tag][@digest]`). */
export const LAYOUT_OPTION: OptionSpec = {
  name: 'oci-layout',
  type: 'boolean',
  description: 'the reference is an OCI image-layout directory <dir>[:tag] (same as the prefix oci:)',
};

/** `--json`: every command takes it. */
export const JSON_OPTION: OptionSpec = {
  name: 'json',
  type: 'boolean',
  description: 'print the result as one JSON object (errors too, on stderr)',
};

/** Options every command that talks to a registry shares. */
export const NETWORK_OPTIONS: OptionSpec[] = [
  { name: 'username', short: 'u', type: 'string', value: '<name>', description: 'registry user name' },
  { name: 'password-stdin', type: 'boolean', description: 'read the password (or token) from stdin' },
  {
    name: 'password',
    short: 'p',
    type: 'string',
    value: '<secret>',
    description: 'registry password (visible to other users: prefer --password-stdin)',
  },
  {
    name: 'registry-config',
    type: 'string',
    value: '<file>',
    description:
      'Docker config file with credentials (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json)',
  },
  {
    name: 'timeout',
    type: 'string',
    value: '<seconds>',
    description:
      'give up on an answer or a stalled transfer after this long (default 60; WASM_TO_OCI_TIMEOUT)',
  },
  {
    name: 'plain-http',
    type: 'boolean',
    description: 'talk plain HTTP to the registry (loopback registries fall back to it on their own)',
  },
  { name: 'use-http', type: 'boolean', description: 'alias of --plain-http (the original tool’s name)' },
  { name: 'insecure', short: 'k', type: 'boolean', description: 'skip TLS certificate verification' },
  {
    name: 'ca-file',
    type: 'string',
    multiple: true,
    value: '<pem>',
    description:
      'trust this CA certificate too (repeatable; SSL_CERT_FILE and NODE_EXTRA_CA_CERTS are read too)',
  },
  { name: 'cert', type: 'string', value: '<pem>', description: 'client certificate for mutual TLS' },
  { name: 'key', type: 'string', value: '<pem>', description: 'private key of the client certificate' },
  {
    name: 'header',
    short: 'H',
    type: 'string',
    multiple: true,
    value: '<name:value>',
    description:
      'send this header to the registry (repeatable; not Authorization, Host or the framing headers)',
  },
  JSON_OPTION,
  {
    name: 'verbose',
    short: 'v',
    type: 'boolean',
    description: 'log HTTP requests to stderr (secrets redacted)',
  },
  { name: 'debug', type: 'boolean', description: 'alias of --verbose' },
];

/** Options of the commands that move blobs (push, pull, copy, blob get, run). */
export const PROGRESS_OPTIONS: OptionSpec[] = [
  {
    name: 'quiet',
    short: 'q',
    type: 'boolean',
    description: 'no progress and no notes on stderr: only the result (and errors)',
  },
  { name: 'no-progress', type: 'boolean', description: 'no progress bar (it is drawn only on a terminal)' },
];

const CREDENTIAL_NAMES = new Set(['username', 'password', 'password-stdin', 'registry-config']);

/**
 * `copy`'s options: the network options with credentials per side (`--from-*`, `--to-*`, as oras
 * names them); the bare credential options are parsed only to be refused with a hint.
 */
export const COPY_NETWORK_OPTIONS: OptionSpec[] = [
  ...NETWORK_OPTIONS.flatMap((o): OptionSpec[] =>
    CREDENTIAL_NAMES.has(o.name)
      ? [
          { ...o, name: `from-${o.name}`, short: undefined, description: `source: ${o.description}` },
          { ...o, name: `to-${o.name}`, short: undefined, description: `destination: ${o.description}` },
          { ...o, hidden: true },
        ]
      : [o],
  ),
];

/** The command modules, loaded only when their command runs. */
export interface CommandModules {
  push: typeof import('./push.js');
  pull: typeof import('./pull.js');
  login: typeof import('./login.js');
  wasm: typeof import('./wasm.js');
  manage: typeof import('./manage.js');
  help: typeof import('./help.js');
  completion: typeof import('./completion.js');
  cosign: typeof import('./cosign.js');
}

export type CommandLoader = <K extends keyof CommandModules>(name: K) => Promise<CommandModules[K]>;

export interface Context {
  io: Io;
  signal: AbortSignal;
  env: NodeJS.ProcessEnv;
  /** Loads a command module (main.ts passes the bundle's loader, with its compile cache). */
  load: CommandLoader;
  /** What this run learns about registries, shared by its clients and kept for the next run. */
  memory?: RegistryMemory | undefined;
  /** Warnings already given in this run (each is given once). */
  warned?: Set<string> | undefined;
}

export function flag(options: OptionValues, name: string): boolean {
  return options[name] === true;
}

export function text(options: OptionValues, name: string): string | undefined {
  const value = options[name];
  return typeof value === 'string' ? value : undefined;
}

export function list(options: OptionValues, name: string): string[] {
  const value = options[name];
  return Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
}

/** Reads all of stdin as text, without its trailing line break (for --password-stdin). */
export async function readStdin(ctx: Context): Promise<string> {
  const stdin = ctx.io.stdin;
  if (!stdin) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function readPem(path: string, what: string): Promise<string> {
  const { fileError } = await import('../content/output.js');
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const e = fileError(err as NodeJS.ErrnoException, path);
    e.message = `${what} ${e.message}`;
    throw e;
  }
}

/** Explicit credentials from -u/-p/--password-stdin (or their `prefix`ed copy twins), or undefined. */
export async function explicitCredentials(
  options: OptionValues,
  ctx: Context,
  prefix = '',
): Promise<{ username: string; password: string } | undefined> {
  const username = text(options, `${prefix}username`);
  let password = text(options, `${prefix}password`);
  if (password !== undefined) {
    ctx.io.stderr.write(
      `WARNING! Using --${prefix}password on the command line is insecure. Use --${prefix}password-stdin.\n`,
    );
  }
  const { WasmOciError } = await import('../errors.js');
  if (flag(options, `${prefix}password-stdin`)) {
    if (password !== undefined)
      throw new WasmOciError('USAGE', `--${prefix}password and --${prefix}password-stdin are exclusive`);
    if (username === undefined)
      throw new WasmOciError('USAGE', `--${prefix}password-stdin needs --${prefix}username`);
    password = await readStdin(ctx);
  }
  if (username === undefined && password === undefined) return undefined;
  if (username !== undefined && password === undefined && ctx.io.stdin?.isTTY === true) {
    // As docker does: a user name without a password, on a terminal, is asked for the password.
    const { ask } = await import('./prompt.js');
    const side = prefix === 'from-' ? ' (source)' : prefix === 'to-' ? ' (destination)' : '';
    password = await ask(ctx.io, `Password for ${username}${side}: `, true, ctx.signal);
    if (password === '') throw new WasmOciError('USAGE', `no password given for ${username}`);
  }
  if (username === undefined || password === undefined) {
    throw new WasmOciError(
      'USAGE',
      `give both --${prefix}username and a password (--${prefix}password-stdin)`,
    );
  }
  return { username, password };
}

/** `--timeout <seconds>`, else WASM_TO_OCI_TIMEOUT: the header and idle limits, in milliseconds. */
export async function timeoutMs(options: OptionValues, env: NodeJS.ProcessEnv): Promise<number | undefined> {
  const fromFlag = text(options, 'timeout');
  const raw = fromFlag ?? env.WASM_TO_OCI_TIMEOUT;
  if (raw === undefined || raw === '') return undefined;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 86_400) {
    const { WasmOciError } = await import('../errors.js');
    throw new WasmOciError(
      'USAGE',
      `${fromFlag !== undefined ? '--timeout' : 'WASM_TO_OCI_TIMEOUT'} takes seconds (more than 0, at most 86400), not ${JSON.stringify(raw)}`,
    );
  }
  return Math.round(seconds * 1000);
}

/**
 * `-H name:value` (repeatable, as oras takes it): extra headers for the registry's own requests. The
 * library refuses the ones it must set itself (credentials, host, framing); here the flag is named.
 */
export async function extraHeaders(options: OptionValues): Promise<Record<string, string> | undefined> {
  const given = list(options, 'header');
  if (given.length === 0) return undefined;
  const { WasmOciError } = await import('../errors.js');
  const { checkExtraHeaders } = await import('../ops/target.js');
  const headers: Record<string, string> = {};
  for (const pair of given) {
    const colon = pair.indexOf(':');
    const name = colon > 0 ? pair.slice(0, colon).trim() : '';
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new WasmOciError('USAGE', `-H wants name:value, not ${JSON.stringify(pair)}`, {
        hint: "for example: -H 'X-Request-Id: 42'",
      });
    }
    headers[name.toLowerCase()] = pair.slice(colon + 1).trim();
  }
  try {
    checkExtraHeaders(headers);
  } catch (err) {
    if (err instanceof WasmOciError) err.message = `-H: ${err.message}`;
    throw err;
  }
  return headers;
}

/** The registry host a reference names (undefined for a layout or an unparsable reference). */
async function registryOf(reference: string | undefined, layout: boolean): Promise<string | undefined> {
  if (reference === undefined) return undefined;
  const { parseTarget } = await import('../ops/target.js');
  try {
    const spec = parseTarget(reference, { layout });
    return spec.kind === 'registry' ? spec.ref.registry : undefined;
  } catch {
    // The command reports a malformed reference itself.
    return undefined;
  }
}

/** TLS files, proxies, time limits and logging of a network command (everything but credentials). */
export async function transportOptions(
  options: OptionValues,
  ctx: Context,
): Promise<Omit<ConnectOptions, 'credentials'>> {
  const { env } = ctx;
  const caFiles = [...list(options, 'ca-file')];
  if (env.SSL_CERT_FILE) caFiles.push(env.SSL_CERT_FILE);
  const caExtra = env.NODE_EXTRA_CA_CERTS;
  const ca = await Promise.all(caFiles.map((f) => readPem(f, 'CA file')));
  if (ca.length && caExtra) ca.push(await readPem(caExtra, 'NODE_EXTRA_CA_CERTS'));
  const certFile = text(options, 'cert');
  const keyFile = text(options, 'key');
  const cert = certFile ? await readPem(certFile, 'client certificate') : undefined;
  const key = keyFile ? await readPem(keyFile, 'client key') : undefined;
  const timeout = await timeoutMs(options, env);
  const { terminalSafe } = await import('./output.js');
  return {
    plainHttp: flag(options, 'plain-http') || flag(options, 'use-http') ? true : undefined,
    insecure: flag(options, 'insecure'),
    ca,
    cert,
    key,
    env,
    timeouts: timeout !== undefined ? { headersMs: timeout, idleMs: timeout } : undefined,
    memory: ctx.memory,
    headers: await extraHeaders(options),
    onWarning: (registry, message) =>
      ctx.io.stderr.write(`Warning: ${terminalSafe(registry)}: ${terminalSafe(message)}\n`),
    log: flag(options, 'verbose')
      ? (line: string) => ctx.io.stderr.write(`${terminalSafe(line)}\n`)
      : undefined,
  };
}

/** Credentials of the Docker config, with explicit ones (if any) bound to `registry` alone. */
async function credentialSource(
  options: OptionValues,
  ctx: Context,
  registry: string | undefined,
  prefix: string,
  what: string,
) {
  const explicit = await explicitCredentials(options, ctx, prefix);
  if (explicit && registry === undefined) {
    const { WasmOciError } = await import('../errors.js');
    throw new WasmOciError('USAGE', `--${prefix}username applies to a registry, and ${what} is not one`, {
      hint: 'credentials are for registry references (host/repository), not for layouts',
    });
  }
  const { dockerCredentials } = await import('../credentials/source.js');
  return dockerCredentials({
    env: ctx.env,
    home: ctx.env.HOME ?? homedir(),
    configFile: text(options, `${prefix}registry-config`),
    explicit: explicit && registry !== undefined ? { registry, ...explicit } : undefined,
    helperTimeoutMs: await timeoutMs(options, ctx.env),
  });
}

/**
 * The connection options of a network command for the one `reference` it talks to: explicit
 * credentials go to that reference's registry and nowhere else.
 */
export async function connectOptions(
  options: OptionValues,
  ctx: Context,
  reference?: string,
): Promise<ConnectOptions> {
  const registry = await registryOf(reference, flag(options, 'oci-layout'));
  return {
    ...(await transportOptions(options, ctx)),
    credentials: await credentialSource(options, ctx, registry, '', reference ?? 'the reference'),
  };
}

/** The Docker config's credentials alone (a trust server gets only what the config holds for it). */
export async function configCredentials(options: OptionValues, ctx: Context) {
  const { dockerCredentials } = await import('../credentials/source.js');
  return dockerCredentials({
    env: ctx.env,
    home: ctx.env.HOME ?? homedir(),
    configFile: text(options, 'registry-config'),
    helperTimeoutMs: await timeoutMs(options, ctx.env),
  });
}

/**
 * The connection options of `copy`: `--from-*` credentials for the source's registry, `--to-*` ones for
 * the destination's. Both sides cannot read a password from stdin.
 */
export async function copyConnectOptions(
  options: OptionValues,
  ctx: Context,
  source: string,
  destination: string,
) {
  const { WasmOciError } = await import('../errors.js');
  for (const bare of ['username', 'password', 'password-stdin', 'registry-config']) {
    if (options[bare] !== undefined && options[bare] !== false) {
      throw new WasmOciError('USAGE', `copy talks to two registries: --${bare} does not say which`, {
        hint: `use --from-${bare} for the source and --to-${bare} for the destination`,
      });
    }
  }
  if (flag(options, 'from-password-stdin') && flag(options, 'to-password-stdin')) {
    throw new WasmOciError(
      'USAGE',
      'only one of --from-password-stdin and --to-password-stdin can read stdin',
      {
        hint: 'give the other side its credentials in a Docker config (--from-registry-config / --to-registry-config)',
      },
    );
  }
  const from = await registryOf(source, flag(options, 'from-oci-layout'));
  const to = await registryOf(destination, flag(options, 'to-oci-layout'));
  return {
    ...(await transportOptions(options, ctx)),
    sourceCredentials: await credentialSource(options, ctx, from, 'from-', source),
    destinationCredentials: await credentialSource(options, ctx, to, 'to-', destination),
  };
}

/** Notary v1 signing options, named as the original wasm-to-oci named them. */
export const TRUST_OPTIONS: OptionSpec[] = [
  {
    name: 'server',
    type: 'string',
    value: '<url>',
    description: 'with --sign: the Notary trust server (default https://notary.docker.io)',
  },
  {
    name: 'tlscacert',
    type: 'string',
    value: '<pem>',
    description: 'with --sign: trust only this CA for the trust server',
  },
  {
    name: 'dir',
    short: 'd',
    type: 'string',
    value: '<dir>',
    description: 'with --sign: the trust directory, keys and pinned trust data (default ~/.wasm-to-oci)',
  },
];

/** The trust options of a signing command (`--sign`), or undefined without it. */
export async function trustOptions(options: OptionValues, ctx: Context, signing: boolean) {
  if (!signing) {
    for (const name of ['server', 'tlscacert', 'dir']) {
      if (options[name] !== undefined) {
        const { WasmOciError } = await import('../errors.js');
        throw new WasmOciError('USAGE', `--${name} only applies with --sign`);
      }
    }
    return undefined;
  }
  const tlscacert = text(options, 'tlscacert');
  const { passphraseSource } = await import('./passphrase.js');
  const { defaultTrustDir } = await import('../sign/index.js');
  return {
    credentials: await configCredentials(options, ctx),
    server: text(options, 'server'),
    dir: text(options, 'dir') ?? defaultTrustDir(ctx.env.HOME ?? homedir()),
    tlsCaCert: tlscacert ? await readPem(tlscacert, '--tlscacert') : undefined,
    passphrases: passphraseSource(ctx),
  };
}

/** A command's one target (registry repository or layout): connection options, the reference, cancellation. */
export async function targetOptions(reference: string, options: OptionValues, ctx: Context) {
  return {
    ...(await connectOptions(options, ctx, reference)),
    reference,
    ociLayout: flag(options, 'oci-layout'),
    signal: ctx.signal,
  };
}

/** `--annotation k=v` (repeatable) and `--annotation-file <json>` (a map of strings). */
export async function annotations(options: OptionValues): Promise<Record<string, string> | undefined> {
  const { WasmOciError } = await import('../errors.js');
  const out: Record<string, string> = {};
  const file = text(options, 'annotation-file');
  if (file) {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(file, 'utf8'));
    } catch (cause) {
      throw new WasmOciError('USAGE', `--annotation-file ${file} is not readable JSON`, { cause });
    }
    if (typeof json !== 'object' || json === null || Object.values(json).some((v) => typeof v !== 'string')) {
      throw new WasmOciError('USAGE', `--annotation-file ${file} must map strings to strings`);
    }
    Object.assign(out, json);
  }
  for (const pair of list(options, 'annotation')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new WasmOciError('USAGE', `--annotation wants key=value, not "${pair}"`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return Object.keys(out).length ? out : undefined;
}
