import { WasmOciError } from '../errors.js';
import { PREAMBLE_LENGTH, requireWasm, type WasmKind } from './detect.js';

/**
 * What a wasm binary imports and exports, read by our own parser: for a core module its import section
 * (grouped by module: `wasi_snapshot_preview1`, `env`...) and export section; for a component the
 * top-level import and export sections of the component model binary format (nested components are
 * skipped). Every length is checked against the input before it is used, so malformed or hostile input
 * fails fast with INVALID_WASM instead of hanging or allocating.
 */

export type { WasmKind };

export interface WasmImport {
  /** The core module an import comes from (core modules only). */
  module?: string;
  name: string;
  kind: string;
}

export interface WasmExport {
  name: string;
  kind: string;
}

export interface WasmInfo {
  kind: WasmKind;
  version: number;
  imports: WasmImport[];
  exports: WasmExport[];
}

const CORE_KINDS = ['func', 'table', 'memory', 'global', 'tag'];
const COMPONENT_SORTS: Record<number, string> = {
  0x01: 'func',
  0x02: 'value',
  0x03: 'type',
  0x04: 'component',
  0x05: 'instance',
};

class Reader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  fail(what: string): never {
    throw new WasmOciError('INVALID_WASM', `malformed WebAssembly at byte ${this.pos}: ${what}`, {
      hint: 'the file is truncated or corrupt, or not a module/component this tool understands',
    });
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  byte(): number {
    if (this.pos >= this.end) this.fail('unexpected end of data');
    return this.bytes[this.pos++] as number;
  }

  /** Unsigned LEB128, at most `bits` wide. */
  uleb(bits = 32): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; ; i++) {
      if (i >= Math.ceil(bits / 7)) this.fail('LEB128 number too long');
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
    }
    if (result > 2 ** bits - 1) this.fail('LEB128 number out of range');
    return result;
  }

  /** Signed LEB128 (skipped, only its length matters here). */
  sleb(bits: number): void {
    for (let i = 0; ; i++) {
      if (i >= Math.ceil(bits / 7)) this.fail('LEB128 number too long');
      if ((this.byte() & 0x80) === 0) return;
    }
  }

  /** A vector count, checked against the bytes left (each element takes at least `min` bytes). */
  count(min = 1): number {
    const n = this.uleb();
    if (n * min > this.end - this.pos)
      this.fail(`vector of ${n} elements does not fit in ${this.end - this.pos} bytes`);
    return n;
  }

  name(): string {
    const length = this.uleb();
    if (length > this.end - this.pos) this.fail(`name of ${length} bytes runs past the end`);
    const slice = this.bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(slice);
    } catch {
      this.fail('name is not valid UTF-8');
    }
  }

  skip(length: number): void {
    if (length > this.end - this.pos) this.fail(`${length} bytes run past the end`);
    this.pos += length;
  }
}

function limits(r: Reader): void {
  const flags = r.byte();
  if (flags > 0x07) r.fail(`unknown limits flags 0x${flags.toString(16)}`);
  const wide = (flags & 0x04) !== 0;
  r.uleb(wide ? 64 : 32);
  if (flags & 0x01) r.uleb(wide ? 64 : 32);
}

function valtype(r: Reader): void {
  const b = r.byte();
  // (ref null? heaptype) in the GC/function-references proposals.
  if (b === 0x63 || b === 0x64) r.sleb(33);
}

function coreImportDesc(r: Reader): string {
  const kind = r.byte();
  switch (kind) {
    case 0x00:
      r.uleb();
      break;
    case 0x01:
      valtype(r);
      limits(r);
      break;
    case 0x02:
      limits(r);
      break;
    case 0x03:
      valtype(r);
      r.byte();
      break;
    case 0x04:
      r.byte();
      r.uleb();
      break;
    default:
      r.fail(`unknown import kind 0x${kind.toString(16)}`);
  }
  return CORE_KINDS[kind] as string;
}

/**
 * The JS API's implementation limits: at most 100,000 imports and 100,000 exports. A binary beyond them
 * is none an engine runs; refusing it keeps a hostile one (4 bytes an import) from filling the heap.
 */
const MAX_ENTRIES = 100_000;

/** A section's entry count, refused when it takes the list past MAX_ENTRIES. */
function entryCount(section: Reader, min: number, listed: number, what: string): number {
  const n = section.count(min);
  if (listed + n > MAX_ENTRIES) section.fail(`more than ${MAX_ENTRIES} ${what}`);
  return n;
}

/** Calls `visit` with a bounded reader for each top-level section after the preamble. */
function eachSection(bytes: Uint8Array, visit: (id: number, section: Reader) => void): void {
  const r = new Reader(bytes, PREAMBLE_LENGTH, bytes.length);
  while (!r.done) {
    const id = r.byte();
    const size = r.uleb();
    if (size > r.end - r.pos) r.fail(`section ${id} of ${size} bytes runs past the end`);
    const section = new Reader(bytes, r.pos, r.pos + size);
    visit(id, section);
    // A section that was parsed (its reader moved) must end exactly at its declared size, as the spec
    // and wasm-tools require; sections we skip are not looked into.
    if (section.pos !== r.pos && !section.done) {
      section.fail(`section ${id} has ${section.end - section.pos} bytes left over after its last entry`);
    }
    r.skip(size);
  }
}

