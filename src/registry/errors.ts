import { type ErrorCode, WasmOciError } from '../errors.js';
import type { HttpResponse } from '../http.js';
import { readText } from '../http.js';

/** One entry of the distribution spec's error body `{"errors":[{"code","message","detail"}]}`. */
export interface RegistryErrorEntry {
  code: string;
  message?: string;
  detail?: unknown;
}

export function parseErrorBody(text: string): RegistryErrorEntry[] {
  try {
    const json = JSON.parse(text) as { errors?: unknown };
    if (!Array.isArray(json.errors)) return [];
    return json.errors
      .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
      .map((e) => ({
        code: typeof e.code === 'string' ? e.code : 'UNKNOWN',
        ...(typeof e.message === 'string' ? { message: e.message } : {}),
        ...(e.detail !== undefined ? { detail: e.detail } : {}),
      }));
  } catch {
    return [];
  }
}

function codeForStatus(status: number): ErrorCode {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'DENIED';
  if (status === 404) return 'NOT_FOUND';
  return 'REGISTRY';
}

/**
 * Builds the error for an unexpected response: `what` says what we tried ("push manifest to
 * localhost:5000/hello"), the registry's own error codes and messages follow.
 */
export async function responseError(res: HttpResponse, what: string): Promise<WasmOciError> {
  const text = res.body.readableEnded ? '' : await readText(res.body).catch(() => '');
  const entries = parseErrorBody(text);
  const registrySays = entries.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join('; ');
  const code = codeForStatus(res.status);
  const hint = /HTTP request to an HTTPS server/i.test(text)
    ? 'the registry speaks TLS: drop --plain-http'
    : code === 'UNAUTHORIZED'
      ? 'the registry wants credentials: log in (docker login / wasm-to-oci login) or check the ones you have'
      : code === 'DENIED'
        ? 'the credentials in use are not allowed to do this'
        : undefined;
  const detail = registrySays || (text && !text.trimStart().startsWith('<') ? text.trim().slice(0, 200) : '');
  return new WasmOciError(code, `${what}: HTTP ${res.status}${detail ? ` (${detail})` : ''}`, {
    status: res.status,
    ...(hint ? { hint } : {}),
    ...(entries.length ? { details: { errors: entries } } : {}),
  });
}
