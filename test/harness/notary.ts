import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The real Notary v1 (TUF) server and CLI (Debian package `notary`, 0.7) for integration tests:
 * `startNotaryServer` runs notary-server alone (local signing service, memory storage) on a free
 * loopback port, `runNotary` runs the notary CLI hermetically against it, and `startTrustFixture` puts
 * a tampering proxy in front of a server (stale, replayed or altered metadata). Never skips: a missing
 * binary is a failure that says how to install it.
 */

export const NOTARY_SERVER_BIN = process.env.NOTARY_SERVER_BIN ?? '/usr/bin/notary-server';
export const NOTARY_BIN = process.env.NOTARY_BIN ?? '/usr/bin/notary';

/** The passphrases `runNotary` gives the CLI for its private keys unless `env` overrides them. */
export const NOTARY_PASSPHRASES = {
  NOTARY_ROOT_PASSPHRASE: 'wasm-to-oci-test-root-passphrase',
  NOTARY_TARGETS_PASSPHRASE: 'wasm-to-oci-test-targets-passphrase',
  NOTARY_SNAPSHOT_PASSPHRASE: 'wasm-to-oci-test-snapshot-passphrase',
  NOTARY_DELEGATION_PASSPHRASE: 'wasm-to-oci-test-delegation-passphrase',
} as const;

function requireBinary(path: string, what: string, variable: string): void {
  if (!existsSync(path)) {
    throw new Error(
      `the ${what} binary ${path} is missing: install it with ` +
        `\`apt-get update && apt-get install -y notary\` (or set ${variable})`,
    );
  }
}

/** `/v2/<gun>/_trust/tuf/<role>.json`: where a notary server serves a role's metadata. */
export function trustPath(gun: string, role: string): string {
  return `/v2/${gun}/_trust/tuf/${role}.json`;
}

// ---------------------------------------------------------------------------------------------------
// notary-server

export interface NotaryServerOptions {
  /** Serve TLS with this certificate and key (PEM files). */
  tls?: { certificate: string; key: string };
  /** Require bearer tokens from this token server (Distribution's token protocol). */
  auth?: { realm: string; service: string; issuer: string; rootCertBundle: string };
}

export interface NotaryServer {
  /** `http://127.0.0.1:<port>`, or `https://…` with `tls`. */
  url: string;
  port: number;
  /** Everything the server logged so far (JSON lines). */
  log(): string;
  stop(): Promise<void>;
}

