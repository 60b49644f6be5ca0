import { createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { keyHash, keyHint } from './keys.js';

/**
 * The seam between what is signed and who signs it. A key pair (`keySigner`, `keyVerifier`) is the only
 * kind today; keyless signing would be another `Signer` (a Fulcio certificate for an ephemeral key, a
 * Rekor entry) that fills `material()` with a certificate and log entries, and another `Verifier` that
 * checks them against a trusted root. The formats (bundle, simple signing) do not change.
 */

/** What a bundle's `verificationMaterial` says about the signer. */
export interface VerificationMaterial {
  /** A key known to the verifier out of band, named by a hint (cosign: base64 SHA-256 of the SPKI). */
  publicKey?: { hint: string };
}

export interface Signer {
  /** Signs `data` (the whole message; the signer hashes it): an ASN.1 DER ECDSA signature. */
  sign(data: Uint8Array): Promise<Uint8Array>;
  /** What a verifier is told about the key. */
  material(): VerificationMaterial;
  /** The verifier of this signer's own signatures (a push checks what it signed). */
  verifier(): Verifier;
}

export interface Verifier {
  /** A short name of the key for messages (its hint). */
  readonly name: string;
  /** True when `signature` is a valid signature of `data` by this key. Never throws on bad input. */
  verify(data: Uint8Array, signature: Uint8Array): boolean;
}

/** A signer holding an ECDSA private key (node:crypto). */
export function keySigner(privateKey: KeyObject): Signer {
  const publicKey = createPublicKey(privateKey);
  const hash = keyHash(publicKey);
  const hint = keyHint(publicKey);
  return {
    sign: async (data) => sign(hash, data, { key: privateKey, dsaEncoding: 'der' }),
    material: () => ({ publicKey: { hint } }),
    verifier: () => keyVerifier(publicKey),
  };
}

/** A verifier for one ECDSA public key. */
export function keyVerifier(publicKey: KeyObject): Verifier {
  const hash = keyHash(publicKey);
  return {
    name: keyHint(publicKey),
    verify(data, signature) {
      try {
        return verify(hash, data, { key: publicKey, dsaEncoding: 'der' }, signature);
      } catch {
        return false;
      }
    },
  };
}
