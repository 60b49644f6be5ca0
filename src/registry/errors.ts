import { codeForStatus, WasmOciError } from '../errors.js';
import { readText } from '../transport/body.js';
import { type HttpResponse, header } from '../transport/types.js';

/** One entry of the distribution spec's error body `{"errors":[{"code","message","detail"}]}`. */
export interface RegistryErrorEntry {
  code: string;
  message?: string;
  detail?: unknown;
}

/** The entries of an error body; anything that is not the spec's shape gives none. */
export function parseErrorBody(text: string): RegistryErrorEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return [];
  }
  const errors = (json as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors)) return [];
  return errors
    .slice(0, 20)
    .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null && !Array.isArray(e))
    .map((e) => ({
      code: typeof e.code === 'string' ? e.code.slice(0, 100) : 'UNKNOWN',
      ...(typeof e.message === 'string' ? { message: e.message.slice(0, 500) } : {}),
      ...(e.detail !== undefined ? { detail: e.detail } : {}),
    }));
}

/** The registry's error codes in an error, for callers that react to one (MANIFEST_BLOB_UNKNOWN). */
export function registryCodes(err: unknown): string[] {
  if (!(err instanceof WasmOciError)) return [];
  const entries = err.details?.errors;
  return Array.isArray(entries) ? entries.map((e) => String((e as RegistryErrorEntry).code)) : [];
}

/** The most of a registry's error text an error message quotes. */
const MAX_SAID = 1000;

/**
 * Builds the error for an unexpected response: `what` says what we tried ("push manifest to
 * localhost:5000/hello"), the registry's own error codes and messages follow.
 */
export async function responseError(res: HttpResponse, what: string): Promise<WasmOciError> {
  const text = res.body.readableEnded ? '' : await readText(res.body, 16 * 1024).catch(() => '');
  const entries = parseErrorBody(text);
  const registrySays = entries.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join('; ');
  const code = codeForStatus(res.status);
  const hint = /HTTP request to an HTTPS server/i.test(text)
    ? 'the registry speaks TLS: drop the `plainHttp` option'
    : code === 'UNAUTHORIZED'
      ? 'the registry wants credentials: log in (docker login / wasm-to-oci login) or check the ones you have'
      : code === 'DENIED'
        ? 'the credentials in use are not allowed to do this'
        : undefined;
  const plain = text.trimStart();
  const said =
    (
      registrySays ||
      (plain && !plain.startsWith('<') && !plain.startsWith('{') ? plain.trim().slice(0, 200) : '')
    ).split('\n')[0] ?? '';
  // Up to 20 entries of 600 characters each: what the registry says is cut to keep the message short.
  const detail = said.length > MAX_SAID ? `${said.slice(0, MAX_SAID)}...` : said;
  return new WasmOciError(code, `${what}: HTTP ${res.status}${detail ? ` (${detail})` : ''}`, {
    status: res.status,
    ...(hint ? { hint } : {}),
    ...(entries.length ? { details: { errors: entries } } : {}),
  });
}

/**
 * A 429 with `RateLimit-Remaining: 0` (Docker Hub's pull limit): retrying would only spend the quota,
 * so the operation stops and says when the limit resets (Retry-After, RateLimit-Reset, else the window).
 */
export async function rateLimitError(
  res: HttpResponse,
  registry: string,
  now: number,
): Promise<WasmOciError> {
  const limit = header(res, 'ratelimit-limit') ?? '';
  const window =
    /;\s*w=(\d+)/.exec(limit)?.[1] ?? /;\s*w=(\d+)/.exec(header(res, 'ratelimit-remaining') ?? '')?.[1];
  const retryAfter = header(res, 'retry-after');
  const reset = header(res, 'ratelimit-reset');
  let when: string | undefined;
  if (retryAfter && /^\d+$/.test(retryAfter.trim())) when = `in ${duration(Number(retryAfter.trim()))}`;
  else if (retryAfter && !Number.isNaN(Date.parse(retryAfter)))
    when = `in ${duration(Math.max(0, Math.round((Date.parse(retryAfter) - now) / 1000)))}`;
  else if (reset && /^\d+$/.test(reset.trim())) when = `in ${duration(Number(reset.trim()))}`;
  else if (window) when = `within ${duration(Number(window))} (the limit's window)`;
  await readText(res.body, 16 * 1024).catch(() => '');
  const max = /^\s*(\d+)/.exec(limit)?.[1];
  return new WasmOciError(
    'RATE_LIMITED',
    `${registry} refused the request: rate limit reached${max ? ` (${max} requests per window)` : ''}${when ? `; it resets ${when}` : ''}`,
    {
      status: 429,
      hint: 'wait for the reset, or log in: registries give authenticated users a higher limit',
      details: { ...(window ? { windowSeconds: Number(window) } : {}), ...(when ? { resets: when } : {}) },
    },
  );
}

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 360) / 10} h`;
}
