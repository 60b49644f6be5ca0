import { AsyncLocalStorage } from 'node:async_hooks';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import {
  chmod,
  copyFile,
  type FileHandle,
  mkdir,
  open,
  rename,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { WasmOciError } from '../errors.js';
import { ANNOTATION_REF_NAME, type Descriptor } from '../oci/descriptor.js';
import { Digester, isDigest, parseDigest } from '../oci/digest.js';
import { type ImageIndex, MAX_MANIFEST_BYTES, parseManifest, serializeIndex } from '../oci/manifest.js';
import { isManifestMediaType, MediaType } from '../oci/mediatypes.js';
import { renameInto, temporaryPath, writeAtomic } from './atomic.js';
import { fileError, fileWriter } from './output.js';
import { isFileRange } from './range.js';
import { addReferrer, referrerOf, removeReferrer } from './referrers.js';
import {
  type BlobStat,
  type ChunkFetcher,
  type ChunkPusher,
  type ChunkSink,
  type ChunkWriter,
  type Content,
  type IndexLock,
  type Ingester,
  type IngestOptions,
  type IngestSource,
  ingestStream,
  type ManifestDeleter,
  type OperationOptions,
  type ReferencePusher,
  STREAM_CHUNK,
  type TagLister,
  type Target,
} from './types.js';
import { isVerifiedFor, Verifier, verified } from './verify.js';

/**
 * An OCI image layout directory as a Target (image-spec "image layout"): `oci-layout`, `index.json`
 * with tags as `org.opencontainers.image.ref.name` annotations, and `blobs/<alg>/<hex>`. Blobs are
 * written to a temporary file, verified and renamed into place; `index.json` is updated under a lock
 * file, so two processes tagging the same layout do not lose each other's tags. Reads are verified.
 */

const LAYOUT_FILE = '{"imageLayoutVersion":"1.0.0"}';
const LOCK_STALE_MS = 30_000;
const LOCK_TIMEOUT_MS = 15_000;

export interface LayoutOptions {
  /** Directories 0700 and files 0600 (the blob cache): nobody else on the machine reads them. */
  private?: boolean | undefined;
  /**
   * The layout is only read: a directory that does not exist is NOT_FOUND instead of an empty
   * layout (a layout that is written is created on the first write).
   */
  existing?: boolean | undefined;
  /**
   * List each manifest pushed with a `subject` in its subject's referrers index, the tag `<alg>-<hex>`
   * (default true; the blob cache keeps no tags).
   */
  indexReferrers?: boolean | undefined;
}

export class OciLayoutStore
  implements
    Target,
    ReferencePusher,
    Ingester,
    ChunkPusher,
    ChunkFetcher,
    TagLister,
    BlobStat,
    ManifestDeleter,
    IndexLock
{
  readonly root: string;
  private ready: Promise<void> | undefined;
  private readonly indexReferrers: boolean;
  /** Set inside withLock: a nested call (tag() within lockIndex()) does not wait for itself. */
  private readonly holding = new AsyncLocalStorage<boolean>();
  /** Modes for what the store creates (the umask still applies). */
  private readonly dirMode: number;
  private readonly fileMode: number;
  private readonly existing: boolean;

  constructor(root: string, options: LayoutOptions = {}) {
    this.root = root;
    this.dirMode = options.private ? 0o700 : 0o777;
    this.fileMode = options.private ? 0o600 : 0o666;
    this.existing = options.existing === true;
    this.indexReferrers = options.indexReferrers ?? true;
  }

  /**
   * A failed write of the layout (a full disk, a read-only file system) as a plain FILE error naming
   * the layout, not the temporary name that was being written; other errors pass unchanged.
   */
  private writeError(err: unknown): unknown {
    const e = err as NodeJS.ErrnoException;
    if (err instanceof WasmOciError || typeof e?.code !== 'string' || typeof e.syscall !== 'string')
      return err;
    return fileError(e, this.root);
  }

  private mkdirs(path: string): Promise<string | undefined> {
    return mkdir(path, { recursive: true, mode: this.dirMode }).catch((err: unknown) => {
      throw this.writeError(err);
    });
  }

  /** Creates the layout on first write (an existing one is left as it is). */
  private init(): Promise<void> {
    this.ready ??= (async () => {
      try {
        await this.mkdirs(join(this.root, 'blobs'));
        await writeFile(join(this.root, 'oci-layout'), LAYOUT_FILE, {
          flag: 'wx',
          mode: this.fileMode,
        }).catch((err) => {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        });
        await writeFile(join(this.root, 'index.json'), serializeIndex(emptyIndex()), {
          flag: 'wx',
          mode: this.fileMode,
        }).catch((err) => {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        });
      } catch (err) {
        this.ready = undefined;
        throw fileError(err as NodeJS.ErrnoException, this.root);
      }
    })();
    return this.ready;
  }

  blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.root, 'blobs', algorithm, hex);
  }

  private tempPath(digest: string): string {
    return temporaryPath(this.blobPath(digest));
  }

  async exists(desc: Descriptor): Promise<boolean> {
    try {
      const info = await stat(this.blobPath(desc.digest));
      // Something else where the blob belongs is no blob: a push then fails on it with a clear error.
      return info.isFile() && info.size === desc.size;
    } catch {
      return false;
    }
  }

  /** Fails with a clear error when something other than a regular file stands where a blob goes. */
  private async clearFor(path: string): Promise<void> {
    const info = await stat(path).catch(() => undefined);
    if (info && !info.isFile()) throw notRegular(path);
  }

  /** A verified stream of a blob: it fails unless the file holds exactly the descriptor's bytes. */
  async fetch(desc: Descriptor): Promise<Readable> {
    const path = this.blobPath(desc.digest);
    let handle: FileHandle;
    try {
      handle = await openRegular(path);
    } catch (err) {
      if (err instanceof WasmOciError) throw err;
      throw new WasmOciError('NOT_FOUND', `${desc.digest}: not in the layout ${this.root}`);
    }
    return verified(handle.createReadStream({ highWaterMark: STREAM_CHUNK }), desc);
  }

  /** Reads a blob into a synchronous sink through one reused buffer (verification is the caller's). */
  async fetchInto(desc: Descriptor, sink: ChunkSink): Promise<void> {
    const path = this.blobPath(desc.digest);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      throw new WasmOciError('NOT_FOUND', `${desc.digest}: not in the layout ${this.root}`, { cause: err });
    }
    if (!fstatSync(fd).isFile()) {
      closeSync(fd);
      throw notRegular(path);
    }
    try {
      const buffer = Buffer.allocUnsafe(STREAM_CHUNK);
      for (;;) {
        const n = readSync(fd, buffer, 0, buffer.length, null);
        if (n === 0) break;
        const full = sink(buffer.subarray(0, n));
        // Let other transfers and timers run between chunks (or wait for the sink to have room).
        if (full) await full;
        else await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      closeSync(fd);
    }
  }

  async push(desc: Descriptor, content: Content, options: OperationOptions = {}): Promise<void> {
    await this.writeBlob(desc, content, options);
    if (this.indexReferrers && isManifestMediaType(desc.mediaType) && desc.size <= MAX_MANIFEST_BYTES) {
      const bytes = content instanceof Uint8Array ? content : await readRegular(this.blobPath(desc.digest));
      const referrer = referrerOf(desc, bytes);
      if (referrer) await addReferrer(this, referrer.subject, referrer.entry, options);
    }
  }

  private async writeBlob(desc: Descriptor, content: Content, options: OperationOptions): Promise<void> {
    await this.init();
    if (await this.exists(desc)) {
      if (!(content instanceof Uint8Array)) content.resume();
      return;
    }
    const path = this.blobPath(desc.digest);
    await this.mkdirs(dirname(path));
    await this.clearFor(path);
    const temp = this.tempPath(desc.digest);
    await renameInto(temp, async () => {
      if (content instanceof Uint8Array) {
        const verifier = new Verifier(desc);
        verifier.update(content);
        verifier.finish();
        await writeFile(temp, content, { flag: 'wx', mode: this.fileMode });
      } else {
        const stream = isVerifiedFor(content, desc) ? content : verified(content, desc);
        await pipeline(stream, (await open(temp, 'wx', this.fileMode)).createWriteStream(), {
          signal: options.signal,
        });
      }
      return path;
    }).catch((err: unknown) => {
      throw this.writeError(err);
    });
  }

  async openWriter(desc: Descriptor): Promise<ChunkWriter> {
    await this.init();
    const path = this.blobPath(desc.digest);
    await this.mkdirs(dirname(path));
    await this.clearFor(path);
    return fileWriter(this.tempPath(desc.digest), path, this.fileMode, desc.size);
  }

  /** Stores content of unknown digest, hashing it as it is written. */
  async ingest(mediaType: string, content: IngestSource, options: IngestOptions = {}): Promise<Descriptor> {
    await this.init();
    const digester = new Digester();
    let size = 0;
    // The digest is known only once the bytes are in: the temporary file waits in blobs/.
    const temp = temporaryPath(join(this.root, 'blobs', 'ingest'));
    const observe = (chunk: Buffer) => {
      digester.update(chunk);
      size += chunk.length;
    };
    const stream = isFileRange(content)
      ? ingestStream({
          ...content,
          observe: (chunk) => {
            content.observe?.(chunk);
            observe(chunk);
          },
        })
      : ingestStream(content);
    if (!isFileRange(content)) stream.on('data', observe);
    let desc: Descriptor | undefined;
    await renameInto(temp, async () => {
      await pipeline(stream, (await open(temp, 'wx', this.fileMode)).createWriteStream());
      if (options.size !== undefined && size !== options.size) {
        throw new WasmOciError('SIZE_MISMATCH', `expected ${options.size} bytes, read ${size}`);
      }
      desc = { mediaType, digest: digester.digest(), size };
      const path = this.blobPath(desc.digest);
      await this.mkdirs(dirname(path));
      if (!(await this.exists(desc))) await this.clearFor(path);
      return path;
    }).catch((err: unknown) => {
      throw this.writeError(err);
    });
    return desc as Descriptor;
  }

  async pushReference(desc: Descriptor, content: Uint8Array, reference: string): Promise<void> {
    await this.push(desc, content);
    await this.tag(desc, reference);
  }

  /** The layout's index (an empty one when the layout does not exist yet). */
  async index(): Promise<ImageIndex> {
    let bytes: Buffer;
    try {
      bytes = await readRegular(join(this.root, 'index.json'));
    } catch (err) {
      if (err instanceof WasmOciError) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw fileError(err as NodeJS.ErrnoException, join(this.root, 'index.json'));
      if (this.existing && !(await stat(this.root).catch(() => undefined))?.isDirectory()) {
        throw new WasmOciError('NOT_FOUND', `no OCI layout at ${this.root}`, {
          hint: 'oci:<dir> names an OCI image-layout directory (oci-layout, index.json, blobs/); check the path',
        });
      }
      return emptyIndex();
    }
    const parsed = parseManifest(bytes, MediaType.ociIndex);
    if (parsed.kind !== 'index') {
      throw new WasmOciError('INVALID_MANIFEST', `${join(this.root, 'index.json')} is not an image index`);
    }
    return parsed.index;
  }

  /** The tags in one page (a layout's index is read whole). */
  async *tagPages(): AsyncGenerator<string[]> {
    yield await this.tags();
  }

  /** Tags, in index order. */
  async tags(): Promise<string[]> {
    return (await this.index()).manifests
      .map((m) => m.annotations?.[ANNOTATION_REF_NAME])
      .filter((t): t is string => t !== undefined);
  }

  async resolve(reference: string): Promise<Descriptor> {
    const index = await this.index();
    const found = index.manifests.find((m) =>
      isDigest(reference) ? m.digest === reference : m.annotations?.[ANNOTATION_REF_NAME] === reference,
    );
    if (found) {
      const { annotations: _a, ...desc } = found;
      return desc;
    }
    let blob = false;
    if (isDigest(reference)) {
      // A manifest that is stored but not listed in index.json (a child of an index, say).
      try {
        const info = await stat(this.blobPath(reference));
        blob = info.isFile();
        if (blob && info.size <= MAX_MANIFEST_BYTES) {
          const bytes = await readRegular(this.blobPath(reference));
          const parsed = parseManifest(bytes);
          return { mediaType: parsed.mediaType, digest: reference, size: bytes.length };
        }
      } catch {
        // Fall through to not found (or to "a blob", when the file is there but no manifest).
      }
    }
    if (blob) {
      throw new WasmOciError(
        'NOT_FOUND',
        `${this.root}@${reference} is a blob (a layer or a config), not a manifest`,
        {
          hint: `pull and inspect take a manifest; to copy the blob itself use: blob get oci:${this.root}@${reference} -o <file>`,
          details: { blob: true },
        },
      );
    }
    throw new WasmOciError('NOT_FOUND', `${this.root}: nothing tagged or stored as ${reference}`, {
      hint: isDigest(reference)
        ? undefined
        : `the layout's tags: ${(await this.tags()).join(', ') || '(none)'}`,
    });
  }

  async tag(desc: Descriptor, reference: string): Promise<void> {
    if (!isManifestMediaType(desc.mediaType)) {
      throw new WasmOciError('USAGE', `only manifests can be tagged, not ${desc.mediaType}`);
    }
    if (!(await this.exists(desc))) {
      throw new WasmOciError('NOT_FOUND', `cannot tag ${desc.digest}: not in the layout ${this.root}`);
    }
    await this.init();
    await this.withLock(async () => {
      const index = await this.index();
      const entry: Descriptor = {
        mediaType: desc.mediaType,
        digest: desc.digest,
        size: desc.size,
        ...(desc.artifactType ? { artifactType: desc.artifactType } : {}),
        ...(desc.platform ? { platform: desc.platform } : {}),
        annotations: { ...(desc.annotations ?? {}), [ANNOTATION_REF_NAME]: reference },
      };
      const manifests = index.manifests.filter((m) => m.annotations?.[ANNOTATION_REF_NAME] !== reference);
      manifests.push(entry);
      await this.writeIndex({ ...index, manifests });
    });
  }

  /** Adds a blob from a file already verified against `desc` (a copy, cloned where the file system can). */
  async importFile(desc: Descriptor, path: string): Promise<void> {
    await this.init();
    if (await this.exists(desc)) return;
    const target = this.blobPath(desc.digest);
    await this.mkdirs(dirname(target));
    await this.clearFor(target);
    const temp = this.tempPath(desc.digest);
    try {
      await copyFile(path, temp, constants.COPYFILE_FICLONE);
      await chmod(temp, this.fileMode);
      await rename(temp, target);
    } catch (err) {
      await unlink(temp).catch(() => {});
      throw fileError(err as NodeJS.ErrnoException, target);
    }
  }

  /** The descriptor of a stored blob. */
  async blobDescriptor(digest: string): Promise<Descriptor> {
    try {
      return {
        mediaType: 'application/octet-stream',
        digest,
        size: (await stat(this.blobPath(digest))).size,
      };
    } catch {
      throw new WasmOciError('NOT_FOUND', `${digest}: not in the layout ${this.root}`);
    }
  }

  /**
   * Removes every index entry of a manifest, and its entry in its subject's referrers index when it has
   * a subject (its blobs stay until garbage-collected).
   */
  async deleteManifest(digest: string): Promise<void> {
    let unreferred = false;
    const bytes = await readRegular(this.blobPath(digest)).catch(() => undefined);
    if (bytes && bytes.length <= MAX_MANIFEST_BYTES) {
      const referrer = referrerOf({ mediaType: '', digest, size: bytes.length }, bytes);
      if (referrer) unreferred = await removeReferrer(this, referrer.subject, digest);
    }
    await this.withLock(async () => {
      const index = await this.index();
      const manifests = index.manifests.filter((m) => m.digest !== digest);
      if (manifests.length === index.manifests.length) {
        if (unreferred) return;
        throw new WasmOciError('NOT_FOUND', `${digest} is not listed in ${this.root}/index.json`);
      }
      await this.writeIndex({ ...index, manifests });
    });
  }

  /** Replaces index.json atomically (callers hold the lock). */
  private async writeIndex(index: ImageIndex): Promise<void> {
    await writeAtomic(join(this.root, 'index.json'), serializeIndex(index), { mode: this.fileMode }).catch(
      (err: unknown) => {
        throw this.writeError(err);
      },
    );
  }

  /**
   * Runs `fn` holding `index.json.lock` (created exclusively). A lock older than 30 s is taken to be
   * left by a crashed process and broken.
   */
  async lockIndex<T>(fn: () => Promise<T>): Promise<T> {
    await this.init();
    return this.withLock(fn);
  }

  private async withLock<T>(fn: () => Promise<T>): Promise<T> {
    if (this.holding.getStore()) return fn();
    const lock = join(this.root, 'index.json.lock');
    const started = Date.now();
    for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
      try {
        await writeFile(lock, String(Date.now()), { flag: 'wx', mode: this.fileMode });
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
          throw fileError(err as NodeJS.ErrnoException, lock);
        const age = await stat(lock).then(
          (s) => Date.now() - s.mtimeMs,
          () => 0,
        );
        if (age > LOCK_STALE_MS) await unlink(lock).catch(() => {});
        else if (Date.now() - started > LOCK_TIMEOUT_MS) {
          throw new WasmOciError('FILE', `${lock} is held by another process`, {
            hint: 'if no other wasm-to-oci is running, remove the lock file',
          });
        } else await sleep(wait * (0.5 + Math.random()));
      }
    }
    try {
      return await this.holding.run(true, fn);
    } finally {
      await unlink(lock).catch(() => {});
    }
  }
}

function emptyIndex(): ImageIndex {
  return { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
}

/**
 * Opens a file of the layout for reading, refusing anything but a regular file: a FIFO or a device put
 * where a blob or index.json belongs would block the read forever or never end, and a directory fails
 * with EISDIR. O_NONBLOCK makes the open itself return at once for a FIFO (it has no effect on files).
 */
async function openRegular(path: string): Promise<FileHandle> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if ((await handle.stat()).isFile()) return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
  await handle.close();
  throw notRegular(path);
}

function notRegular(path: string): WasmOciError {
  return new WasmOciError('FILE', `${path}: not a regular file`, {
    hint: 'a layout holds regular files only; remove what is there or use another layout',
  });
}

/** A layout file's whole content (index.json, a manifest), read from a regular file only. */
async function readRegular(path: string): Promise<Buffer> {
  const handle = await openRegular(path);
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}
