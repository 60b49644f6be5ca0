import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { CredentialSource } from '../auth/authorizer.js';
import type { OutputWitness } from '../content/types.js';
import { WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Reference } from '../reference.js';
import type { RegistryOptions as ConnectOptions } from '../registry/client.js';
import { findTarget, type TrustContext, type TrustedTarget, updateCollection } from './notary/collection.js';
import { type PassphraseSource, TrustDirectory } from './notary/keystore.js';
import { type FileMeta, trustError } from './notary/metadata.js';
import { prepareSigning } from './notary/publish.js';
import { TrustServer } from './notary/server.js';

/**
 * Signing with Notary v1 (TUF), as the original wasm-to-oci offered: `push --sign` publishes a signed
 * target (length, SHA-256, SHA-512 of the module) named after the tag into the trusted collection
 * `<registry host[:port]>/<repository>` on a trust server; `pull --sign` accepts a module only if that
 * target vouches for it. The trust directory uses Notary's layout, so the `notary` CLI can use it too.
 */

export const DEFAULT_TRUST_SERVER = 'https://notary.docker.io';

export interface TrustOptions {
  /**
   * Credentials for the trust server, asked for the server's own host (Docker Hub's for
   * notary.docker.io); anonymous when absent. A registry's explicit credentials never go here.
   */
  credentials?: CredentialSource | undefined;
  /** The trust server (default https://notary.docker.io). */
  server?: string | undefined;
  /** The trust directory: keys and pinned trust data (default ~/.wasm-to-oci). */
  dir?: string | undefined;
  /** Trust only these CA certificates (PEM) for the trust server (`--tlscacert`). */
  tlsCaCert?: string | undefined;
  /** Passphrases of the signing keys; without it, encrypted keys cannot be used or created. */
  passphrases?: PassphraseSource | undefined;
  /** The clock for expiry checks (tests). */
  now?: Date | undefined;
}

export type { TrustedTarget } from './notary/collection.js';
export { type PassphraseRequest, type PassphraseSource, passphraseVariable } from './notary/keystore.js';

