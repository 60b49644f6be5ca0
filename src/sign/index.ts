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
      'push with --sign first, or check --server',
    );
  }
  const target = await findTarget(ctx, collection, name);
  if (!target) {
    throw trustError(
      `${ctx.gun} has no signed target "${name}" on ${ctx.server.url.host}`,
      'the tag was pushed without --sign',
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
      'the tag points to a module that was not signed (replaced after signing, or pushed without --sign)',
    );
  }
  const [algorithm, digestHex] = layer.digest.split(':') as [string, string];
  const signed256 = meta.hashes.sha256;
  if (algorithm === 'sha256' && signed256 && hex(signed256) !== digestHex) {
    throw trustError(
      `the module in the registry (${layer.digest}) is not ${where} (sha256:${hex(signed256)})`,
      'the tag points to a module that was not signed (replaced after signing, or pushed without --sign)',
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
export { prepareSigning as prepareSign } from './notary/publish.js';

export function signedDigest(meta: FileMeta): string {
  const sha256 = meta.hashes.sha256;
  if (!sha256) throw new WasmOciError('TRUST', 'a signed target without sha256');
  return `sha256:${hex(sha256)}`;
}
