import { randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, openSync, writeSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { MemoryStore } from './memory.js';
import {
  type ChunkPusher,
  type ChunkWriter,
  type Content,
  type OperationOptions,
  type OutputWitness,
  STREAM_CHUNK,
} from './types.js';
import { isVerifiedFor, toReadable, verified } from './verify.js';

/**
 * A MemoryStore whose large blobs stay in files: push packs the manifest and config in memory and
 * links the module's file, so copy() streams it from disk without holding it in memory.
 */
export class FileBackedStore extends MemoryStore {
  private readonly files = new Map<string, string>();

  /** Serves `desc` from `path`; the bytes are verified against `desc` as they are read. */
  linkFile(desc: Descriptor, path: string): void {
    this.files.set(desc.digest, path);
  }

  override async fetch(desc: Descriptor): Promise<Readable> {
    const path = this.files.get(desc.digest);
    if (path !== undefined) return createReadStream(path, { highWaterMark: STREAM_CHUNK });
    return super.fetch(desc);
  }

  override async exists(desc: Descriptor): Promise<boolean> {
    return this.files.has(desc.digest) || super.exists(desc);
  }
}

/**
 * A ChunkWriter into `temp` with synchronous writes (the chunk's memory is reused as soon as the call
 * returns); commit renames it to `target`, abort removes it.
 */
export function fileWriter(temp: string, target: string, witness?: OutputWitness): ChunkWriter {
  let fd: number;
  try {
    fd = openSync(temp, 'wx');
  } catch (err) {
    throw fileError(err as NodeJS.ErrnoException, target);
  }
  let closed = false;
  const close = () => {
    if (!closed) {
      closed = true;
      closeSync(fd);
    }
  };
  return {
    write: (chunk) => {
      witness?.update(chunk);
      try {
        for (let done = 0; done < chunk.length; ) done += writeSync(fd, chunk, done);
      } catch (err) {
        throw fileError(err as NodeJS.ErrnoException, target);
      }
    },
    commit: async () => {
      try {
        close();
        witness?.finish();
        await rename(temp, target);
      } catch (err) {
        await unlink(temp).catch(() => {});
        if (err instanceof WasmOciError) throw err;
        throw fileError(err as NodeJS.ErrnoException, target);
      }
    },
    abort: async () => {
      try {
        close();
      } finally {
        await unlink(temp).catch(() => {});
      }
    },
  };
}

/** A temporary file beside `target`, so the final rename stays on one file system (and is atomic). */
export function temporaryPath(target: string): string {
  return join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.part`);
}

/**
 * Writes a stream to `path` atomically: into a temporary file beside it, renamed into place only when
 * the stream ended cleanly (for a verified stream: when its digest and size matched). On any failure
 * the temporary file is removed and whatever was at `path` stays untouched.
 */
export async function writeFileAtomic(
  path: string,
  content: Readable,
  signal?: AbortSignal,
  witness?: OutputWitness,
): Promise<void> {
  const temp = temporaryPath(path);
  try {
    const out = createWriteStream(temp, { flags: 'wx', highWaterMark: 4 * STREAM_CHUNK });
    if (witness) {
      const tap = async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          witness.update(chunk);
          yield chunk;
        }
      };
      await pipeline(content, tap, out, { signal });
      witness.finish();
    } else {
      await pipeline(content, out, { signal });
    }
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => {});
    if (err instanceof WasmOciError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.name === 'AbortError') throw new WasmOciError('ABORTED', 'operation cancelled', { cause: err });
    if (e.code && e.syscall) throw fileError(e, path);
    throw err;
  }
}

/** Our error for a failed file-system call, with the path and a readable reason. */
export function fileError(err: NodeJS.ErrnoException, path: string): WasmOciError {
  const reason =
    err.code === 'ENOENT'
      ? 'no such file or directory'
      : err.code === 'EACCES' || err.code === 'EPERM'
        ? 'permission denied'
        : err.code === 'EISDIR'
          ? 'is a directory'
          : err.code === 'ENOSPC'
            ? 'no space left on device'
            : (err.message ?? String(err));
  return new WasmOciError('FILE', `${path}: ${reason}`, { cause: err });
}

/**
 * The destination of a pull: blobs registered with `expect(desc, path)` are written to their file
 * atomically once verified; everything else (the manifest) is kept in memory.
 */
export class FileOutputStore extends MemoryStore implements ChunkPusher {
  private readonly outputs = new Map<string, { path: string; witness?: OutputWitness | undefined }>();

  /**
   * Writes `desc` to `path` (atomically, once verified) when it is copied here; a witness sees the bytes
   * and may still refuse them before the rename.
   */
  expect(desc: Descriptor, path: string, witness?: OutputWitness): void {
    this.outputs.set(desc.digest, { path, witness });
  }

  /**
   * A writer into a temporary file beside the output, with synchronous writes (the chunk's memory is
   * reused as soon as the call returns); commit renames it into place, abort removes it.
   */
  async openWriter(desc: Descriptor): Promise<ChunkWriter> {
    const output = this.outputs.get(desc.digest);
    if (output === undefined) {
      const chunks: Buffer[] = [];
      return {
        write: (chunk) => chunks.push(Buffer.from(chunk)),
        commit: () => this.push(desc, Buffer.concat(chunks)),
        abort: async () => {},
      };
    }
    return fileWriter(temporaryPath(output.path), output.path, output.witness);
  }

  override async exists(desc: Descriptor): Promise<boolean> {
    return !this.outputs.has(desc.digest) && (await super.exists(desc));
  }

  override async push(desc: Descriptor, content: Content, options: OperationOptions = {}): Promise<void> {
    const output = this.outputs.get(desc.digest);
    if (output === undefined) return super.push(desc, content, options);
    const stream = toReadable(content);
    await writeFileAtomic(
      output.path,
      isVerifiedFor(stream, desc) ? stream : verified(stream, desc),
      options.signal,
      output.witness,
    );
  }
}
