import { spawn } from 'node:child_process';
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

/** Runs a helper program; injectable so tests and embedders control process creation. */
export type HelperRunner = (program: string, action: string, input: string) => Promise<HelperResult>;

const HELPER_TIMEOUT_MS = 30_000;

export const runHelper: HelperRunner = (program, action, input) =>
  new Promise((resolve, reject) => {
    const child = spawn(program, [action], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), HELPER_TIMEOUT_MS);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });

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

async function call(run: HelperRunner, name: string, action: string, input: string): Promise<HelperResult> {
  try {
    return await run(`docker-credential-${name}`, action, input);
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
): Promise<Credential | undefined> {
  const result = await call(run, name, 'get', serverAddress);
  if (result.code !== 0) {
    if (NOT_FOUND.test(result.stdout) || NOT_FOUND.test(result.stderr)) return undefined;
    throw helperError(
      name,
      'get',
      (result.stderr || result.stdout).trim().split('\n')[0] ?? `exit ${result.code}`,
    );
  }
  let json: { Username?: unknown; Secret?: unknown };
  try {
    json = JSON.parse(result.stdout);
  } catch (cause) {
    throw helperError(name, 'get', 'it did not answer with JSON', cause);
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
): Promise<void> {
  const payload = JSON.stringify({
    ServerURL: serverAddress,
    Username: credential.identityToken ? '<token>' : (credential.username ?? ''),
    Secret: credential.identityToken ?? credential.password ?? '',
  });
  const result = await call(run, name, 'store', payload);
  if (result.code !== 0)
    throw helperError(name, 'store', (result.stderr || result.stdout).trim() || `exit ${result.code}`);
}

/** `erase`: removes a credential; false when the helper had none. */
export async function helperErase(run: HelperRunner, name: string, serverAddress: string): Promise<boolean> {
  const result = await call(run, name, 'erase', serverAddress);
  if (result.code === 0) return true;
  if (NOT_FOUND.test(result.stdout) || NOT_FOUND.test(result.stderr)) return false;
  throw helperError(name, 'erase', (result.stderr || result.stdout).trim() || `exit ${result.code}`);
}
