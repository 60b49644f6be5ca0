import { stat } from 'node:fs/promises';
import { hasCode, WasmOciError } from '../errors.js';

/**
 * Better hints for a failed command, found by looking at the local file system (loaded only after a
 * failure): a reference that names an existing directory was meant as an OCI layout.
 */
export async function refineError(err: unknown): Promise<unknown> {
  if (!hasCode(err, 'INVALID_REFERENCE')) return err;
  const input = /^invalid reference "(.*)": /.exec(err.message)?.[1];
  if (input === undefined || input === '') return err;
  const info = await stat(input).catch(() => undefined);
  if (!info?.isDirectory()) return err;
  return new WasmOciError(err.code, err.message, {
    cause: err,
    hint: `${input} is a directory: for an OCI image layout, write oci:${input} (or pass --oci-layout)`,
  });
}
