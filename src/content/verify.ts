import { Readable, Transform, type TransformCallback } from 'node:stream';
import { WasmOciError } from '../errors.js';
import { type Descriptor, describe } from '../oci/descriptor.js';
import { Digester, parseDigest } from '../oci/digest.js';
import { readCapped } from '../transport/body.js';
import { type Content, STREAM_CHUNK } from './types.js';

/**
 * Marks a stream whose bytes are checked against a digest on their way through (a VerifyingStream, or
 * a pass-through stream fed by one), so a store need not hash them a second time.
 */
export const VERIFIED = Symbol('wasm-to-oci.verified');

/**
 * Hashes and counts content as it arrives and checks it against a descriptor: `update` fails as soon
 * as the content overruns the size, `finish` fails on a short count or a wrong digest.
 */
export class Verifier {
  private readonly digester: Digester;
  private count = 0;

  constructor(readonly desc: Descriptor) {
    this.digester = new Digester(parseDigest(desc.digest).algorithm);
  }

  update(chunk: Uint8Array): void {
    this.count += chunk.length;
    if (this.count > this.desc.size) throw sizeMismatch(this.desc, `more than ${this.desc.size}`);
    this.digester.update(chunk);
  }

  finish(): void {
    if (this.count !== this.desc.size) throw sizeMismatch(this.desc, String(this.count));
    const actual = this.digester.digest();
    if (actual !== this.desc.digest) throw digestMismatch(this.desc, actual);
  }
}

/**
 * A pass-through stream that verifies what flows through it and fails the stream when the content
 * overruns the descriptor's size, or ends with the wrong size or digest. Nothing downstream may treat
 * the bytes as good before this stream has ended without error.
 */
export class VerifyingStream extends Transform {
  private readonly verifier: Verifier;
  readonly [VERIFIED]: string;

  constructor(readonly desc: Descriptor) {
    super({ highWaterMark: STREAM_CHUNK });
    this.verifier = new Verifier(desc);
    this[VERIFIED] = desc.digest;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.verifier.update(chunk);
      callback(null, chunk);
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.verifier.finish();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }
}

function sizeMismatch(desc: Descriptor, got: string): WasmOciError {
  return new WasmOciError('SIZE_MISMATCH', `${describe(desc)}: expected ${desc.size} bytes, got ${got}`, {
    hint: 'the content changed or was truncated in transit; try again',
  });
}

function digestMismatch(desc: Descriptor, actual: string): WasmOciError {
  return new WasmOciError(
    'DIGEST_MISMATCH',
    `${describe(desc)}: content digest ${actual} does not match ${desc.digest}`,
    {
      hint: 'the content is corrupt or was replaced; it was not used',
      details: { expected: desc.digest, actual },
    },
  );
}

/** Wraps a raw stream so it fails unless it delivers exactly the descriptor's bytes. */
export function verified(stream: Readable, desc: Descriptor): Readable {
  const verify = new VerifyingStream(desc);
  stream.on('error', (err) => verify.destroy(err));
  return stream.pipe(verify);
}

/** True when `stream` is already a verifier for exactly `desc`, so a store need not hash it twice. */
export function isVerifiedFor(stream: Readable, desc: Descriptor): boolean {
  return (stream as Readable & { [VERIFIED]?: string })[VERIFIED] === desc.digest;
}

/** Checks bytes in memory against a descriptor. */
export function verifyBytes(bytes: Uint8Array, desc: Descriptor): void {
  const verifier = new Verifier(desc);
  if (bytes.byteLength > desc.size) throw sizeMismatch(desc, String(bytes.byteLength));
  verifier.update(bytes);
  verifier.finish();
}

/**
 * Reads a whole stream into memory, refusing more than `cap` bytes (manifests and configs are capped
 * before parsing: a hostile registry must not make us allocate without bound). The one capped reader
 * of transport/body.ts, failing on overflow.
 */
export function readAll(stream: Readable, cap: number, what = 'content'): Promise<Buffer> {
  return readCapped(stream, cap, { what });
}

/** Reads a descriptor's content fully, verified and capped at the descriptor's size and `cap`. */
export async function readVerified(stream: Readable, desc: Descriptor, cap: number): Promise<Buffer> {
  if (desc.size > cap) {
    stream.destroy();
    throw new WasmOciError(
      'TOO_LARGE',
      `${describe(desc)} is ${desc.size} bytes, over the ${cap}-byte limit`,
    );
  }
  return readAll(verified(stream, desc), cap, describe(desc));
}

export function toReadable(content: Content): Readable {
  return content instanceof Uint8Array ? Readable.from([Buffer.from(content)]) : content;
}
