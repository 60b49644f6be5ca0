import { WasmOciError } from '../errors.js';

/**
 * A streaming reader for the tar archives of container layers (ustar, with GNU long names and pax
 * `path`/`size` records), enough to find the one `.wasm` file of an Istio "compat" image. No I/O: the
 * caller feeds chunks (gunzipped already) and says, per entry, whether it wants the body.
 *
 * Written here rather than taken from npm: tar-stream 3 brings streamx, b4a, fast-fifo and bare-fs
 * for what is a block walk over 512-byte headers, and the package has no runtime dependencies.
 */

export interface TarEntry {
  /** The path inside the archive, as stored (pax and GNU long names applied). */
  name: string;
  /** The ustar type flag: `0` (or NUL) and `7` are regular files, `5` a directory, `2` a link... */
  type: string;
  size: number;
}

/** Regular files (`0`, the old NUL flag, and `7`, contiguous files). */
export function isRegularFile(entry: TarEntry): boolean {
  return entry.type === '0' || entry.type === '\0' || entry.type === '7';
}

const BLOCK = 512;

/** Bodies of pax and GNU long-name records are read into memory: bounded. */
const MAX_META_BYTES = 1024 * 1024;

function malformed(why: string): WasmOciError {
  return new WasmOciError('INVALID_WASM', `not a readable tar archive: ${why}`, { details: { tar: why } });
}

function text(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString('utf8');
}

/** A numeric field: octal text, or GNU base-256 when the high bit of the first byte is set. */
function number(block: Buffer, start: number, length: number): number {
  const field = block.subarray(start, start + length);
  if (((field[0] as number) & 0x80) !== 0) {
    let value = (field[0] as number) & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + (field[i] as number);
    if (!Number.isSafeInteger(value)) throw malformed('an entry size is too large');
    return value;
  }
  const digits = text(block, start, length).trim();
  if (digits === '') return 0;
  if (!/^[0-7]+$/.test(digits)) throw malformed(`"${digits}" is not an octal number`);
  return Number.parseInt(digits, 8);
}

function checksumOk(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] as number);
  return number(block, 148, 8) === sum;
}

/** `path` and `size` from a pax extended header (`<length> <key>=<value>\n` records). */
function paxRecords(body: Buffer): { path?: string; size?: number } {
  const out: { path?: string; size?: number } = {};
  let at = 0;
  while (at < body.length) {
    const space = body.indexOf(0x20, at);
    if (space === -1) break;
    const length = Number(body.subarray(at, space).toString('latin1'));
    if (!Number.isSafeInteger(length) || length <= space - at || at + length > body.length) {
      throw malformed('a pax record has a bad length');
    }
    const record = body.subarray(space + 1, at + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    if (key === 'path') out.path = value;
    if (key === 'size' && /^\d+$/.test(value)) out.size = Number(value);
    at += length;
  }
  return out;
}

/**
 * Walks an archive. `onEntry` is called for each entry (pax and long-name records are applied, not
 * reported) and returns a sink for the body, or nothing to skip it; a sink's promise is awaited. Ends at the end-of-archive blocks
 * or at the end of the input; a header cut short or with a bad checksum is an error.
 */
export async function scanTar(
  source: AsyncIterable<Uint8Array>,
  onEntry: (entry: TarEntry) => ((chunk: Buffer) => void | Promise<void>) | undefined,
): Promise<void> {
  let pending = Buffer.alloc(0);
  /** Body bytes still to go to the current entry (or to be skipped), then the padding. */
  let body = 0;
  let padding = 0;
  let sink: ((chunk: Buffer) => void | Promise<void>) | undefined;
  let meta: { kind: 'pax' | 'long'; chunks: Buffer[] } | undefined;
  let next: { path?: string; size?: number } = {};
  let ended = false;

  const header = (block: Buffer): void => {
    if (block.every((b) => b === 0)) {
      ended = true;
      return;
    }
    if (!checksumOk(block)) throw malformed('a header checksum does not match');
    const type = String.fromCharCode(block[156] as number);
    const ustar = block.subarray(257, 262).toString('latin1') === 'ustar';
    const prefix = ustar ? text(block, 345, 155) : '';
    let name = text(block, 0, 100);
    if (prefix) name = `${prefix}/${name}`;
    let size = number(block, 124, 12);
    if (type === 'x' || type === 'g' || type === 'L') {
      if (size > MAX_META_BYTES) throw malformed('an extended header is too large');
      // A global pax header ('g') is read and ignored: it names no file.
      meta = { kind: type === 'L' ? 'long' : 'pax', chunks: [] };
      if (type === 'g') meta = undefined;
      body = size;
      padding = (BLOCK - (size % BLOCK)) % BLOCK;
      sink = meta
        ? (chunk) => {
            meta?.chunks.push(Buffer.from(chunk));
          }
        : undefined;
      return;
    }
    if (next.path !== undefined) name = next.path;
    if (next.size !== undefined) size = next.size;
    next = {};
    // Links, directories and devices have no body, whatever the size field says.
    if (type === '1' || type === '2' || type === '3' || type === '4' || type === '5' || type === '6')
      size = 0;
    sink = onEntry({ name, type, size });
    body = size;
    padding = (BLOCK - (size % BLOCK)) % BLOCK;
  };

  const endOfBody = (): void => {
    if (meta) {
      const all = Buffer.concat(meta.chunks);
      if (meta.kind === 'long') next.path = text(all, 0, all.length);
      else next = { ...next, ...paxRecords(all) };
      meta = undefined;
    }
    sink = undefined;
  };

  for await (const input of source) {
    let chunk = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    while (chunk.length > 0 && !ended) {
      if (body > 0) {
        const take = Math.min(body, chunk.length);
        await sink?.(chunk.subarray(0, take));
        body -= take;
        chunk = chunk.subarray(take);
        if (body === 0) endOfBody();
        continue;
      }
      if (padding > 0) {
        const take = Math.min(padding, chunk.length);
        padding -= take;
        chunk = chunk.subarray(take);
        continue;
      }
      const need = BLOCK - pending.length;
      pending = Buffer.concat([pending, chunk.subarray(0, need)]);
      chunk = chunk.subarray(need);
      if (pending.length < BLOCK) break;
      const block = pending;
      pending = Buffer.alloc(0);
      header(block);
      if (body === 0 && !ended) endOfBody();
    }
    if (ended) return;
  }
  if (pending.length > 0 || body > 0) throw malformed('it ends in the middle of an entry');
}
