import { WasmOciError } from '../../errors.js';
import { parseDigest } from '../../oci/digest.js';
import { type GoJson, type GoValue, goArray, goStruct } from '../../oci/gojson.js';
import { isRecord, jsonObject } from './json.js';
import type { VerificationMaterial } from './signer.js';

/**
 * The Sigstore bundle v0.3 that cosign 3 attaches to an image (sigstore/protobuf-specs
 * `sigstore_bundle.proto`, `envelope.proto`, in their proto3 JSON form): a DSSE envelope whose payload
 * is an in-toto statement naming the manifest digest, with the cosign signing predicate
 * `https://sigstore.dev/cosign/sign/v1`; the envelope's signature covers DSSE's pre-authentication
 * encoding of the payload type and payload. Written by hand, without a transparency-log entry (key-based,
 * offline): `@sigstore/bundle` 5 and `@sigstore/verify` 4 need Node 22.22; the last releases for Node 20
 * (4.0.0, 3.1.0) bundle to 175 KB and take 8 ms to load here, verify against a trusted root's log and
 * timestamp thresholds, and write nothing, while a DSSE envelope over one statement is a few lines.
 */

export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
/** The other spelling of the same version the protobuf specs allow. */
const BUNDLE_MEDIA_TYPE_PARAM = 'application/vnd.dev.sigstore.bundle+json;version=0.3';
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const IN_TOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
const IN_TOTO_STATEMENT_V01 = 'https://in-toto.io/Statement/v0.1';
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
/** Bundles are small JSON documents; a larger blob is not read as one. */
export const MAX_BUNDLE_BYTES = 1024 * 1024;

/** The in-toto statement cosign signs for a manifest: one subject, the digest, an empty predicate. */
export function signStatement(digest: string): Uint8Array {
  const { algorithm, hex } = parseDigest(digest);
  const json = goStruct([
    ['_type', IN_TOTO_STATEMENT_V1],
    ['subject', goArray([goStruct([['digest', goStruct([[algorithm, hex]])]])])],
    ['predicateType', COSIGN_SIGN_PREDICATE],
    ['predicate', goStruct([])],
  ]);
  return Buffer.from(json.json, 'utf8');
}

/** DSSE's pre-authentication encoding: `DSSEv1 <len type> <type> <len body> <body>`, lengths in bytes. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'utf8'),
    type,
    Buffer.from(` ${payload.byteLength} `, 'utf8'),
    payload,
  ]);
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

function materialJson(material: VerificationMaterial): GoJson {
  const fields: Array<[string, GoValue | undefined]> = [];
  if (material.publicKey) fields.push(['publicKey', goStruct([['hint', material.publicKey.hint]])]);
  return goStruct(fields);
}

/** The bundle JSON of a DSSE envelope over `payload`, signed with `signature` (fields in proto order). */
export function buildBundle(
  payload: Uint8Array,
  signature: Uint8Array,
  material: VerificationMaterial,
  payloadType = IN_TOTO_PAYLOAD_TYPE,
): Uint8Array {
  const json = goStruct([
    ['mediaType', BUNDLE_MEDIA_TYPE],
    ['verificationMaterial', materialJson(material)],
    [
      'dsseEnvelope',
      goStruct([
        ['payload', b64(payload)],
        ['payloadType', payloadType],
        ['signatures', goArray([goStruct([['sig', b64(signature)]])])],
      ]),
    ],
  ]);
  return Buffer.from(json.json, 'utf8');
}

export interface ParsedBundle {
  mediaType: string;
  hint?: string | undefined;
  payloadType: string;
  payload: Uint8Array;
  signatures: Array<{ sig: Uint8Array; keyid?: string | undefined }>;
}

function bad(why: string): WasmOciError {
  return new WasmOciError('SIGNATURE_INVALID', `the Sigstore bundle ${why}`);
}

/** proto3 JSON bytes: standard or URL-safe base64, padded or not. */
const PROTO_BYTES = /^[A-Za-z0-9+/_-]*={0,2}$/;

