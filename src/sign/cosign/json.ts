import { type ErrorCode, WasmOciError } from '../../errors.js';

/** The JSON documents cosign's formats come in: parsed, bounded, and refused in one line when not an object. */

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses `bytes` as a JSON object; `what` names it in errors ("the Sigstore bundle"). */
export function jsonObject(
  bytes: Uint8Array,
  code: ErrorCode,
  what: string,
  maxBytes = Number.POSITIVE_INFINITY,
): Record<string, unknown> {
  if (bytes.byteLength > maxBytes) throw new WasmOciError(code, `${what} is larger than ${maxBytes} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (cause) {
    throw new WasmOciError(code, `${what} is not JSON`, { cause });
  }
  if (!isRecord(json)) throw new WasmOciError(code, `${what} is not a JSON object`);
  return json;
}
