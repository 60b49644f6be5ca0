import assert from 'node:assert/strict';
import { WasmOciError } from '../../src/errors.js';

/**
 * Seeded, bounded fuzzing for the unit tests of the parsers of untrusted input: a tiny PRNG (mulberry32)
 * with fixed seeds, so a failure names the seed and case that reproduce it, mutators for bytes, text and
 * parsed JSON, and the check every parser must pass: a result, or a WasmOciError with an expected code;
 * never an internal exception, never a change to Object.prototype.
 */

/** mulberry32: a 32-bit seeded PRNG, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Keys that find something on every object unless a parser looks at own properties only. */
export const HOSTILE_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'toJSON',
  '__defineGetter__',
  'length',
  '0',
  '',
];

/** Numbers at and beyond the edges: huge, fractional, negative, unsafe, not finite once parsed. */
export const HOSTILE_NUMBERS_TEXT = [
  '0',
  '-0',
  '-1',
  '1.5',
  '1e-300',
  '4294967296',
  '9007199254740991',
  '9007199254740993',
  '1e21',
  '1e308',
  '1e400',
  '-1e400',
  '123456789012345678901234567890',
];

/** Strings with control, format and astral characters, lone surrogates, markup and escapes. */
export const HOSTILE_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\n',
  '\r\n',
  '\t',
  '\u001b[31m',
  '\u007f',
  '\u0085',
  '\u2028\u2029',
  '\u202e',
  '\ufeff',
  '\ud800',
  '\udc00',
  '\u{1f600}',
  'é',
  '"',
  '\\',
  '\\u0000',
  '<script>',
  '&amp;',
  '%00',
  '../',
  '{"json":"x"}',
  '__proto__',
  'constructor',
  'sha256:',
  'a/b',
];

/** FNV-1a of a label: derives independent seeds. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Rng {
  private readonly next: () => number;
  constructor(readonly seed: number) {
    this.next = mulberry32(seed);
  }
  /** An independent stream for a sub-task, so one part's draws do not shift another's. */
  fork(label: string): Rng {
    return new Rng(hash32(`${this.seed.toString(16)}/${label}`));
  }
  /** One of `items`, each as likely as its weight. */
  weighted<T>(items: ReadonlyArray<readonly [number, T]>): T {
    const total = items.reduce((sum, [w]) => sum + w, 0);
    let r = this.float() * total;
    for (const [w, v] of items) {
      r -= w;
      if (r < 0) return v;
    }
    return (items[items.length - 1] as readonly [number, T])[1];
  }
  hex(n: number): string {
    let out = '';
    for (let i = 0; i < n; i++) out += '0123456789abcdef'[this.int(16)];
    return out;
  }
  float(): number {
    return this.next();
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  /** A string of `n` characters from `alphabet`, or of any BMP/astral code points without one. */
  string(n: number, alphabet?: string): string {
    let out = '';
    for (let i = 0; i < n; i++) {
      if (alphabet) out += alphabet[this.int(alphabet.length)];
      else if (this.bool(0.1)) out += this.pick(HOSTILE_STRINGS);
      else if (this.bool(0.7)) out += String.fromCharCode(0x20 + this.int(0x5f));
      else if (this.bool(0.8)) out += String.fromCharCode(this.int(0x10000));
      else out += String.fromCodePoint(0x10000 + this.int(0x100000));
    }
    return out;
  }
}

// --- bytes and text -------------------------------------------------------------------------------------

/** One random edit of bytes: bit flip, byte set, insertion, deletion, truncation, duplication, splice. */
export function mutateBytes(rng: Rng, input: Uint8Array): Buffer {
  const b = Buffer.from(input);
  const at = b.length === 0 ? 0 : rng.int(b.length);
  switch (rng.int(7)) {
    case 0:
      if (b.length) b[at] = (b[at] as number) ^ (1 << rng.int(8));
      return b;
    case 1:
      if (b.length) b[at] = rng.pick([0x00, 0x7f, 0x80, 0xff, 0x22, 0x5c, 0x7b, 0x5b, rng.int(256)]);
      return b;
    case 2:
      return Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(8)), b.subarray(at)]);
    case 3:
      return Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rng.int(8)))]);
    case 4:
      return b.subarray(0, at);
    case 5: {
      const end = Math.min(b.length, at + 1 + rng.int(64));
      return Buffer.concat([b.subarray(0, end), b.subarray(at, end), b.subarray(end)]);
    }
    default: {
      const from = rng.int(b.length + 1);
      const piece = b.subarray(from, Math.min(b.length, from + 1 + rng.int(32)));
      return Buffer.concat([b.subarray(0, at), piece, b.subarray(at)]);
    }
  }
}