function inspectModule(bytes: Uint8Array, info: WasmInfo): void {
  eachSection(bytes, (id, section) => {
    if (id === 2) {
      for (let n = entryCount(section, 3, info.imports.length, 'imports'); n > 0; n--) {
        const module = section.name();
        const name = section.name();
        info.imports.push({ module, name, kind: coreImportDesc(section) });
      }
    } else if (id === 7) {
      for (let n = entryCount(section, 3, info.exports.length, 'exports'); n > 0; n--) {
        const name = section.name();
        const kind = section.byte();
        if (kind > 4) section.fail(`unknown export kind 0x${kind.toString(16)}`);
        section.uleb();
        info.exports.push({ name, kind: CORE_KINDS[kind] as string });
      }
    }
  });
}

/** importname' / exportname': 0x00 name, or 0x01 name with a version suffix. */
function externName(r: Reader): string {
  const tag = r.byte();
  if (tag === 0x00) return r.name();
  if (tag === 0x01) {
    const name = r.name();
    r.name();
    return name;
  }
  return r.fail(`unknown name encoding 0x${tag.toString(16)}`);
}

/** externdesc: which kind of thing is imported or exported; its type index or bound is skipped. */
function externDesc(r: Reader): string {
  const kind = r.byte();
  switch (kind) {
    case 0x00:
      if (r.byte() !== 0x11) r.fail('core externdesc is not a module type');
      r.uleb();
      return 'module';
    case 0x01:
    case 0x04:
    case 0x05:
      r.uleb();
      return COMPONENT_SORTS[kind] as string;
    case 0x02: {
      const bound = r.byte();
      if (bound === 0x00) r.uleb();
      else if (bound === 0x01) r.sleb(33);
      else r.fail(`unknown value bound 0x${bound.toString(16)}`);
      return 'value';
    }
    case 0x03: {
      const bound = r.byte();
      if (bound === 0x00) r.uleb();
      else if (bound !== 0x01) r.fail(`unknown type bound 0x${bound.toString(16)}`);
      return 'type';
    }
    default:
      return r.fail(`unknown externdesc 0x${kind.toString(16)}`);
  }
}

function inspectComponent(bytes: Uint8Array, info: WasmInfo): void {
  eachSection(bytes, (id, section) => {
    if (id === 10) {
      for (let n = entryCount(section, 3, info.imports.length, 'imports'); n > 0; n--) {
        const name = externName(section);
        info.imports.push({ name, kind: externDesc(section) });
      }
    } else if (id === 11) {
      for (let n = entryCount(section, 4, info.exports.length, 'exports'); n > 0; n--) {
        const name = externName(section);
        let sort = section.byte();
        if (sort === 0x00) {
          section.byte();
          sort = -1;
        } else if (!(sort in COMPONENT_SORTS)) section.fail(`unknown sort 0x${sort.toString(16)}`);
        section.uleb();
        const ascribed = section.byte();
        if (ascribed === 0x01) externDesc(section);
        else if (ascribed !== 0x00) section.fail(`bad optional externdesc 0x${ascribed.toString(16)}`);
        info.exports.push({ name, kind: sort === -1 ? 'module' : (COMPONENT_SORTS[sort] as string) });
      }
    }
  });
}

/** Parses a module or component; the kind comes from the preamble's layer field. */
export function inspectWasm(bytes: Uint8Array, name = 'input'): WasmInfo {
  const kind = requireWasm(bytes.subarray(0, PREAMBLE_LENGTH), name);
  const version = (bytes[4] as number) | ((bytes[5] as number) << 8);
  const info: WasmInfo = { kind, version, imports: [], exports: [] };
  if (kind === 'module') inspectModule(bytes, info);
  else inspectComponent(bytes, info);
  return info;
}

/** Core-module imports grouped by module name (`wasi_snapshot_preview1: [fd_write, ...]`). */
export function importsByModule(info: WasmInfo): Record<string, string[]> {
  // Module names come from the binary: a Map keeps `__proto__` and `constructor` plain names.
  const groups = new Map<string, string[]>();
  for (const imp of info.imports) {
    const module = imp.module ?? '';
    const names = groups.get(module);
    if (names) names.push(imp.name);
    else groups.set(module, [imp.name]);
  }
  return Object.fromEntries(groups);
}

const HEAD_WINDOW = 64 * 1024;

/**
 * Inspects a large file without reading it all: only the preamble and the import/export sections are
 * read (positioned reads), everything else is skipped by its length.
 */
export async function inspectWasmFile(
  read: (position: number, length: number) => Promise<Uint8Array>,
  size: number,
  name: string,
): Promise<WasmInfo> {
  const preamble = await read(0, PREAMBLE_LENGTH);
  const kind = requireWasm(preamble, name);
  const wanted = kind === 'module' ? [2, 7] : [10, 11];
  const parts: Uint8Array[] = [preamble];
  // Section heads are read through a window: one read per head made a file of 2-byte sections cost a
  // read every 2 bytes (minutes for a few MiB).
  let window: Uint8Array = new Uint8Array(0);
  let windowStart = 0;
  const inWindow = (start: number, length: number) =>
    start >= windowStart && start + length <= windowStart + window.length;
  let position = PREAMBLE_LENGTH;
  while (position < size) {
    const headLength = Math.min(6, size - position);
    if (!inWindow(position, headLength)) {
      window = await read(position, Math.min(HEAD_WINDOW, size - position));
      windowStart = position;
    }
    const head = window.subarray(position - windowStart, position - windowStart + headLength);
    const r = new Reader(head, 0, head.length);
    const id = r.byte();
    const length = r.uleb();
    const total = r.pos + length;
    if (position + total > size) r.fail(`section ${id} of ${length} bytes runs past the end`);
    if (wanted.includes(id)) {
      parts.push(
        inWindow(position, total)
          ? window.slice(position - windowStart, position - windowStart + total)
          : await read(position, total),
      );
    }
    position += total;
  }
  return inspectWasm(Buffer.concat(parts), name);
}
