import { readFile } from 'node:fs/promises';
import { fileError } from '../content/output.js';
import { WasmOciError } from '../errors.js';
import {
  cosignSign,
  cosignVerify,
  generateCosignKeyPair,
  type PasswordSource,
  type SignatureFound,
  type SignatureWritten,
} from '../ops/cosign.js';
import type { OptionValues } from './args.js';
import { type Context, flag, targetOptions, text } from './common.js';
import { descriptorJson } from './json.js';
import { lineSafe, printResult } from './output.js';
import { ask } from './prompt.js';

/**
 * `generate-key-pair`, `sign` and `verify`: cosign-compatible signatures with a key pair. A bundle of
 * its own (`cosign.cjs`); the signing code itself (`sigstore.cjs`, with scrypt and secretbox) is shared
 * with push and pull, which load it only for `--sign-key` and `--verify-key`.
 */

/**
 * The password of a cosign key, as cosign finds it: `COSIGN_PASSWORD` when it is set (even empty),
 * else a prompt on the terminal (not echoed; a new key's twice). Without either, the error names the
 * variable. Ctrl-C at the prompt exits 130.
 */
export function cosignPassword(ctx: Context): PasswordSource {
  return async ({ confirm }) => {
    const fromEnv = ctx.env.COSIGN_PASSWORD;
    if (fromEnv !== undefined) return fromEnv;
    if (!ctx.io.stdin?.isTTY) {
      throw new WasmOciError('PASSPHRASE', 'no password for the cosign key', {
        hint: 'set COSIGN_PASSWORD (empty for a key without one) or run on a terminal to be asked',
      });
    }
    const question = 'Enter password for private key: ';
    if (!confirm) return ask(ctx.io, question, true, ctx.signal);
    for (let tries = 0; tries < 3; tries++) {
      const first = await ask(ctx.io, question, true, ctx.signal);
      const again = await ask(ctx.io, 'Enter password for private key again: ', true, ctx.signal);
      if (again === first) return first;
      ctx.io.stderr.write('The passwords differ.\n');
    }
    throw new WasmOciError('PASSPHRASE', 'no password chosen for the cosign key');
  };
}

/** Reads a key file named by `--<flag>`. */
export async function readKeyFile(path: string, flagName: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const e = fileError(err as NodeJS.ErrnoException, path);
    e.message = `--${flagName}: ${e.message}`;
    throw e;
  }
}

/** `--key` of sign and verify (the TLS client key of other commands is not offered there). */
async function keyOption(options: OptionValues): Promise<string> {
  const path = text(options, 'key');
  if (path === undefined) {
    throw new WasmOciError('USAGE', 'give the key with --key <file>', {
      hint: 'generate-key-pair writes cosign.key (to sign) and cosign.pub (to verify)',
    });
  }
  return readKeyFile(path, 'key');
}

/** The target of sign and verify: their --key is the cosign key, not a TLS client key. */
function signingTarget(reference: string, options: OptionValues, ctx: Context) {
  return targetOptions(reference, { ...options, key: undefined, cert: undefined }, ctx);
}

export async function runGenerateKeyPair(
  _args: string[],
  options: OptionValues,
  ctx: Context,
): Promise<void> {
  const result = await generateCosignKeyPair({
    prefix: text(options, 'output-key-prefix'),
    force: flag(options, 'force'),
    password: cosignPassword(ctx),
  });
  const json = flag(options, 'json');
  if (!json) ctx.io.stderr.write(`Private key written to ${lineSafe(result.privateKey)}\n`);
  printResult(ctx.io, json, [['Public key', result.publicKey]], result);
}

export async function runSign(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const [reference] = args as [string];
  const privateKey = await keyOption(options);
  const result = await cosignSign({
    ...(await signingTarget(reference, options, ctx)),
    privateKey,
    password: cosignPassword(ctx),
    legacyTag: flag(options, 'legacy-tag'),
  });
  const { signature } = result;
  const where =
    signature.kind === 'legacy'
      ? `the tag ${signature.tag}${signature.existed ? ' (already signed by this key)' : ''}`
      : 'a Sigstore bundle referrer';
  printResult(
    ctx.io,
    flag(options, 'json'),
    [
      ['Signed', result.reference],
      ['Signature', `${signature.manifest.digest} in ${where}`],
    ],
    {
      reference: result.reference,
      subject: descriptorJson(result.subject),
      signature: signatureJson(signature),
    },
  );
}

/** A signature written, in the JSON contract (its manifest a descriptor). */
export function signatureJson(s: SignatureWritten) {
  return {
    kind: s.kind,
    manifest: descriptorJson(s.manifest),
    ...(s.tag !== undefined ? { tag: s.tag } : {}),
    ...(s.existed ? { existed: true } : {}),
  };
}

/** A signature found, in the JSON contract. */
export function foundJson(s: SignatureFound) {
  return {
    kind: s.kind,
    manifest: descriptorJson(s.manifest),
    ...(s.layer ? { layer: descriptorJson(s.layer) } : {}),
    verified: s.verified,
    ...(s.reason !== undefined ? { reason: s.reason } : {}),
  };
}

function signatureLine(s: SignatureFound): string {
  const kind = s.kind === 'bundle' ? 'bundle' : '.sig  ';
  return `${s.verified ? 'OK  ' : 'FAIL'} ${kind} ${s.manifest.digest}${s.reason ? `: ${s.reason}` : ''}`;
}

export async function runVerify(args: string[], options: OptionValues, ctx: Context): Promise<void> {
  const [reference] = args as [string];
  const publicKey = await keyOption(options);
  const result = await cosignVerify({ ...(await signingTarget(reference, options, ctx)), publicKey });
  if (flag(options, 'json')) {
    printResult(ctx.io, true, [], {
      reference: result.reference,
      subject: descriptorJson(result.subject),
      signatures: result.signatures.map(foundJson),
    });
    return;
  }
  const verified = result.signatures.filter((s) => s.verified).length;
  ctx.io.stdout.write(
    `Verified: ${lineSafe(result.reference)} (${verified} of ${result.signatures.length} signatures)\n` +
      result.signatures.map((s) => `  ${lineSafe(signatureLine(s))}\n`).join(''),
  );
}