function protoBytes(value: unknown, what: string): Uint8Array {
  if (typeof value !== 'string' || !PROTO_BYTES.test(value) || value.replace(/=+$/, '').length % 4 === 1) {
    throw bad(`has a ${what} that is not base64`);
  }
  return Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** Parses a bundle that carries a DSSE envelope (the only kind an image signature comes in). */
export function parseBundle(bytes: Uint8Array): ParsedBundle {
  const json = jsonObject(bytes, 'SIGNATURE_INVALID', 'the Sigstore bundle', MAX_BUNDLE_BYTES);
  const { mediaType, verificationMaterial, dsseEnvelope } = json;
  if (typeof mediaType !== 'string' || !mediaType.startsWith('application/vnd.dev.sigstore.bundle')) {
    throw bad('has no Sigstore bundle mediaType');
  }
  if (mediaType !== BUNDLE_MEDIA_TYPE && mediaType !== BUNDLE_MEDIA_TYPE_PARAM) {
    throw new WasmOciError(
      'UNSUPPORTED',
      `Sigstore bundle version ${JSON.stringify(mediaType.slice(0, 80))} is not supported`,
      {
        hint: `bundles of ${BUNDLE_MEDIA_TYPE} are read`,
      },
    );
  }
  if (!isRecord(dsseEnvelope))
    throw bad('holds no DSSE envelope (a message signature is not an image signature)');
  const { payload, payloadType, signatures } = dsseEnvelope;
  if (typeof payloadType !== 'string') throw bad('has an envelope without a payloadType');
  if (!Array.isArray(signatures) || signatures.length === 0 || signatures.length > 64) {
    throw bad('has an envelope without signatures');
  }
  const parsed = signatures.map((s) => {
    if (!isRecord(s)) throw bad('has a signature that is not an object');
    if (s.keyid !== undefined && typeof s.keyid !== 'string') throw bad('has a keyid that is not a string');
    return {
      sig: protoBytes(s.sig, 'signature'),
      ...(typeof s.keyid === 'string' ? { keyid: s.keyid } : {}),
    };
  });
  const material = isRecord(verificationMaterial) ? verificationMaterial : undefined;
  const publicKey = material && isRecord(material.publicKey) ? material.publicKey : undefined;
  const hint = typeof publicKey?.hint === 'string' ? publicKey.hint : undefined;
  return { mediaType, hint, payloadType, payload: protoBytes(payload, 'payload'), signatures: parsed };
}

export interface Statement {
  predicateType: string;
  /** The subjects' digests, `<alg>:<hex>` (only algorithms we know; the others are left out). */
  digests: string[];
}

/** Parses an in-toto statement (v1 or v0.1) far enough to read its predicate type and subject digests. */
export function parseStatement(bytes: Uint8Array): Statement {
  const json = jsonObject(bytes, 'SIGNATURE_INVALID', 'the signed in-toto statement');
  const badStatement = (why: string) =>
    new WasmOciError('SIGNATURE_INVALID', `the signed in-toto statement ${why}`);
  if (json._type !== IN_TOTO_STATEMENT_V1 && json._type !== IN_TOTO_STATEMENT_V01) {
    throw badStatement('is of an unknown _type');
  }
  if (typeof json.predicateType !== 'string') throw badStatement('has no predicateType');
  if (!Array.isArray(json.subject)) throw badStatement('has no subject list');
  const digests: string[] = [];
  for (const subject of json.subject.slice(0, 1024)) {
    if (!isRecord(subject) || !isRecord(subject.digest)) continue;
    for (const [algorithm, hex] of Object.entries(subject.digest)) {
      if (typeof hex !== 'string') continue;
      try {
        parseDigest(`${algorithm}:${hex}`);
        digests.push(`${algorithm}:${hex}`);
      } catch {
        // A digest of an algorithm we do not know cannot name our subject; it is skipped.
      }
    }
  }
  return { predicateType: json.predicateType, digests };
}
