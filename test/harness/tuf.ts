import { createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { canonicalJson } from '../../src/sign/notary/canonical.js';
import {
  certificateKey,
  generateEcdsaKey,
  keyId,
  rootCertificate,
  type Signature,
  signEcdsa,
  type TufKey,
  tufPublicKey,
} from '../../src/sign/notary/keys.js';
import { serializeEnvelope } from '../../src/sign/notary/metadata.js';
import type { TrustServer } from '../../src/sign/notary/server.js';

/**
 * The pieces of TUF collections built in memory, for the suites of the client workflow
 * (`sign/notary/collection.test.ts`, `workflow.test.ts`): role keys, signed envelopes and a fake trust
 * server answering metadata by name.
 */

/** The collection the suites sign for, and the time they verify at. */
export const GUN = 'registry.test:5000/team/app';
export const NOW = new Date('2026-11-28T12:00:00Z');

export interface Signer {
  id: string;
  pub: TufKey;
  key: KeyObject;
  method: 'ecdsa' | 'eddsa';
}

export function ecdsaSigner(): Signer {
  const key = generateEcdsaKey();
  const pub = tufPublicKey(createPublicKey(key));
  return { id: keyId(pub), pub, key, method: 'ecdsa' };
}

export function ed25519Signer(): Signer {
  const key = generateKeyPairSync('ed25519').privateKey;
  const pub = tufPublicKey(createPublicKey(key));
  return { id: keyId(pub), pub, key, method: 'eddsa' };
}

/** A root key: an ecdsa-x509 key whose self-signed certificate names `gun`. */
export function rootSigner(gun = GUN, options: { now?: Date; years?: number } = {}): Signer {
  const key = generateEcdsaKey();
  const pub = certificateKey(
    rootCertificate(gun, key, { now: options.now ?? NOW, years: options.years ?? 10 }),
  );
  return { id: keyId(pub), pub, key, method: 'ecdsa' };
}

/** The envelope of `signed` with one signature per signer. */
export function signWith(signed: object, signers: Signer[]): Buffer {
  const message = canonicalJson(signed);
  const signatures: Signature[] = signers.map((s) => ({
    keyid: s.id,
    method: s.method,
    sig: s.method === 'eddsa' ? sign(null, message, s.key).toString('base64') : signEcdsa(message, s.key),
  }));
  return serializeEnvelope(signed, signatures);
}

/**
 * A trust server that serves `files` by metadata name (undefined: none). With `gun`, a request for
 * another collection fails; `log` gets every name asked for.
 */
export function fakeTrustServer(
  files: Map<string, Buffer>,
  options: { url?: string; gun?: string; log?: string[] } = {},
): TrustServer {
  return {
    url: new URL(options.url ?? 'https://trust.test/'),
    metadata: async (gun: string, name: string) => {
      if (options.gun !== undefined && gun !== options.gun)
        throw new Error(`asked for the collection ${gun}`);
      options.log?.push(name);
      return files.get(name);
    },
  } as unknown as TrustServer;
}