/** The trusted collection (GUN) of a registry reference: `host[:port]/repository`. */
export function trustCollection(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`;
}

export function defaultTrustDir(home = homedir()): string {
  return join(home, '.wasm-to-oci');
}

const noPassphrases: PassphraseSource = async () => undefined;

/** Opens the trust server and directory for one collection. */
export function openTrust(
  gun: string,
  trust: TrustOptions,
  connect: ConnectOptions & { signal?: AbortSignal | undefined },
): { ctx: TrustContext & { passphrases: PassphraseSource }; close(): void } {
  const server = new TrustServer(trust.server ?? DEFAULT_TRUST_SERVER, {
    insecure: connect.insecure,
    ca: trust.tlsCaCert ? [trust.tlsCaCert] : connect.ca,
    caOnly: trust.tlsCaCert !== undefined,
    env: connect.env,
    log: connect.log,
    credentials: trust.credentials,
    userAgent: connect.userAgent,
    retry: connect.retry,
    signal: connect.signal,
  });
  const ctx = {
    gun,
    server,
    dir: new TrustDirectory(trust.dir ?? defaultTrustDir()),
    now: trust.now ?? new Date(),
    passphrases: trust.passphrases ?? noPassphrases,
  };
  return { ctx, close: () => server.close() };
}

/** Verifies the collection's trust data and returns the signed target `name`. */
export async function trustedTarget(ctx: TrustContext, name: string): Promise<TrustedTarget> {
  const collection = await updateCollection(ctx);
  if (!collection) {
    throw trustError(
      `no trust data for ${ctx.gun} on ${ctx.server.url.host}: nothing was signed there`,
      'push with the `sign` option first, or check the `server` option',
    );
  }
  const target = await findTarget(ctx, collection, name);
  if (!target) {
    throw trustError(
      `${ctx.gun} has no signed target "${name}" on ${ctx.server.url.host}`,
      'the tag was pushed without the `sign` option',
    );
  }
  return target;
}

function hex(base64: string): string {
  return Buffer.from(base64, 'base64').toString('hex');
}

const WITNESS_HASHES = ['sha256', 'sha384', 'sha512'];

/**
 * Checks a layer descriptor against a signed target before anything is downloaded (length and, for a
 * SHA-256 digest, the hash), and returns a witness that checks the other hashes on the bytes written.
 */
export function targetWitness(target: TrustedTarget, layer: Descriptor, gun: string): OutputWitness {
  const { meta, name } = target;
  const where = `the signed target "${name}" of ${gun}`;
  if (layer.size !== meta.length) {
    throw trustError(
      `the module in the registry has ${layer.size} bytes, ${where} has ${meta.length}`,
      'the tag points to a module that was not signed (replaced after signing, or pushed without the `sign` option)',
    );
  }
  const [algorithm, digestHex] = layer.digest.split(':') as [string, string];
  const signed256 = meta.hashes.sha256;
  if (algorithm === 'sha256' && signed256 && hex(signed256) !== digestHex) {
    throw trustError(
      `the module in the registry (${layer.digest}) is not ${where} (sha256:${hex(signed256)})`,
      'the tag points to a module that was not signed (replaced after signing, or pushed without the `sign` option)',
    );
  }
  const hashes = WITNESS_HASHES.filter(
    (h) => meta.hashes[h] && !(h === 'sha256' && algorithm === 'sha256'),
  ).map((h) => ({ name: h, hash: createHash(h), expected: meta.hashes[h] as string }));
  if (hashes.length === 0 && !(algorithm === 'sha256' && signed256)) {
    throw trustError(`${where} lists no hash this version can check`);
  }
  let length = 0;
  return {
    update(chunk) {
      length += chunk.length;
      for (const h of hashes) h.hash.update(chunk);
    },
    finish() {
      if (length !== meta.length)
        throw trustError(`the module has ${length} bytes, ${where} has ${meta.length}`);
      for (const h of hashes) {
        if (h.hash.digest('base64') !== h.expected) {
          throw trustError(`the module does not match the ${h.name} hash of ${where}`);
        }
      }
    },
  };
}

/** Length, SHA-256 and SHA-512 of a file, streamed (for the target a push signs). */
export async function fileTargetMeta(path: string): Promise<FileMeta> {
  const sha256 = createHash('sha256');
  const sha512 = createHash('sha512');
  let length = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    const b = chunk as Buffer;
    length += b.length;
    sha256.update(b);
    sha512.update(b);
  }
  return { length, hashes: { sha256: sha256.digest('base64'), sha512: sha512.digest('base64') } };
}

/** Gets signing ready for a push: verifies the collection, loads or creates keys (passphrases now). */

export function signedDigest(meta: FileMeta): string {
  const sha256 = meta.hashes.sha256;
  if (!sha256) throw new WasmOciError('TRUST', 'a signed target without sha256');
  return `sha256:${hex(sha256)}`;
}

/** What a signed push signed. */
export interface SignResult {
  /** The trusted collection (GUN). */
  collection: string;
  /** The trust server's URL. */
  server: string;
  /** The signed target names (the tags). */
  targets: string[];
  /** True when this push created the collection (new root, targets and snapshot keys). */
  created: boolean;
}

/** Signing for one push: ready before anything is pushed, published once the tags moved. */
export interface PushSigner {
  /**
   * Signs the module's length and hashes as targets named after `tags`, re-read from `file` and checked
   * against the pushed `layer`. A failure says the tags now point to an unsigned module.
   */
  publish(file: string, layer: Descriptor, tags: string[], references: string[]): Promise<SignResult>;
  close(): void;
}

/**
 * Gets signing ready for a push to `ref` (trust data verified, keys decrypted or created), so that a
 * wrong passphrase or a foreign collection fails before the tag moves.
 */
export async function openPushSigner(
  ref: Reference,
  trust: TrustOptions,
  connect: ConnectOptions & { signal?: AbortSignal | undefined },
): Promise<PushSigner> {
  const gun = trustCollection(ref);
  const { ctx, close } = openTrust(gun, trust, connect);
  let prepared: Awaited<ReturnType<typeof prepareSigning>>;
  try {
    prepared = await prepareSigning(ctx);
  } catch (err) {
    close();
    throw err;
  }
  return {
    close,
    async publish(file, layer, tags, references) {
      try {
        const meta = await fileTargetMeta(file);
        if (signedDigest(meta) !== layer.digest || meta.length !== layer.size) {
          throw new WasmOciError('FILE', `${file} changed while it was pushed: not signing it`);
        }
        await prepared.publish(Object.fromEntries(tags.map((t) => [t, meta])));
      } catch (err) {
        const e =
          err instanceof WasmOciError ? err : new WasmOciError('REGISTRY', String(err), { cause: err });
        throw new WasmOciError(e.code, `pushed ${references.join(', ')} but signing failed: ${e.message}`, {
          cause: err,
          hint: `the tag now points to an unsigned module (a pull with the \`verify\` option refuses it); push with the \`sign\` option again${e.hint ? `; ${e.hint}` : ''}`,
        });
      }
      return { collection: gun, server: ctx.server.url.href, targets: tags, created: prepared.creating };
    },
  };
}

/** The signed target that vouches for a pull, checked before and after the download. */
export interface PullVerifier {
  verified: { collection: string; target: string; role: string; server: string };
  /** Checks the layer against the signed target now (before any download); the witness checks the bytes. */
  witness(layer: Descriptor): () => OutputWitness;
}

/** The verified signed target `tag` of `ref`'s collection: an unsigned tag costs no download. */
export async function openPullVerifier(
  ref: Reference,
  tag: string,
  trust: TrustOptions,
  connect: ConnectOptions & { signal?: AbortSignal | undefined },
): Promise<PullVerifier> {
  const gun = trustCollection(ref);
  const { ctx, close } = openTrust(gun, trust, connect);
  try {
    const target = await trustedTarget(ctx, tag);
    const check = (layer: Descriptor) => targetWitness(target, layer, gun);
    return {
      verified: { collection: gun, target: target.name, role: target.role, server: ctx.server.url.href },
      witness: (layer) => {
        check(layer);
        return () => check(layer);
      },
    };
  } finally {
    close();
  }
}
