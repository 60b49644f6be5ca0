import { WasmOciError } from '../../errors.js';

/**
 * Canonical JSON as Notary and TUF sign it (Docker's `canonical/json`, after the OLPC rules): no
 * whitespace, object keys sorted by their UTF-8 bytes, only `"` and `\` escaped in strings (every other
 * character is written as itself), integers only. Signatures are made and checked over these bytes of
 * the `signed` object, re-encoded from its parsed form, so two encoders must agree byte for byte.
 */

/** Nesting deeper than this is refused: encoding recurses, and no TUF metadata nests near it. */
const MAX_DEPTH = 512;

/** What cannot be encoded is untrusted data that is no TUF metadata: a TRUST error, never a TypeError. */
function refuse(why: string): WasmOciError {
  return new WasmOciError('TRUST', `canonical JSON ${why}`);
}

function encodeString(s: string): string {
  return `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function encode(value: unknown, out: string[], depth: number): void {
  if (depth > MAX_DEPTH) throw refuse(`nests deeper than ${MAX_DEPTH} levels`);
  if (value === null) {
    out.push('null');
  } else if (typeof value === 'boolean') {
    out.push(value ? 'true' : 'false');
  } else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw refuse(`has no number ${value}`);
    out.push(String(value));
  } else if (typeof value === 'string') {
    out.push(encodeString(value));
  } else if (Array.isArray(value)) {
    out.push('[');
    value.forEach((item, i) => {
      if (i > 0) out.push(',');
      encode(item === undefined ? null : item, out, depth + 1);
    });
    out.push(']');
  } else if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => byUtf8(a, b));
    out.push('{');
    entries.forEach(([key, item], i) => {
      if (i > 0) out.push(',');
      out.push(encodeString(key), ':');
      encode(item, out, depth + 1);
    });
    out.push('}');
  } else {
    throw refuse(`cannot encode a ${typeof value}`);
  }
}

/** The canonical bytes of a JSON value (`undefined` members are left out, as Go's omitempty does). */
export function canonicalJson(value: unknown): Buffer {
  const out: string[] = [];
  encode(value, out, 0);
  return Buffer.from(out.join(''), 'utf8');
}
