import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import type { ConnectOptions } from '../target.js';
import type { OptionSpec, OptionValues } from './args.js';
import type { Io } from './output.js';

/** `--oci-layout`: the reference is an OCI image-layout directory (`<dir>[:tag][@digest]`). */
export const LAYOUT_OPTION: OptionSpec = {
  name: 'oci-layout',
  type: 'boolean',
  description: 'the reference is an OCI image-layout directory <dir>[:tag] (same as the prefix oci:)',
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
  const { fileError } = await import('../content/file.js');
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const e = fileError(err as NodeJS.ErrnoException, path);
    e.message = `${what} ${e.message}`;
    throw e;
  }
}

/** Explicit credentials from -u/-p/--password-stdin, or undefined to use the Docker config. */
export async function explicitCredentials(
  options: OptionValues,
  ctx: Context,
): Promise<{ username: string; password: string } | undefined> {
  const username = text(options, 'username');
  let password = text(options, 'password');
  if (password !== undefined) {
    ctx.io.stderr.write('WARNING! Using --password on the command line is insecure. Use --password-stdin.\n');
  }
  if (flag(options, 'password-stdin')) {
    const { WasmOciError } = await import('../errors.js');
    if (password !== undefined)
      throw new WasmOciError('USAGE', '--password and --password-stdin are exclusive');
    if (username === undefined) throw new WasmOciError('USAGE', '--password-stdin needs --username');
    password = await readStdin(ctx);
  }
  if (username === undefined && password === undefined) return undefined;
  if (username === undefined || password === undefined) {
    const { WasmOciError } = await import('../errors.js');
    throw new WasmOciError('USAGE', 'give both --username and a password (--password-stdin)');
  }
  return { username, password };
}

/** Builds the connection options of a network command: TLS files, credentials, proxies, logging. */
export async function connectOptions(options: OptionValues, ctx: Context): Promise<ConnectOptions> {
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
  const explicit = await explicitCredentials(options, ctx);
  const { dockerCredentials } = await import('../credentials/source.js');
  return {
    plainHttp: flag(options, 'plain-http') || flag(options, 'use-http') ? true : undefined,
    insecure: flag(options, 'insecure'),
    ca,
    cert,
    key,
    env,
    credentials: dockerCredentials({
      env,
      home: env.HOME ?? homedir(),
      configFile: text(options, 'registry-config'),
      ...(explicit ?? {}),
    }),
    log: flag(options, 'verbose') ? (line: string) => ctx.io.stderr.write(`${line}\n`) : undefined,
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
  const { defaultTrustDir } = await import('../signing.js');
  return {
    server: text(options, 'server'),
    dir: text(options, 'dir') ?? defaultTrustDir(ctx.env.HOME ?? homedir()),
    tlsCaCert: tlscacert ? await readPem(tlscacert, '--tlscacert') : undefined,
    passphrases: passphraseSource(ctx),
  };
}