/** `count` random edits in a row. */
export function mutateBytesN(rng: Rng, input: Uint8Array, count: number): Buffer {
  let b: Buffer = Buffer.from(input);
  for (let i = 0; i < count; i++) b = mutateBytes(rng, b);
  return b;
}

/** Every prefix of `input` (the empty one included, the whole input excluded). */
export function* truncations(input: Uint8Array): Generator<Buffer> {
  for (let i = 0; i < input.length; i++) yield Buffer.from(input.subarray(0, i));
}

/** JSON text of nesting `depth` around `inner`: arrays, objects or a mix. */
export function deepJson(depth: number, kind: 'array' | 'object' | 'mixed' = 'array', inner = '0'): string {
  if (kind === 'array') return `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;
  if (kind === 'object') return `${'{"a":'.repeat(depth)}${inner}${'}'.repeat(depth)}`;
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    if (i % 2) {
      open += '{"a":';
      close = `}${close}`;
    } else {
      open += '[';
      close = `]${close}`;
    }
  }
  return `${open}${inner}${close}`;
}

// --- parsed JSON ----------------------------------------------------------------------------------------

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Path = Array<string | number>;

/** Every path into a JSON value (the root's is []), objects' keys and arrays' indexes. */
export function jsonPaths(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => jsonPaths(v, [...prefix, i], out));
  else if (typeof value === 'object' && value !== null)
    for (const [k, v] of Object.entries(value)) jsonPaths(v, [...prefix, k], out);
  return out;
}

/** A deep copy through JSON text (own `__proto__` keys survive: JSON.parse makes them plain keys). */
export function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Sets an own property, even one named `__proto__`. */
export function defineOwn(target: object, key: string | number, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A copy of `root` with the value at `path` replaced (the root itself when the path is empty). */
export function replaceAt(root: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = clone(root);
  let node = copy as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  defineOwn(node, path[path.length - 1] as string | number, value);
  return copy;
}

/** A copy of `root` without the key or element at `path`. */
export function deleteAt(root: unknown, path: Path): unknown {
  if (path.length === 0) return undefined;
  const copy = clone(root);
  let node = copy as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (Array.isArray(node)) node.splice(last as number, 1);
  else delete node[last];
  return copy;
}

/** One value of every JSON type, some of them hostile. */
export function wrongValues(rng: Rng): unknown[] {
  return [
    null,
    true,
    false,
    0,
    -1,
    1.5,
    2 ** 53 + 2,
    1e308,
    '',
    rng.pick(HOSTILE_STRINGS),
    'x'.repeat(rng.pick([100, 5000, 70_000])),
    [],
    [rng.pick(HOSTILE_STRINGS)],
    {},
    { [rng.pick(HOSTILE_KEYS)]: rng.pick(HOSTILE_STRINGS) },
  ];
}

/** Nesting depths: shallow, past the bounds parsers set, and past what recursion survives (~8000). */
export const DEPTHS = [2, 33, 65, 513, 3000, 12_000];

/** Marks a place in JSON text that `toText` replaces by raw text (deep nesting, 1e400, -0). */
const RAW = '\u0000raw:';

/** A string that `toText` writes as the raw JSON text `text`. */
export function raw(text: string): string {
  return `${RAW}${text}`;
}

/** JSON text of a value, with `raw()` strings spliced in as themselves. */
export function toText(value: unknown): string {
  return JSON.stringify(value).replace(/"\\u0000raw:((?:[^"\\]|\\.)*)"/g, (_, t: string) =>
    JSON.parse(`"${t}"`),
  );
}

/**
 * One random mutation of a parsed JSON document, as text: a value of the wrong type at some key, a
 * deleted key, a hostile key added, a hostile number, a deep nest, a long or odd string, or a text edit
 * of the serialised document.
 */
export function mutateJson(rng: Rng, doc: unknown): string {
  const paths = jsonPaths(doc);
  const path = rng.pick(paths);
  switch (rng.int(8)) {
    case 0:
      return toText(replaceAt(doc, path, rng.pick(wrongValues(rng))));
    case 1:
      return toText(deleteAt(doc, path.length ? path : [0]));
    case 2: {
      const objects = paths.filter((p) => {
        const v = p.reduce<unknown>((n, k) => (n as Record<string | number, unknown>)[k], doc);
        return typeof v === 'object' && v !== null && !Array.isArray(v);
      });
      const at = objects.length ? rng.pick(objects) : [];
      const target = clone(doc);
      const node = at.reduce<unknown>((n, k) => (n as Record<string | number, unknown>)[k], target);
      if (typeof node === 'object' && node !== null)
        defineOwn(node, rng.pick(HOSTILE_KEYS), rng.pick(wrongValues(rng)));
      return toText(target);
    }
    case 3:
      return toText(replaceAt(doc, path, raw(rng.pick(HOSTILE_NUMBERS_TEXT))));
    case 4:
      return toText(
        replaceAt(
          doc,
          path,
          raw(deepJson(rng.pick(DEPTHS), rng.pick(['array', 'object', 'mixed'] as const))),
        ),
      );
    case 5:
      return toText(replaceAt(doc, path, rng.string(1 + rng.int(40))));
    case 6: {
      // A string value with something appended or prepended.
      const v = path.reduce<unknown>((n, k) => (n as Record<string | number, unknown>)[k], doc);
      const s = typeof v === 'string' ? v : '';
      return toText(
        replaceAt(doc, path, rng.bool() ? s + rng.pick(HOSTILE_STRINGS) : rng.pick(HOSTILE_STRINGS) + s),
      );
    }
    default:
      return mutateBytes(rng, Buffer.from(JSON.stringify(doc))).toString('utf8');
  }
}

// --- the property ---------------------------------------------------------------------------------------

/** Own property names of Object.prototype, to see that no input added one. */
const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype).sort().join(',');

export function assertNoPollution(context: string): void {
  assert.equal(Object.getOwnPropertyNames(Object.prototype).sort().join(','), PROTOTYPE_KEYS, context);
  assert.equal(({} as Record<string, unknown>).polluted, undefined, context);
}

function describeInput(input: unknown): string {
  const text = typeof input === 'string' ? input : Buffer.isBuffer(input) ? input.toString('latin1') : '';
  return JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}...(${text.length})` : text);
}

