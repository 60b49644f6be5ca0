import { WasmOciError } from '../errors.js';
import { type PassphraseSource, passphraseVariable } from '../sign/index.js';
import type { Context } from './common.js';
import { ask } from './prompt.js';

/** Passphrases for new keys typed on a terminal must be at least this long (as Notary asks). */
const MIN_LENGTH = 8;

/**
 * Signing-key passphrases as the original tool found them: `SIGNY_ROOT_PASSPHRASE`,
 * `SIGNY_TARGETS_PASSPHRASE`, `SIGNY_SNAPSHOT_PASSPHRASE`, `SIGNY_DELEGATION_PASSPHRASE` (delegation
 * roles), else a prompt on the terminal (not echoed; new keys asked twice). Without a terminal and
 * without the variable, the error names the variable to set.
 */
export function passphraseSource(ctx: Context): PassphraseSource {
  return async (request) => {
    const variable = `SIGNY_${passphraseVariable(request.role)}_PASSPHRASE`;
    const fromEnv = ctx.env[variable];
    if (fromEnv) return request.attempt === 1 ? fromEnv : undefined;
    const what =
      request.role === 'root'
        ? 'the root key'
        : `the ${request.role} key of ${request.gun ?? 'the collection'}`;
    if (!ctx.io.stdin?.isTTY) {
      if (request.attempt > 1) return undefined;
      throw new WasmOciError('PASSPHRASE', `no passphrase for ${what}`, {
        hint: `set ${variable} or run on a terminal to be asked`,
      });
    }
    if (!request.create) {
      if (request.attempt > 1) ctx.io.stderr.write('Wrong passphrase, try again.\n');
      return ask(ctx.io, `Passphrase for ${what} (${request.keyId.slice(0, 7)}): `, true, ctx.signal);
    }
    for (let tries = 0; tries < 3; tries++) {
      const first = await ask(
        ctx.io,
        `Enter a passphrase for the new ${what.replace(/^the /, '')}: `,
        true,
        ctx.signal,
      );
      if (first.length < MIN_LENGTH) {
        ctx.io.stderr.write(`The passphrase must have at least ${MIN_LENGTH} characters.\n`);
        continue;
      }
      const again = await ask(ctx.io, 'Repeat the passphrase: ', true, ctx.signal);
      if (again === first) return first;
      ctx.io.stderr.write('The passphrases differ.\n');
    }
    throw new WasmOciError('PASSPHRASE', `no passphrase chosen for ${what}`);
  };
}
