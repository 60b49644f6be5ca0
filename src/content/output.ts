import {
  closeSync,
  createReadStream,
  createWriteStream,
  fchmodSync,
  ftruncateSync,
  openSync,
  write,
  writev,
} from 'node:fs';
import { lstat, mkdtemp, readdir, readlink, rename, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { errnoError, WasmOciError } from '../errors.js';
import { isTemporaryOf, temporaryPath } from './atomic.js';

import type { ChunkSink, ChunkWriter, OutputWitness } from './types.js';

/**
 * Where verified bytes land, and how, without ever replacing what should be written through:
 *
 * - a new path or a regular file: a temporary file beside it, renamed over it once verified (atomic;
 *   an existing file keeps its mode, and stays untouched when anything fails);
 * - a symbolic link: the same, beside the file the link leads to (the link stays a link);
 * - a character device or a FIFO (`/dev/null`, `/dev/stdout`, a pipe): verified into a private
 *   temporary file first, then copied through (nothing reaches it before the digest matched);
 * - a directory, a socket or a block device: refused.
 *
 * Temporary files are named as `content/atomic.ts` names them (`.<name>.<12 hex>.part`); ones left by a
 * killed process (untouched for an hour) are removed when the same output is written again.
 */

export interface OutputPlan {
  /** The path the bytes go to (a symlink's final target). */
  target: string;
  /** Written through after verification (a device or FIFO), not renamed into place. */
  through: boolean;
  /** Mode of the file being replaced, kept on the new one. */
  mode?: number | undefined;
}

const MAX_LINKS = 40;
const STALE_PART_MS = 60 * 60 * 1000;

/** Our error for a failed file-system call, with the path and a readable reason. */
export function fileError(err: NodeJS.ErrnoException, path: string): WasmOciError {
  return errnoError(err, path);
}

/** A private temporary directory (mode 0700); the caller removes it. */
export async function privateTempDir(prefix = 'wasm-to-oci-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Follows symbolic links to the path that is finally written (a dangling link's target included). */
async function followLinks(path: string): Promise<string> {
  let current = resolve(path);
  for (let hops = 0; hops < MAX_LINKS; hops++) {
    let info: Awaited<ReturnType<typeof lstat>>;
    try {
      info = await lstat(current);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return current;
      throw fileError(err as NodeJS.ErrnoException, path);
    }
    if (!info.isSymbolicLink()) return current;
    const link = await readlink(current);
    current = isAbsolute(link) ? link : resolve(dirname(current), link);
  }
  throw new WasmOciError('FILE', `${path}: too many symbolic links`);
}

/** Decides how an output is written (see the module comment). */
export async function planOutput(path: string): Promise<OutputPlan> {
  const target = await followLinks(path);
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { target, through: false };
    throw fileError(err as NodeJS.ErrnoException, path);
  }
  if (info.isDirectory()) {
    throw new WasmOciError('FILE', `${path} is a directory`, {
      hint: `name a file in it, for example ${join(path, 'module.wasm')}`,
    });
  }
  if (info.isFile()) return { target, through: false, mode: info.mode & 0o7777 };
  if (info.isCharacterDevice() || info.isFIFO()) return { target, through: true };
  throw new WasmOciError(
    'FILE',
    `${path} is ${info.isSocket() ? 'a socket' : 'a block device'}: not written`,
  );
}

/** Removes `.part` files of `target` that a killed process left behind (untouched for an hour). */
export async function sweepStaleParts(target: string, now = Date.now()): Promise<void> {
  const dir = dirname(target);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!isTemporaryOf(name, target)) continue;
    const path = join(dir, name);
    const info = await lstat(path).catch(() => undefined);
    if (info?.isFile() && now - info.mtimeMs > STALE_PART_MS) await unlink(path).catch(() => {});
  }
}

/** Copies a verified private file through to a device or FIFO, then removes the private copy. */
async function writeThrough(temp: string, plan: OutputPlan): Promise<void> {
  try {
    await pipeline(createReadStream(temp), createWriteStream(plan.target, { flags: 'w' }));
  } catch (err) {
    throw fileError(err as NodeJS.ErrnoException, plan.target);
  }
}

/** Bytes gathered before a file write is issued, and how many such writes may be under way at once. */
const SLAB_BYTES = 1024 * 1024;
const SLABS_IN_FLIGHT = 3;

/** The least room a read region offers; with less left, the slab is written out and a new one begun. */
const MIN_REGION = 64 * 1024;

/**
 * Outputs up to this size are filled with zeros as soon as the file is open, while the download is still
 * on its way: the file system's work for new pages (about 2.5 ms per MB on this project's machines,
 * against 0.1 ms to overwrite pages that exist) is then done before the bytes come, not after the last
 * one. Larger outputs are written while they arrive anyway, so the zeros would only double the work.
 */
