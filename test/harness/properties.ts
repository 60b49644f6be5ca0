import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WasmOciError } from '../../src/errors.js';
import {
  assertFast,
  deepJson,
  defineOwn,
  expectResultOrError,
  expectResultOrErrorAsync,
  HOSTILE_KEYS,
  HOSTILE_NUMBERS_TEXT,
  HOSTILE_STRINGS,
  raw,
  toText,
} from './fuzz.js';

/**
 * fast-check arbitraries and checks for the property-based tests of the parsers of outside input
 * (beside the seeded mutation tests of fuzz.ts): structured near-valid inputs whose fields are valid
 * values or hostile ones (wrong types, huge numbers, `__proto__` keys, control characters, deep
 * nesting), raw strings and bytes, and the property every parser must keep: a result, or a WasmOciError
 * of an expected code whose message is one line, in bounded time, with Object.prototype untouched.
 */

/** fc.assert parameters: a fixed seed and a bounded number of runs, so every run is the same. */
export function params(seed: number, numRuns: number): fc.Parameters<unknown> {
  return { seed, numRuns };
}

// --- strings and numbers --------------------------------------------------------------------------------

/** Any string: the harness's hostile ones, binary (any code point, lone surrogates too), or printable. */
export function anyString(maxLength = 40): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(...HOSTILE_STRINGS),
    fc.string({ unit: 'binary', maxLength }),
    fc.string({ maxLength }),
    fc.string({ unit: 'grapheme', maxLength: Math.ceil(maxLength / 4) }),
  );
}

/** A string built from `pieces` (valid fragments, separators) with hostile strings mixed in. */
export function stringOf(pieces: readonly string[], maxPieces = 12): fc.Arbitrary<string> {
  return fc
    .array(
      fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...pieces) }, { weight: 1, arbitrary: anyString(6) }),
      {
        maxLength: maxPieces,
      },
    )
    .map((parts) => parts.join(''));
}

/** Object keys that find something on every object unless a parser looks at own properties only. */
export const hostileKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...HOSTILE_KEYS),
  fc.string({ unit: 'binary', maxLength: 8 }),
);

/** Numbers at and beyond the edges. */
export const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, -0, -1, 1.5, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53 + 2, 1e21, 1e308, -1e308, 5e-324),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** Number text JSON.stringify cannot write (1e400, -0, 30 digits), spliced in raw by `jsonText`. */
export const rawNumber: fc.Arbitrary<string> = fc.constantFrom(...HOSTILE_NUMBERS_TEXT).map(raw);

/** Deep nesting, written raw by `jsonText`: past every bound parsers set and past what recursion survives. */
export const deepValue: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom(33, 65, 513, 3000, 12_000),
    fc.constantFrom('array' as const, 'object' as const, 'mixed' as const),
  )
  .map(([depth, kind]) => raw(deepJson(depth, kind)));

/** An object holding one own hostile key (`__proto__` stays an own property). */
export function withKey(key: string, value: unknown, base: object = {}): object {
  const out = { ...base };
  defineOwn(out, key, value);
  return out;
}

/** A value of the wrong kind anywhere a field is expected. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, '', [], {}),
  hostileNumber,
  rawNumber,
  anyString(),
  fc.string({ maxLength: 3 }).map((s) => s.repeat(20_000)),
  deepValue,
  fc.jsonValue({ maxDepth: 3 }),
  fc.tuple(hostileKey, fc.jsonValue({ maxDepth: 2 })).map(([k, v]) => withKey(k, v)),
);

/** A field: mostly one of its valid values, sometimes hostile, sometimes missing. */
export function field<T>(valid: fc.Arbitrary<T>, weight = 8): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight, arbitrary: valid },
    { weight: 1, arbitrary: hostileValue },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

/** Mostly one of `valid`'s values, now and then one of `other`'s (by default, any string). */
export function mostly<T, U = string>(
  valid: fc.Arbitrary<T>,
  other?: fc.Arbitrary<U>,
  weight = 8,
): fc.Arbitrary<T | U> {
  const odd = other ?? (anyString() as unknown as fc.Arbitrary<U>);
  return fc.oneof({ weight, arbitrary: valid }, { weight: 1, arbitrary: odd });
}

/** `valid`'s value once in `weight + 1` draws, null otherwise (fc.option's freq is the other way round). */
export function rarely<T>(valid: fc.Arbitrary<T>, weight: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: valid });
}

/** An optional field: missing as often as present. */
export function optional<T>(valid: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.oneof(fc.constant(undefined), valid);
}

/**
 * A near-valid object: each of `fields` (valid or hostile, see `field`: `weight` to 1 to 1), undefined
 * ones left out, and sometimes an extra hostile own key (`__proto__`, `constructor`...) holding anything.
 */
export function nearRecord(fields: Record<string, fc.Arbitrary<unknown>>, weight = 8): fc.Arbitrary<object> {
  const entries = Object.entries(fields).map(([k, v]) => [k, field(v, weight)] as const);
  return fc
    .tuple(fc.record(Object.fromEntries(entries)), rarely(fc.tuple(hostileKey, hostileValue), weight))
    .map(([record, extra]) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(record)) if (v !== undefined) defineOwn(out, k, v);
      if (extra) defineOwn(out, extra[0], extra[1]);
      return out;
    });
}

/** JSON text of a value, with raw pieces (deep nesting, 1e400) spliced in. */
export function jsonText(value: unknown): string {
  return value === undefined ? '' : toText(value);
}

/**
 * Text or bytes for a parser of JSON: a near-valid document, any JSON value, a document with a text
 * edit, or raw binary strings and bytes.
 */
export function jsonInput(doc: fc.Arbitrary<unknown>): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 6, arbitrary: doc.map((d) => Buffer.from(jsonText(d))) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v) ?? '')) },
    {
      weight: 1,
      arbitrary: fc.tuple(doc, fc.nat(), fc.nat({ max: 8 }), anyString(6)).map(([d, at, cut, insert]) => {
        const text = jsonText(d);
        const i = text.length ? at % text.length : 0;
        return Buffer.from(text.slice(0, i) + insert + text.slice(i + cut));
      }),
    },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }).map((s) => Buffer.from(s)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b)) },
  );
}

// --- the property ---------------------------------------------------------------------------------------

function checkOneLine(err: unknown): void {
  if (err instanceof WasmOciError)
    assert.ok(!/[\r\n]/.test(err.message), `message of more than one line: ${JSON.stringify(err.message)}`);
}

/**
 * `parse` returns (the result goes to `check`) or throws a WasmOciError of one of `codes` with a
 * one-line message, within `ms` milliseconds, and leaves Object.prototype as it was.
 */
export function outcome<T>(
  parse: () => T,
  codes: readonly string[],
  input: unknown,
  check?: (result: T) => void,
  ms = 250,
): T | WasmOciError {
  const result = assertFast(ms, 'property', () =>
    expectResultOrError(parse, codes, 'property', input, check),
  );
  checkOneLine(result);
  return result;
}

/** The async form of `outcome`. */
export async function outcomeAsync<T>(
  parse: () => Promise<T>,
  codes: readonly string[],
  input: unknown,
  check?: (result: T) => void,
  ms = 1000,
): Promise<T | WasmOciError> {
  const start = performance.now();
  const result = await expectResultOrErrorAsync(parse, codes, 'property', input, check);
  const took = performance.now() - start;
  assert.ok(took < ms, `took ${took.toFixed(0)} ms (limit ${ms} ms)`);
  checkOneLine(result);
  return result;
}
