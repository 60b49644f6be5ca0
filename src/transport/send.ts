import * as fs from 'node:fs';
import type { FileRange } from '../content/range.js';
import { WasmOciError } from '../errors.js';

/**
 * Request bodies of known length, written to whatever carries them (a node:http request or a raw
 * socket) in order, with every completed write reported (the idle timer and the rate window count
 * it). Uploads go out in pieces, so a slow upload of a large body keeps showing progress, and a file
 * range is read through a few reused buffers (fresh memory costs ~1.2 ms per MiB in page faults here).
 */

/** Uploads go out in pieces of this size, each completed write counting as activity. */
export const WRITE_PIECE = 1024 * 1024;
const FILE_BUFFERS = 4;

/** Where body bytes go: `write` calls back once the bytes are handed on, `end` after the last. */
export interface BodyOut {
  write(chunk: Uint8Array, done: () => void): void;
  end(): void;
  /** True once the carrier is gone (failed, or the answer came early): nothing more is sent. */
  readonly stopped: boolean;
}

/** Writes `bytes` in pieces, then ends. */
export function sendBytes(bytes: Uint8Array, out: BodyOut, moved: (n: number) => void): void {
  let offset = 0;
  const next = () => {
    if (out.stopped) return;
    if (offset >= bytes.byteLength) {
      out.end();
      return;
    }
    const piece = bytes.subarray(offset, offset + WRITE_PIECE);
    offset += piece.byteLength;
    out.write(piece, () => {
      moved(piece.byteLength);
      next();
    });
  };
  next();
}

/**
 * Reads a file range into a small pool of buffers and writes it in order, then ends; `observe` sees
 * each chunk before it goes. A read error, a file shorter than the range or a throwing observer fail
 * the request through `fail`.
 */
export function sendFileRange(
  range: FileRange,
  out: BodyOut,
  moved: (n: number) => void,
  fail: (err: unknown) => void,
): void {
  const free: Buffer[] = Array.from({ length: FILE_BUFFERS }, () => Buffer.allocUnsafe(WRITE_PIECE));
  let position = range.start;
  let left = range.length;
  let reading = false;
  let writing = 0;
  if (left === 0) {
    out.end();
    return;
  }
  const pump = () => {
    if (reading || left === 0 || free.length === 0 || out.stopped) return;
    const buffer = free.pop() as Buffer;
    reading = true;
    fs.read(range.fd, buffer, 0, Math.min(buffer.length, left), position, (err, n) => {
      reading = false;
      if (out.stopped) return;
      if (err || n === 0) {
        fail(
          err
            ? new WasmOciError('FILE', `reading the file to upload failed: ${err.message}`, { cause: err })
            : new WasmOciError('FILE', 'the file to upload is shorter than expected', {
                hint: 'the file changed while it was read',
              }),
        );
        return;
      }
      const chunk = buffer.subarray(0, n);
      position += n;
      left -= n;
      try {
        range.observe?.(chunk);
      } catch (error) {
        fail(error);
        return;
      }
      writing++;
      // The buffer is reused once the carrier has taken it.
      out.write(chunk, () => {
        writing--;
        moved(n);
        free.push(buffer);
        if (left === 0 && writing === 0) out.end();
        else pump();
      });
      pump();
    });
  };
  pump();
}
