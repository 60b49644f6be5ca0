/**
 * JSON text exactly as Go's `encoding/json` writes it, so that manifests we build hash to the same digest
 * as the original Go tool's. Go differs from `JSON.stringify` in three ways that matter here: it escapes
 * `<`, `>`, `&`, U+2028 and U+2029; it writes map keys sorted by their UTF-8 bytes; and it replaces
 * invalid UTF-16 (lone surrogates) with U+FFFD. Struct fields keep their declared order, which the
 * callers give by building entries in that order.
 */

const HEX = '0123456789abcdef';

function unicodeEscape(code: number): string {
  return `\\u${HEX[(code >> 12) & 15]}${HEX[(code >> 8) & 15]}${HEX[(code >> 4) & 15]}${HEX[code & 15]}`;
}

/** A Go-encoded JSON string literal, quotes included. */
export function goString(value: string): string {
  let out = '"';
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code === 0x22) out += '\\"';
    else if (code === 0x5c) out += '\\\\';
    else if (code === 0x0a) out += '\\n';
    else if (code === 0x0d) out += '\\r';
    else if (code === 0x09) out += '\\t';
    else if (
      code < 0x20 ||
      code === 0x3c ||
      code === 0x3e ||
      code === 0x26 ||
      code === 0x2028 ||
      code === 0x2029
    ) {
      // Go (before 1.22, as the original tool was built) writes \b and \f as \u0008 and \u000c too.
      out += unicodeEscape(code);
    } else if (code >= 0xd800 && code <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += value.slice(i, i + 2);
        i++;
      } else out += '\ufffd';
    } else if (code >= 0xdc00 && code <= 0xdfff) out += '\ufffd';
    else out += value.charAt(i);
  }
  return `${out}"`;
}

/**
 * Marks JSON text this module encoded. A symbol cannot come out of JSON.parse, so no parsed value (a
 * hostile layout's `{"json": "..."}` field, say) can pass for pre-encoded text and be written raw.
 */
const ENCODED: unique symbol = Symbol('wasm-to-oci.go-json');

/** A pre-encoded JSON fragment, so struct builders can nest without re-encoding. */
export type GoJson = { readonly json: string; readonly [ENCODED]: true };

function fragment(json: string): GoJson {
  return Object.freeze({ json, [ENCODED]: true as const });
}

function isFragment(value: unknown): value is GoJson {
  return typeof value === 'object' && value !== null && (value as Partial<GoJson>)[ENCODED] === true;
}

export type GoValue = string | number | boolean | null | GoJson | readonly GoValue[];

function encodeValue(value: GoValue): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return goString(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('JSON cannot encode a non-finite number');
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) return `[${value.map(encodeValue).join(',')}]`;
  if (isFragment(value)) return value.json;
  throw new TypeError('only strings, numbers, booleans, null, arrays and encoded fragments are encoded');
}

/** A Go struct: fields in the given order; `undefined` fields are omitted (Go's `omitempty`). */
export function goStruct(fields: ReadonlyArray<readonly [string, GoValue | undefined]>): GoJson {
  const parts: string[] = [];
  for (const [key, value] of fields) {
    if (value === undefined) continue;
    parts.push(`${goString(key)}:${encodeValue(value)}`);
  }
  return fragment(`{${parts.join(',')}}`);
}

/** A Go `map[string]T`: keys sorted by their UTF-8 bytes. */
export function goMap(map: Readonly<Record<string, GoValue>>): GoJson {
  const keys = Object.keys(map).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return fragment(`{${keys.map((k) => `${goString(k)}:${encodeValue(map[k] as GoValue)}`).join(',')}}`);
}

export function goArray(values: readonly GoValue[]): GoJson {
  return fragment(encodeValue(values));
}
