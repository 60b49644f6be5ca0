import { randomBytes } from 'node:crypto';
import { chmodSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * The one way a file is replaced: written under a temporary name beside its target, then renamed over
 * it, so a reader sees the old file or the new one, never a part. Every temp-then-rename in the library
 * and the CLI goes through here (the code-cache writer of `cli/main.ts` excepted: `--version` loads
 * nothing but that file).
 *
 * - Name: `.<name>.<12 hex>.part` in the target's directory (same file system, so the rename is
 *   atomic); the random part comes from `randomBytes`, and the file is created exclusively (`wx`).
 * - Mode: given by the caller and applied at creation (the umask still applies), or exactly with
 *   `exact` (fchmod: private keys stay 0600 whatever the umask).
 * - Failure: the temporary file is removed and the error thrown as it came (the caller names it).
 * - No fsync: the rename orders the replacement against other processes and against a crash of this
 *   one, not against a power loss (the files are caches, configs and keys written again on demand).
 */

export interface AtomicOptions {
  /** Mode of the new file (default 0o666, less the umask). */
  mode?: number | undefined;
  /** Sets `mode` exactly, whatever the umask. */
  exact?: boolean | undefined;
}

const PART = /^[0-9a-f]{12}\.part$/;

/** A fresh temporary path beside `target`. */
export function temporaryPath(target: string): string {
  return join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.part`);
}

/** True when `name` (a file name in the target's directory) is a temporary file of `target`. */
export function isTemporaryOf(name: string, target: string): boolean {
  const prefix = `.${basename(target)}.`;
  return name.startsWith(prefix) && PART.test(name.slice(prefix.length));
}

/**
 * Lets `fill` write the temporary file `temp` and say which path it replaces, then renames it there;
 * any failure removes `temp`. For content whose final path is known only once written (a blob stored
 * by the digest its bytes turn out to have).
 */
export async function renameInto(temp: string, fill: () => Promise<string>): Promise<void> {
  try {
    await rename(temp, await fill());
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw err;
  }
}

/** Replaces `target` with `data`. */
export async function writeAtomic(
  target: string,
  data: string | Uint8Array,
  options: AtomicOptions = {},
): Promise<void> {
  const temp = temporaryPath(target);
  await renameInto(temp, async () => {
    const handle = await open(temp, 'wx', options.mode ?? 0o666);
    try {
      if (options.exact) await handle.chmod(options.mode ?? 0o666);
      await handle.writeFile(data);
    } finally {
      await handle.close();
    }
    return target;
  });
}

/** `writeAtomic`, synchronously (for a save at exit). */
export function writeAtomicSync(
  target: string,
  data: string | Uint8Array,
  options: AtomicOptions = {},
): void {
  const temp = temporaryPath(target);
  try {
    writeFileSync(temp, data, { mode: options.mode ?? 0o666, flag: 'wx' });
    if (options.exact) chmodSync(temp, options.mode ?? 0o666);
    renameSync(temp, target);
  } catch (err) {
    try {
      unlinkSync(temp);
    } catch {
      // Never created, or already gone.
    }
    throw err;
  }
}
