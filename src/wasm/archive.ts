import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { isRegularFile, scanTar, type TarEntry } from './tar.js';

/**
 * The wasm inside a tar layer: Istio's "compat" images are container images whose one layer is a tar
 * (usually gzipped) holding `plugin.wasm`. Loaded only when such a layer is met (node:zlib with it).
 */

/** Unpacked bytes read from one layer, at most (a gzip bomb stops here). */
export const MAX_UNPACKED_BYTES = 1024 * 1024 * 1024;

/** Istio's name for the module of a compat image. */
const PLUGIN_FILE = 'plugin.wasm';

function baseName(path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  return parts[parts.length - 1] ?? '';
}

/** The layer's bytes, gunzipped when they start with the gzip magic, counted against the cap. */
async function* unpacked(open: () => Readable): AsyncGenerator<Uint8Array> {
  const raw = open();
  const chunks = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await chunks.next();
  if (first.done) return;
  const gzipped = first.value[0] === 0x1f && first.value[1] === 0x8b;
  async function* whole(): AsyncGenerator<Buffer> {
    yield first.value as Buffer;
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
  }
  const stream: AsyncIterable<Buffer> = gzipped
    ? pipeline(Readable.from(whole()), createGunzip(), () => {})
    : whole();
  let total = 0;
  try {
    for await (const chunk of stream) {
      total += chunk.length;
      if (total > MAX_UNPACKED_BYTES) {
        throw new WasmOciError(
          'TOO_LARGE',
          `the layer unpacks to more than ${MAX_UNPACKED_BYTES / (1024 * 1024)} MiB; stopped`,
        );
      }
      yield chunk;
    }
  } catch (err) {
    if (err instanceof WasmOciError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (gzipped && code.startsWith('Z_')) {
      throw new WasmOciError('INVALID_WASM', 'not a readable tar archive: the gzip data is corrupt', {
        cause: err,
      });
    }
    throw err;
  } finally {
    raw.destroy();
  }
}

/** `name size` of the regular files, for messages (one line, at most a few). */
function listed(files: readonly TarEntry[]): string {
  const shown = files.slice(0, 8).map((f) => `${f.name} (${f.size} bytes)`);
  return `${shown.join(', ')}${files.length > shown.length ? `, and ${files.length - shown.length} more` : ''}`;
}

/**
 * The entry that holds the module: a regular file named `plugin.wasm` (Istio), else the only `.wasm`
 * file. None, or several without a `plugin.wasm`, is an error naming what is there.
 */
export async function findWasmEntry(
  open: () => Readable,
  layer: Descriptor,
  hint: string,
): Promise<TarEntry> {
  const files: TarEntry[] = [];
  const what = `layer ${layer.digest} (${layer.mediaType})`;
  try {
    await scanTar(unpacked(open), (entry) => {
      if (isRegularFile(entry)) files.push(entry);
      return undefined;
    });
  } catch (err) {
    if (!(err instanceof WasmOciError) || err.code !== 'INVALID_WASM') throw err;
    throw new WasmOciError('INVALID_WASM', `${what} is ${err.message}`, { hint, cause: err });
  }
  const wasm = files.filter((f) => baseName(f.name).toLowerCase().endsWith('.wasm'));
  const plugin = wasm.filter((f) => baseName(f.name) === PLUGIN_FILE);
  const chosen = plugin.length === 1 ? plugin : wasm;
  if (chosen.length === 1) return chosen[0] as TarEntry;
  if (wasm.length === 0) {
    throw new WasmOciError(
      'NOT_WASM',
      files.length === 0
        ? `${what} is a tar archive with no files`
        : `${what} is a tar archive with no .wasm file: ${listed(files)}`,
      { hint },
    );
  }
  throw new WasmOciError('NO_WASM_LAYER', `${what} holds ${wasm.length} .wasm files: ${listed(wasm)}`, {
    hint: `${hint}, and unpack the one you want`,
  });
}

/** Streams one entry's bytes (the one `findWasmEntry` chose, matched by name and size) into `sink`. */
export async function extractEntry(
  open: () => Readable,
  wanted: TarEntry,
  sink: (chunk: Buffer) => void | Promise<void>,
): Promise<void> {
  let found = false;
  await scanTar(unpacked(open), (entry) => {
    if (found || !isRegularFile(entry) || entry.name !== wanted.name || entry.size !== wanted.size) {
      return undefined;
    }
    found = true;
    return sink;
  });
  if (!found) throw new WasmOciError('INVALID_WASM', `the layer changed while ${wanted.name} was unpacked`);
}