/**
 * Runs `parse`: it must return (the result goes to `check`, which may assert) or throw a WasmOciError
 * whose code is one of `codes`. `context` (seed and case number) goes into every failure.
 */
export function expectResultOrError<T>(
  parse: () => T,
  codes: readonly string[],
  context: string,
  input?: unknown,
  check?: (result: T) => void,
): T | WasmOciError {
  let result: T;
  try {
    result = parse();
  } catch (err) {
    checkError(err, codes, context, input);
    return err as WasmOciError;
  }
  assertNoPollution(context);
  check?.(result);
  return result;
}

/** The async form of expectResultOrError. */
export async function expectResultOrErrorAsync<T>(
  parse: () => Promise<T>,
  codes: readonly string[],
  context: string,
  input?: unknown,
  check?: (result: T) => void,
): Promise<T | WasmOciError> {
  let result: T;
  try {
    result = await parse();
  } catch (err) {
    checkError(err, codes, context, input);
    return err as WasmOciError;
  }
  assertNoPollution(context);
  check?.(result);
  return result;
}

function checkError(err: unknown, codes: readonly string[], context: string, input: unknown): void {
  assertNoPollution(context);
  if (!(err instanceof WasmOciError)) {
    assert.fail(
      `${context}: internal exception ${(err as Error)?.name}: ${(err as Error)?.message} for input ${describeInput(input)}`,
    );
  }
  assert.ok(
    codes.includes(err.code),
    `${context}: code ${err.code} (${err.message.slice(0, 200)}) not in ${codes.join('/')} for input ${describeInput(input)}`,
  );
  assert.equal(typeof err.message, 'string', context);
  assert.ok(err.message.length > 0, `${context}: empty message`);
}

/** Runs `body` and fails when it takes longer than `ms` (a crafted input must not make a parser crawl). */
export function assertFast<T>(ms: number, context: string, body: () => T): T {
  const start = performance.now();
  const out = body();
  const took = performance.now() - start;
  assert.ok(took < ms, `${context}: took ${took.toFixed(0)} ms (limit ${ms} ms)`);
  return out;
}
