import { type ReadOnlyTarget, resolveIfPresent } from '../content/types.js';
import { fetchManifest } from '../copy.js';
import { sleep, WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';

/**
 * A read-modify-write of what a tag names, where other writers may be doing the same (cosign's
 * `sha256-<hex>.sig` manifest; the referrers index has its own, in content/referrers.ts).
 */

/** One read-modify-write of what a tag names. */
export interface TagUpdate<T> {
  /** What the tag names now (`digest` undefined: no such tag). */
  read(): Promise<{ digest?: string | undefined; value: T }>;
  /** True when `value` already holds our change. */
  has(value: T): boolean;
  /** Writes `value` with our change under the tag. */
  write(value: T): Promise<void>;
}

export interface SettleOptions {
  /** How long the tag must stay unchanged after our write (default 250 ms, plus up to 50 % jitter). */
  settleMs?: number | undefined;
  /** Rounds before giving up (default 24). */
  rounds?: number | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Makes our change to a tag and sees that it stays: a registry has no compare-and-swap, so a writer
 * that read the tag before our write may replace it with a version without our change. After writing,
 * the tag is read again until it holds our change and has not changed for `settleMs` (longer than
 * a read-to-write of another writer takes); a version that lost our change gets it again. A change that
 * was there before we started is left alone. Returns true when this call wrote.
 */
export async function updateTag<T>(update: TagUpdate<T>, options: SettleOptions = {}): Promise<boolean> {
  const settle = options.settleMs ?? 250;
  const rounds = options.rounds ?? 24;
  let wrote = false;
  let seen: string | undefined;
  for (let round = 0; round < rounds; round++) {
    const current = await update.read();
    if (!update.has(current.value)) {
      await update.write(current.value);
      wrote = true;
      seen = undefined;
      continue;
    }
    if (!wrote || (seen !== undefined && current.digest === seen)) return wrote;
    seen = current.digest;
    await sleep(settle * (1 + Math.random() / 2), options.signal);
  }
  throw new WasmOciError('REGISTRY', 'the tag kept changing under other writers: our change may be lost', {
    hint: 'try again when the other writers are done',
  });
}

/** The manifest a tag names, or undefined when the tag does not exist. */
export async function readTagged(
  target: ReadOnlyTarget,
  tag: string,
  signal: AbortSignal | undefined,
): Promise<{ descriptor: Descriptor; bytes: Buffer } | undefined> {
  const descriptor = await resolveIfPresent(target, tag, { signal });
  if (descriptor === undefined) return undefined;
  return { descriptor, bytes: await fetchManifest(target, descriptor, signal) };
}
