import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import { MemoryStore } from './memory.js';
import { type OutputPlan, outputWriter, writeOutput } from './output.js';
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
 * The destination of a pull: blobs registered with `expect(desc, path)` are written to their file
 * atomically once verified; everything else (the manifest) is kept in memory.
 */
export class FileOutputStore extends MemoryStore implements ChunkPusher {
  private readonly outputs = new Map<
    string,
    {
      path: string;
      witness?: OutputWitness | undefined;
      mode?: number | undefined;
      prepared?: Promise<OutputPlan> | undefined;
    }
  >();

  /**
   * Writes `desc` to `path` (atomically, once verified) when it is copied here; a witness sees the bytes
   * and may still refuse them before the rename. `prepared` is prepareOutput(path), started earlier.
   */
  expect(
    desc: Descriptor,
    path: string,
    witness?: OutputWitness,
    mode?: number,
    prepared?: Promise<OutputPlan>,
  ): void {
    this.outputs.set(desc.digest, { path, witness, mode, prepared });
  }

  /**
   * A writer for the output (see content/output.ts: atomic beside the file, or through to a device
   * after verification), with synchronous writes; commit puts it in place, abort leaves no trace.
   */
  async openWriter(desc: Descriptor): Promise<ChunkWriter> {
    const output = this.outputs.get(desc.digest);
    if (output === undefined) {
      const chunks: Buffer[] = [];
      return {
        write: (chunk) => {
          chunks.push(Buffer.from(chunk));
        },
        commit: () => this.push(desc, Buffer.concat(chunks)),
        abort: async () => {},
      };
    }
    return outputWriter(output.path, {
      witness: output.witness,
      mode: output.mode,
      prepared: output.prepared,
      size: desc.size,
    });
  }

  override async exists(desc: Descriptor): Promise<boolean> {
    return !this.outputs.has(desc.digest) && (await super.exists(desc));
  }

  override async push(desc: Descriptor, content: Content, options: OperationOptions = {}): Promise<void> {
    const output = this.outputs.get(desc.digest);
    if (output === undefined) return super.push(desc, content, options);
    const stream = toReadable(content);
    await writeOutput(
      output.path,
      isVerifiedFor(stream, desc) ? stream : verified(stream, desc),
      options.signal,
      output.witness,
      output.mode,
      output.prepared,
    );
  }
}
