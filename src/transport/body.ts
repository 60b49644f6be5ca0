import type { Readable } from 'node:stream';
import { WasmOciError } from '../errors.js';

/**
 * The one capped reader. Everything small that a server sends (manifests, configs, tokens, tag pages,
 * error bodies, trust metadata) is read through it: a hostile server must not make us allocate without
 * bound. On overflow it either fails (`'fail'`, code TOO_LARGE) or keeps the first `cap` bytes and
 * drops the rest (`'truncate'`, for error bodies that only feed a message).
 */
export async function readCapped(
  stream: Readable,
  cap: number,
  options: { what?: string; overflow?: 'fail' | 'truncate' } = {},
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    if (total + buf.length > cap) {
      stream.destroy();
      if (options.overflow === 'truncate') {
        chunks.push(buf.subarray(0, cap - total));
        total = cap;
        break;
      }
      throw new WasmOciError(
        'TOO_LARGE',
        `${options.what ?? 'content'} is larger than the ${cap}-byte limit`,
      );
    }
    chunks.push(buf);
    total += buf.length;
  }
  return Buffer.concat(chunks, total);
}

/** Reads a (small) body as text, capped and truncated: for messages, never for data. */
export async function readText(body: Readable, cap = 64 * 1024): Promise<string> {
  return (await readCapped(body, cap, { overflow: 'truncate' })).toString('utf8');
}

/** Drains a body that the caller does not need, so the socket goes back to the pool. */
export async function discard(body: Readable): Promise<void> {
  body.resume();
  await new Promise<void>((resolve) => {
    if (body.readableEnded || body.destroyed) resolve();
    else {
      body.once('end', resolve);
      body.once('error', () => resolve());
      body.once('close', resolve);
    }
  });
}
