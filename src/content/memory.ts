import { Readable } from 'node:stream';
import { WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { Digester, digestOf } from '../oci/digest.js';
import { isManifestMediaType } from '../oci/mediatypes.js';
import {
  type BytesHolder,
  type Content,
  type Ingester,
  type IngestOptions,
  type IngestSource,
  ingestStream,
  type OperationOptions,
  type ReferencePusher,
  type Target,
} from './types.js';
import { readAll, VERIFIED, verified, verifyBytes } from './verify.js';

/**
 * A Target held in memory: where push packs an artifact before copying it to a registry, and the store
 * the tests use. Content is verified on the way in; tags map to descriptors.
 */
export class MemoryStore implements Target, ReferencePusher, Ingester, BytesHolder {
  private readonly blobs = new Map<string, Buffer>();
  private readonly descriptors = new Map<string, Descriptor>();
  private readonly tags = new Map<string, Descriptor>();

  async fetch(desc: Descriptor): Promise<Readable> {
    const bytes = this.blobs.get(desc.digest);
    if (!bytes) throw new WasmOciError('NOT_FOUND', `${desc.digest}: not found in memory store`);
    const stream = Readable.from([bytes]);
    // Verified on the way in: a reader of exactly these bytes need not hash them again.
    if (bytes.length === desc.size) Object.assign(stream, { [VERIFIED]: desc.digest });
    return stream;
  }

  /** Stores bytes this store may keep (not copied), hashed once; returns their descriptor. */
  add(mediaType: string, bytes: Buffer): Descriptor {
    const desc: Descriptor = { mediaType, digest: digestOf(bytes), size: bytes.length };
    this.keep(desc, bytes);
    return desc;
  }

  private keep(desc: Descriptor, bytes: Buffer): void {
    this.blobs.set(desc.digest, bytes);
    this.descriptors.set(desc.digest, desc);
  }

  /** The stored bytes of a blob, verified on the way in (none when the descriptor's size differs). */
  bytesOf(desc: Descriptor): Buffer | undefined {
    const bytes = this.blobs.get(desc.digest);
    return bytes?.length === desc.size ? bytes : undefined;
  }

  /** The stored bytes of a digest, for callers that know the content is small. */
  get(digest: string): Buffer | undefined {
    return this.blobs.get(digest);
  }

  async exists(desc: Descriptor): Promise<boolean> {
    return this.blobs.has(desc.digest);
  }

  async push(desc: Descriptor, content: Content, _options?: OperationOptions): Promise<void> {
    let bytes: Buffer;
    if (content instanceof Uint8Array) {
      verifyBytes(content, desc);
      bytes = Buffer.from(content);
    } else {
      bytes = await readAll(verified(content, desc), Number.MAX_SAFE_INTEGER);
    }
    this.keep(desc, bytes);
  }

  async pushReference(desc: Descriptor, content: Uint8Array, reference: string): Promise<void> {
    await this.push(desc, content);
    await this.tag(desc, reference);
  }

  async ingest(mediaType: string, content: IngestSource, options: IngestOptions = {}): Promise<Descriptor> {
    const digester = new Digester();
    const chunks: Buffer[] = [];
    for await (const chunk of ingestStream(content)) {
      digester.update(chunk as Buffer);
      chunks.push(chunk as Buffer);
    }
    const bytes = Buffer.concat(chunks);
    if (options.size !== undefined && options.size !== bytes.length) {
      throw new WasmOciError('SIZE_MISMATCH', `expected ${options.size} bytes, read ${bytes.length}`);
    }
    const desc: Descriptor = { mediaType, digest: digester.digest(), size: bytes.length };
    this.keep(desc, bytes);
    return desc;
  }

  async resolve(reference: string): Promise<Descriptor> {
    const desc = this.tags.get(reference) ?? this.descriptors.get(reference);
    if (!desc || !isManifestMediaType(desc.mediaType) || !this.blobs.has(desc.digest)) {
      throw new WasmOciError('NOT_FOUND', `${reference}: not found`);
    }
    return desc;
  }

  async tag(desc: Descriptor, reference: string): Promise<void> {
    if (!this.blobs.has(desc.digest)) {
      throw new WasmOciError('NOT_FOUND', `cannot tag ${desc.digest}: content not stored`);
    }
    this.tags.set(reference, desc);
  }
}
