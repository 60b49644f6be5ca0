import process from 'node:process';
import type { Credential } from '../auth/authorizer.js';
import { WasmOciError } from '../errors.js';

/**
 * Docker credential helpers: `docker-credential-<name> get|store|erase`, the server address or a JSON
 * object on stdin, JSON on stdout. A `<token>` username means the secret is an identity token.
 */

export interface HelperResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface HelperRunOptions {
  /** The helper's environment (see helperEnvironment); the default is an empty one but for PATH. */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  /** The whole call, default 60 s: then the helper's process group is killed. */
  timeoutMs?: number | undefined;
}

/** Runs a helper program; injectable so tests and embedders control process creation. */
export type HelperRunner = (
  program: string,
  action: string,
  input: string,
  options?: HelperRunOptions,
) => Promise<HelperResult>;

const DEFAULT_HELPER_TIMEOUT_MS = 60_000;
const MAX_STDOUT = 1024 * 1024;
const MAX_STDERR = 64 * 1024;
/** After the helper exits, what it wrote is read for this long at most (a child may hold the pipe). */
const DRAIN_MS = 200;

/** Helper names are plain names: `docker-credential-<name>` is looked up on PATH, never a path. */
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function isValidHelperName(name: string): boolean {
  return HELPER_NAME.test(name) && !name.includes('..');
}

/**
 * What a credential helper gets of our environment: what helpers need to find their store (PATH, HOME,
 * the user's locale, DOCKER_* and XDG_* variables, the D-Bus session of secretservice, gpg's and pass's
 * settings, the proxy settings) and the cloud providers' variables their helpers read (AWS_*, AZURE_*,
 * GOOGLE_*, CLOUDSDK_*). Nothing of ours: signing passphrases (SIGNY_*, COSIGN_*) and the rest stay here.
 */
export function helperEnvironment(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const keep =
    /^(PATH|HOME|USER|LOGNAME|LANG|LANGUAGE|TZ|TMPDIR|DISPLAY|WAYLAND_DISPLAY|DBUS_SESSION_BUS_ADDRESS|GNUPGHOME|GPG_TTY|SSL_CERT_FILE|SSL_CERT_DIR|HTTPS?_PROXY|https?_proxy|NO_PROXY|no_proxy|LC_[A-Z]+|DOCKER_[A-Z0-9_]+|XDG_[A-Z0-9_]+|PASSWORD_STORE_[A-Z0-9_]+|AWS_[A-Z0-9_]+|AZURE_[A-Z0-9_]+|GOOGLE_[A-Z0-9_]+|CLOUDSDK_[A-Z0-9_]+)$/;
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env))
    if (value !== undefined && keep.test(name)) out[name] = value;
  return out;
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    // The helper runs in a process group of its own (detached): its children go with it.
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/**
 * Spawns a helper in a process group of its own, with a reduced environment. The call ends when the
 * helper exits (not when its pipes close: a child it left behind may hold them), its output is capped,
 * and on timeout the whole group is killed.
 */
export const runHelper: HelperRunner = async (program, action, input, options = {}) => {
  // Loaded when a helper runs: most runs need none.
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const timeoutMs = options.timeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS;
    const child = spawn(program, [action], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: options.env ? { ...options.env } : {},
    });
    let stdout = '';
    let stderr = '';
    let settled = false;
    const finish = (result: HelperResult | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(() => {
      killGroup(child.pid);
      finish(
        Object.assign(new Error(`it did not answer within ${Math.round(timeoutMs / 1000)} s`), {
          code: 'ETIMEDOUT',
        }),
      );
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.length > MAX_STDOUT) {
        killGroup(child.pid);
        finish(new Error(`it wrote more than ${MAX_STDOUT} bytes`));
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < MAX_STDERR) stderr += d.toString().slice(0, MAX_STDERR - stderr.length);
    });
    child.on('error', (err) => finish(err));
    child.on('exit', (code) => {
      const done = () => finish({ code, stdout, stderr });
      if (child.stdout.readableEnded) done();
      else {
        child.stdout.once('end', done);
        setTimeout(done, DRAIN_MS).unref();
      }
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
};

const NOT_FOUND = /credentials not found|no credentials|not found in native keychain/i;

function helperError(name: string, action: string, detail: string, cause?: unknown): WasmOciError {
  return new WasmOciError(
    'CREDENTIALS',
    `credential helper docker-credential-${name} ${action} failed: ${detail}`,
    {
      cause,
      hint: `check that docker-credential-${name} is installed and on PATH`,
    },
  );
}

async function call(
  run: HelperRunner,
  name: string,
  action: string,
  input: string,
  options?: HelperRunOptions,
): Promise<HelperResult> {
  if (!isValidHelperName(name)) {
    throw new WasmOciError(
      'CREDENTIALS',
      `credential helper name ${JSON.stringify(name.slice(0, 100))} is not a plain name`,
      {
        hint: 'credsStore and credHelpers name helpers such as "pass" or "ecr-login" (docker-credential-<name> on PATH)',
      },
    );
  }
  try {
    return await run(`docker-credential-${name}`, action, input, options);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw helperError(
      name,
      action,
      code === 'ENOENT' ? 'not found on PATH' : (cause as Error).message,
      cause,
    );
  }
}

/** `get`: the credential for a server address, or undefined when the helper has none. */
export async function helperGet(
  run: HelperRunner,
  name: string,
  serverAddress: string,
  options?: HelperRunOptions,
): Promise<Credential | undefined> {
  const result = await call(run, name, 'get', serverAddress, options);
  if (result.code !== 0) {
    if (NOT_FOUND.test(result.stdout) || NOT_FOUND.test(result.stderr)) return undefined;
    throw helperError(
      name,
      'get',
      (result.stderr || result.stdout).trim().split('\n')[0]?.slice(0, 300) || `exit ${result.code}`,
    );
  }
  let json: { Username?: unknown; Secret?: unknown };
  try {
    json = JSON.parse(result.stdout);
  } catch (cause) {
    throw helperError(name, 'get', 'it did not answer with JSON', cause);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw helperError(name, 'get', 'it did not answer with a JSON object');
  }
  const username = typeof json.Username === 'string' ? json.Username : '';
  const secret = typeof json.Secret === 'string' ? json.Secret : '';
  if (secret === '') return undefined;
  return username === '<token>' ? { identityToken: secret } : { username, password: secret };
}

/** `store`: saves a credential (an identity token as user `<token>`). */
export async function helperStore(
  run: HelperRunner,
  name: string,
  serverAddress: string,
  credential: Credential,
  options?: HelperRunOptions,
): Promise<void> {
  const payload = JSON.stringify({
    ServerURL: serverAddress,
    Username: credential.identityToken ? '<token>' : (credential.username ?? ''),
    Secret: credential.identityToken ?? credential.password ?? '',
  });
  const result = await call(run, name, 'store', payload, options);
  if (result.code !== 0)
    throw helperError(name, 'store', (result.stderr || result.stdout).trim() || `exit ${result.code}`);
}

/** `erase`: removes a credential; false when the helper had none. */
export async function helperErase(
  run: HelperRunner,
  name: string,
  serverAddress: string,
  options?: HelperRunOptions,
): Promise<boolean> {
  const result = await call(run, name, 'erase', serverAddress, options);
  if (result.code === 0) return true;
  if (NOT_FOUND.test(result.stdout) || NOT_FOUND.test(result.stderr)) return false;
  throw helperError(name, 'erase', (result.stderr || result.stdout).trim() || `exit ${result.code}`);
}
