import { hasCode } from '../../errors.js';
import { COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE, pae, parseBundle, parseStatement } from './bundle.js';
import type { Verifier } from './signer.js';
import { parseSimpleSigning } from './simplesigning.js';

/**
 * The checks on one signature, with its bytes already fetched and verified against their digests: the
 * signature must verify over the exact signed bytes, and what they say must name the subject. A
 * malformed signature is a failed check with its reason, never an exception: a registry may hold
 * anything under a signature's name.
 */

export interface SignatureCheck {
  ok: boolean;
  /** Why it failed (one line), when it did. */
  reason?: string | undefined;
}

const failed = (reason: string): SignatureCheck => ({ ok: false, reason });

function reasonOf(err: unknown): string {
  if (hasCode(err)) return err.message;
  throw err;
}

/** A cosign 3 bundle: a DSSE signature by the key over an in-toto statement naming `subject`. */
export function checkBundle(bytes: Uint8Array, subject: string, verifier: Verifier): SignatureCheck {
  try {
    const bundle = parseBundle(bytes);
    if (bundle.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
      return failed(
        `the envelope's payload type is ${JSON.stringify(bundle.payloadType.slice(0, 80))}, not in-toto`,
      );
    }
    const signed = pae(bundle.payloadType, bundle.payload);
    if (!bundle.signatures.some((s) => verifier.verify(signed, s.sig))) {
      return failed(
        bundle.hint !== undefined && bundle.hint !== verifier.name
          ? 'not signed by this key (the bundle names another key)'
          : 'the signature does not verify with this key',
      );
    }
    const statement = parseStatement(bundle.payload);
    if (statement.predicateType !== COSIGN_SIGN_PREDICATE) {
      return failed(`an attestation (${statement.predicateType.slice(0, 100)}), not a signature`);
    }
    if (!statement.digests.includes(subject))
      return failed(`the signed statement names another digest, not ${subject}`);
    return { ok: true };
  } catch (err) {
    return failed(reasonOf(err));
  }
}

/** A cosign 1/2 signature: base64 ASN.1 ECDSA over the payload bytes, a payload naming `subject`. */
export function checkSimpleSigning(
  payload: Uint8Array,
  signature: string | undefined,
  subject: string,
  verifier: Verifier,
): SignatureCheck {
  if (signature === undefined) return failed('the layer has no signature annotation');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(signature) || signature.length === 0) {
    return failed('the signature annotation is not base64');
  }
  if (!verifier.verify(payload, Buffer.from(signature, 'base64'))) {
    return failed('the signature does not verify with this key');
  }
  try {
    const parsed = parseSimpleSigning(payload);
    if (parsed.digest !== subject) return failed(`the signed payload names ${parsed.digest}, not ${subject}`);
    return { ok: true };
  } catch (err) {
    return failed(reasonOf(err));
  }
}