/** A port that was free a moment ago (notary-server cannot report the port it got for `:0`). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** GET `url`, resolving with the status (0 when the connection fails). */
function probe(url: string): Promise<number> {
  return new Promise((resolve) => {
    const options = { agent: false, timeout: 2_000, rejectUnauthorized: false };
    const req = url.startsWith('https:') ? https.get(url, options) : http.get(url, { agent: false });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** One attempt on one port: resolves with the child once healthy, or `undefined` if the bind failed. */
async function launch(
  file: string,
  url: string,
  output: { text: string },
): Promise<ChildProcess | undefined> {
  const child = spawn(NOTARY_SERVER_BIN, ['-config', file, '-logf', 'json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  const onData = (chunk: Buffer) => {
    output.text += chunk.toString();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const deadline = Date.now() + 15_000;
  while (!exited) {
    if ((await probe(`${url}/_notary_server/health`)) === 200 && !exited) return child;
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`notary-server did not become healthy within 15 s:\n${output.text}`);
    }
    await Promise.race([exit, new Promise((resolve) => setTimeout(resolve, 100))]);
  }
  if (/address already in use/.test(output.text)) return undefined;
  throw new Error(`notary-server exited with code ${child.exitCode}:\n${output.text}`);
}

/**
 * Starts notary-server with memory storage and its built-in signer (which always makes ED25519
 * timestamp keys, whatever `key_algorithm` says). Waits for `/_notary_server/health` to answer 200.
 */
export async function startNotaryServer(options: NotaryServerOptions = {}): Promise<NotaryServer> {
  requireBinary(NOTARY_SERVER_BIN, 'notary-server', 'NOTARY_SERVER_BIN');
  const dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-notary-server-'));
  const file = join(dir, 'server.json');
  const scheme = options.tls ? 'https' : 'http';
  const output = { text: '' };
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const config = {
        server: {
          http_addr: `127.0.0.1:${port}`,
          ...(options.tls ? { tls_cert_file: options.tls.certificate, tls_key_file: options.tls.key } : {}),
        },
        trust_service: { type: 'local', hostname: '', port: '', key_algorithm: 'ecdsa' },
        logging: { level: 'info' },
        storage: { backend: 'memory' },
        ...(options.auth
          ? {
              auth: {
                type: 'token',
                options: {
                  realm: options.auth.realm,
                  service: options.auth.service,
                  issuer: options.auth.issuer,
                  rootcertbundle: options.auth.rootCertBundle,
                },
              },
            }
          : {}),
      };
      await writeFile(file, JSON.stringify(config, null, 2));
      const url = `${scheme}://127.0.0.1:${port}`;
      const child = await launch(file, url, output);
      if (child) {
        return {
          url,
          port,
          log: () => output.text,
          stop: async () => {
            await stopChild(child);
            await rm(dir, { recursive: true, force: true });
          },
        };
      }
      if (attempt >= 5) throw new Error(`notary-server found no free port in 5 attempts:\n${output.text}`);
      output.text += `\n(port ${port} was taken; retrying)\n`;
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------
// notary CLI

export interface NotaryRunOptions {
  /** The server URL, with scheme (`-s`); the CLI cannot parse a bare `host:port`. */
  server: string;
  /** The trust directory (`-d`): private keys under `private/`, cached metadata under `tuf/<gun>/`. */
  dir: string;
  /** Extra environment (e.g. `NOTARY_AUTH`, base64 `user:password`); overrides NOTARY_PASSPHRASES. */
  env?: Record<string, string>;
  /** A CA certificate (PEM file) to trust for an https server (`--tlscacert`). */
  tlscacert?: string;
  /** Fed to the CLI's standard input (what `verify` checks); otherwise stdin is empty. */
  stdin?: string | Buffer;
  /** The working directory, for relative file arguments (default: this process's). */
  cwd?: string;
  /** Milliseconds before the CLI is killed and the run fails (default 60 000). */
  timeout?: number;
}

export interface NotaryResult {
  /** The exit code: 0 on success, 1 on any `* fatal:` error. */
  code: number;
  /** Results, and also the fatal error: `\n* fatal: <message>\n` goes to stdout, not stderr. */
  stdout: string;
  /** Log lines (`time=… level=error msg=…`), e.g. why a server could not be reached. */
  stderr: string;
}

/**
 * Runs `notary -c <empty config> -s <server> -d <dir> [--tlscacert <pem>] ...args` with a temporary
 * HOME, so that neither ~/.notary/config.json nor the caller's environment leaks in.
 */
export async function runNotary(args: string[], options: NotaryRunOptions): Promise<NotaryResult> {
  requireBinary(NOTARY_BIN, 'notary', 'NOTARY_BIN');
  const home = await mkdtemp(join(tmpdir(), 'wasm-to-oci-notary-cli-'));
  try {
    const config = join(home, 'config.json');
    await writeFile(config, '{}\n');
    const argv = [
      '-c',
      config,
      '-s',
      options.server,
      '-d',
      options.dir,
      ...(options.tlscacert !== undefined ? ['--tlscacert', options.tlscacert] : []),
      ...args,
    ];
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      ...NOTARY_PASSPHRASES,
      ...options.env,
    };
    const timeout = options.timeout ?? 60_000;
    return await new Promise<NotaryResult>((resolve, reject) => {
      const child = spawn(NOTARY_BIN, argv, {
        cwd: options.cwd ?? process.cwd(),
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => stdout.push(c));
      child.stderr.on('data', (c: Buffer) => stderr.push(c));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(
          new Error(
            `notary ${argv.join(' ')} timed out after ${timeout} ms\n` +
              `stdout:\n${Buffer.concat(stdout).toString()}\nstderr:\n${Buffer.concat(stderr).toString()}`,
          ),
        );
      }, timeout);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({
          code: code ?? (signal ? -1 : 0),
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
        });
      });
      // The CLI may exit before reading its input; that is not our failure.
      child.stdin.on('error', () => {});
      child.stdin.end(options.stdin ?? '');
    });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// A tampering proxy

/** Response bodies by URL path (`/v2/<gun>/_trust/tuf/timestamp.json` and the like). */
export type TrustSnapshot = ReadonlyMap<string, Buffer>;

/** What an overridden GET answers: fixed bytes, or the upstream's answer transformed. */
export type TrustOverride = Buffer | string | ((upstreamBody: Buffer) => Buffer | string);

export interface ProxiedRequest {
  method: string;
  /** The URL path and query as the client sent them. */
  path: string;
  /** The status the proxy answered. */
  status: number;
  /** Who made the answer: the upstream server, a `replay` snapshot, or an `override`. */
  source: 'upstream' | 'replay' | 'override';
}

export interface TrustFixture {
  /** `http://127.0.0.1:<port>`: give it to the client instead of the server's URL. */
  url: string;
  /** Every request so far, oldest first. Tests may clear it (`requests.length = 0`). */
  requests: ProxiedRequest[];
  /**
   * The latest 200 body of every GET of a path ending in `.json` that went through the proxy since it
   * started, copied as it is now (later traffic does not change the returned snapshot).
   */
  record(): TrustSnapshot;
  /** From now on, GETs of the snapshot's paths get the snapshot's bodies (200) and never reach upstream. */
  replay(snapshot: TrustSnapshot): void;
  /**
   * From now on, GETs of `path` (exact URL path, no query) get `body`, or the upstream's body passed
   * through `body` when it is a function. Fixed bodies answer `status` (default 200); transformed
   * ones the upstream's status. Overrides win over replays.
   */
  override(path: string, body: TrustOverride, options?: { status?: number }): void;
  /** Drops every replay and override: the proxy forwards everything again. Keeps `requests` and recordings. */
  clear(): void;
  stop(): Promise<void>;
}

function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

/** Headers a proxy must not pass on (RFC 9110 §7.6.1), plus the ones recomputed here. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
  'content-length',
]);

function forwardable(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

/**
 * A plain-HTTP proxy on a free loopback port in front of the notary server at `upstream` (its http
 * URL). It forwards every request as it is (method, path, headers, body, multipart publishes
 * included), buffering each answer, and can answer GETs itself: see TrustFixture.
 */
export async function startTrustFixture(upstream: string): Promise<TrustFixture> {
  const target = new URL(upstream);
  if (target.protocol !== 'http:')
    throw new Error(`startTrustFixture wants an http upstream, got ${upstream}`);
  const requests: ProxiedRequest[] = [];
  const seen = new Map<string, Buffer>();
  const replays = new Map<string, Buffer>();
  const overrides = new Map<string, { body: TrustOverride; status: number }>();

  const fetchUpstream = (req: http.IncomingMessage, body: Buffer) =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const out = http.request(
        {
          protocol: target.protocol,
          hostname: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url ?? '/',
          headers: { ...forwardable(req.headers), 'content-length': String(body.length) },
          agent: false,
        },
        (res) => {
          readAll(res).then(
            (data) => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: data }),
            reject,
          );
        },
      );
      out.on('error', reject);
      out.end(body);
    });

  const answer = (
    res: http.ServerResponse,
    status: number,
    headers: http.OutgoingHttpHeaders,
    body: Buffer,
  ) => {
    res.writeHead(status, { ...headers, 'content-length': String(body.length) });
    res.end(body);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const method = req.method ?? 'GET';
    const rawPath = req.url ?? '/';
    const path = new URL(rawPath, 'http://proxy').pathname;
    const body = await readAll(req);
    const isGet = method === 'GET';
    const override = isGet ? overrides.get(path) : undefined;
    if (override && typeof override.body !== 'function') {
      requests.push({ method, path: rawPath, status: override.status, source: 'override' });
      answer(res, override.status, { 'content-type': 'application/json' }, Buffer.from(override.body));
      return;
    }
    const replayed = isGet && !override ? replays.get(path) : undefined;
    if (replayed) {
      requests.push({ method, path: rawPath, status: 200, source: 'replay' });
      answer(res, 200, { 'content-type': 'application/json' }, replayed);
      return;
    }
    const reply = await fetchUpstream(req, body);
    if (override && typeof override.body === 'function') {
      const changed = Buffer.from(override.body(reply.body));
      requests.push({ method, path: rawPath, status: reply.status, source: 'override' });
      answer(res, reply.status, forwardable(reply.headers), changed);
      return;
    }
    if (isGet && reply.status === 200 && path.endsWith('.json')) seen.set(path, reply.body);
    requests.push({ method, path: rawPath, status: reply.status, source: 'upstream' });
    answer(res, reply.status, forwardable(reply.headers), reply.body);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const text = JSON.stringify({ errors: [{ code: 'PROXY_ERROR', message: String(err) }] });
      res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    record: () => new Map(seen),
    replay: (snapshot) => {
      for (const [path, body] of snapshot) replays.set(path, body);
    },
    override: (path, body, options = {}) => {
      overrides.set(path, { body, status: options.status ?? 200 });
    },
    clear: () => {
      replays.clear();
      overrides.clear();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