export const PREFILL_MAX_BYTES = 16 * 1024 * 1024;
const ZERO_PIECE = 64 * 1024;
let zeros: Buffer | undefined;

/** Writes `size` zero bytes from offset 0, in one system call (one 64 KiB buffer, repeated). */
function writeZeros(fd: number, size: number): Promise<void> {
  zeros ??= Buffer.alloc(ZERO_PIECE);
  const pieces: Buffer[] = [];
  for (let at = 0; at < size; at += ZERO_PIECE)
    pieces.push(zeros.subarray(0, Math.min(ZERO_PIECE, size - at)));
  return new Promise((resolve, reject) => {
    // A short write leaves the rest of the pages to the real writes: only speed is lost.
    writev(fd, pieces, 0, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * Positioned writes of gathered chunks, run by the thread pool while the caller goes on (hashing the
 * next bytes): chunks are copied into 1 MiB slabs (or read straight into one, see `region`), each slab
 * written as it fills, at most three at once
 * (bounded memory). `write` returns a promise when all three are under way: the caller sends no more until
 * it settles. The first failed write is kept and thrown by the next call or by `finish`.
 */
class SlabWriter {
  private slab: Buffer = Buffer.allocUnsafe(SLAB_BYTES);
  private filled = 0;
  private position = 0;
  private readonly spare: Buffer[] = [];
  private readonly flying = new Set<Promise<void>>();
  private failure: unknown;
  /** Writes start once this settles (the zeros of a prefill; their failure is the first write's). */
  private ready: Promise<void> = Promise.resolve();
  /** The size zeros were written for: a file that ends shorter is cut to what was written. */
  private readonly prefilled: number | undefined;

  /** `expected`: the size the output will have, when known (see PREFILL_MAX_BYTES). */
  constructor(
    private readonly fd: number,
    expected?: number,
  ) {
    if (expected !== undefined && expected > 0 && expected <= PREFILL_MAX_BYTES) {
      const job = writeZeros(fd, expected).then(
        () => {
          this.flying.delete(job);
        },
        (err: unknown) => {
          this.flying.delete(job);
          this.failure ??= err;
        },
      );
      this.flying.add(job);
      this.ready = job;
      this.prefilled = expected;
    }
  }

  /**
   * The free end of the current slab, for a socket to read into: a chunk written from exactly there is
   * taken in place, without a copy (about 60 ms of a 256 MiB pull).
   */
  region(): Buffer {
    if (this.slab.length - this.filled < MIN_REGION) this.flush();
    return this.slab.subarray(this.filled);
  }

  write(chunk: Buffer): void | Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    if (
      chunk.buffer === this.slab.buffer &&
      chunk.byteOffset === this.slab.byteOffset + this.filled &&
      chunk.length <= this.slab.length - this.filled
    ) {
      this.filled += chunk.length;
      if (this.filled === this.slab.length) this.flush();
      return this.flying.size >= SLABS_IN_FLIGHT ? Promise.race(this.flying) : undefined;
    }
    for (let at = 0; at < chunk.length; ) {
      const n = chunk.copy(this.slab, this.filled, at);
      this.filled += n;
      at += n;
      if (this.filled === this.slab.length) this.flush();
    }
    if (this.flying.size >= SLABS_IN_FLIGHT) return Promise.race(this.flying);
  }

  /** Writes what is gathered and waits for every write; throws the first failure. */
  async finish(): Promise<void> {
    this.flush();
    while (this.flying.size > 0) await Promise.race(this.flying);
    if (this.failure !== undefined) throw this.failure;
    if (this.prefilled !== undefined && this.position < this.prefilled) ftruncateSync(this.fd, this.position);
  }

  private flush(): void {
    if (this.filled === 0) return;
    const slab = this.slab;
    const length = this.filled;
    const position = this.position;
    this.position += length;
    this.slab = this.spare.pop() ?? Buffer.allocUnsafe(SLAB_BYTES);
    this.filled = 0;
    const job = this.ready
      .then(() => writeAll(this.fd, slab, length, position))
      .then(
        () => {
          this.flying.delete(job);
          this.spare.push(slab);
        },
        (err: unknown) => {
          this.flying.delete(job);
          this.failure ??= err;
        },
      );
    this.flying.add(job);
  }
}

/** `length` bytes of `buffer` at `position`, however many writes that takes. */
function writeAll(fd: number, buffer: Buffer, length: number, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const next = (done: number) => {
      if (done >= length) return resolve();
      write(fd, buffer, done, length - done, position + done, (err, n) =>
        err ? reject(err) : next(done + n),
      );
    };
    next(0);
  });
}

/**
 * A ChunkWriter into a new file `temp` (writes overlap with the caller's work, see SlabWriter): commit
 * waits for the writes, closes it, lets the witness refuse it, then runs `finish` (a rename); a failure
 * or an abort runs `cleanup`, so nothing is left behind.
 */
function tempWriter(
  temp: string,
  shown: string,
  options: {
    mode: number;
    keepMode?: number | undefined;
    witness?: OutputWitness | undefined;
    size?: number | undefined;
  },
  finish: () => Promise<void>,
  cleanup: () => Promise<void>,
): ChunkWriter {
  let fd: number;
  try {
    fd = openSync(temp, 'wx', options.mode);
    if (options.keepMode !== undefined) fchmodSync(fd, options.keepMode);
  } catch (err) {
    throw fileError(err as NodeJS.ErrnoException, shown);
  }
  const { witness } = options;
  const slabs = new SlabWriter(fd, options.size);
  let closed = false;
  const close = () => {
    if (!closed) {
      closed = true;
      closeSync(fd);
    }
  };
  const writeChunk: ChunkSink = (chunk) => {
    witness?.update(chunk);
    try {
      return slabs.write(chunk);
    } catch (err) {
      throw fileError(err as NodeJS.ErrnoException, shown);
    }
  };
  writeChunk.region = () => slabs.region();
  return {
    write: writeChunk,
    commit: async () => {
      try {
        await slabs.finish();
        close();
        witness?.finish();
        await finish();
      } catch (err) {
        close();
        await cleanup();
        if (err instanceof WasmOciError) throw err;
        throw fileError(err as NodeJS.ErrnoException, shown);
      }
    },
    abort: async () => {
      try {
        await slabs.finish().catch(() => {});
        close();
      } finally {
        await cleanup();
      }
    },
  };
}

/**
 * A writer into `temp`, renamed to `target` on commit (both in one directory the caller owns); `size`
 * is the size the file will have, when known (a small one is laid out early: PREFILL_MAX_BYTES).
 */
export function fileWriter(temp: string, target: string, mode = 0o666, size?: number): ChunkWriter {
  return tempWriter(
    temp,
    target,
    { mode, size },
    () => rename(temp, target),
    () => unlink(temp).catch(() => {}),
  );
}

/**
 * Plans an output (planOutput) and, for a file, sweeps its stale parts: what outputWriter does before
 * it opens anything. A pull starts it while its manifest is on the way and hands it to outputWriter.
 */
export async function prepareOutput(path: string): Promise<OutputPlan> {
  const plan = await planOutput(path);
  if (!plan.through) await sweepStaleParts(plan.target);
  return plan;
}

/** How outputWriter writes. */
export interface OutputOptions {
  /** Sees every byte and may refuse the output at the end (before it is put in place). */
  witness?: OutputWitness | undefined;
  /** Mode of a new file (default 0o666, less the umask); a replaced file keeps its own. */
  mode?: number | undefined;
  /** prepareOutput(path), when the caller started it earlier. */
  prepared?: Promise<OutputPlan> | undefined;
  /** The size the output will have, when known: a small one is laid out early (PREFILL_MAX_BYTES). */
  size?: number | undefined;
}

/** A ChunkWriter for a user's output file, written as planOutput decides (see the module comment). */
export async function outputWriter(path: string, options: OutputOptions = {}): Promise<ChunkWriter> {
  const { witness, mode = 0o666, size } = options;
  const plan = await (options.prepared ?? prepareOutput(path));
  if (!plan.through) {
    const temp = temporaryPath(plan.target);
    return tempWriter(
      temp,
      path,
      { mode, keepMode: plan.mode, witness, size },
      () => rename(temp, plan.target),
      () => unlink(temp).catch(() => {}),
    );
  }
  const dir = await privateTempDir();
  const temp = join(dir, 'out.part');
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    return tempWriter(
      temp,
      path,
      { mode: 0o600, witness, size },
      async () => {
        await writeThrough(temp, plan);
        await remove();
      },
      remove,
    );
  } catch (err) {
    await remove();
    throw err;
  }
}

/**
 * Writes a stream to an output the same way: nothing is visible at `path` before the stream ended
 * cleanly (for a verified stream: its digest and size matched) and the witness agreed.
 */
export async function writeOutput(
  path: string,
  content: Readable,
  signal?: AbortSignal,
  witness?: OutputWitness,
  mode?: number,
  prepared?: Promise<OutputPlan>,
): Promise<void> {
  const writer = await outputWriter(path, { witness, mode, prepared });
  try {
    for await (const chunk of content) {
      if (signal?.aborted) throw new WasmOciError('ABORTED', 'operation cancelled');
      writer.write(chunk as Buffer);
    }
    await writer.commit();
  } catch (err) {
    await writer.abort();
    if (err instanceof WasmOciError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.name === 'AbortError') throw new WasmOciError('ABORTED', 'operation cancelled', { cause: err });
    if (e.code && e.syscall) throw fileError(e, path);
    throw err;
  }
}
