import { WasmOciError } from '../../errors.js';
import { parseDigest } from '../../oci/digest.js';
import { goStruct } from '../../oci/gojson.js';
import { isRecord, jsonObject } from './json.js';

/**
 * The simple-signing payload of cosign 1 and 2 (cosign `specs/SIGNATURE_SPEC.md`, "Simple Signing";
 * containers/image's `containers-signature.5`): the bytes of the `.sig` manifest's layer, which the
 * `dev.cosignproject.cosign/signature` annotation signs. Written as Go's encoding/json writes cosign's
 * struct: `{"critical":{"identity":{"docker-reference":…},"image":{"docker-manifest-digest":…},
 * "type":"cosign container image signature"},"optional":null}`.
 */

export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';
/** The payloads we read are small; anything larger is not a cosign payload. */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;

/** The payload for the manifest `digest` of the repository `dockerReference` (`host/repository`). */
export function simpleSigningPayload(dockerReference: string, digest: string): Uint8Array {
  parseDigest(digest);
  const json = goStruct([
    [
      'critical',
      goStruct([
        ['identity', goStruct([['docker-reference', dockerReference]])],
        ['image', goStruct([['docker-manifest-digest', digest]])],
        ['type', COSIGN_SIGNATURE_TYPE],
      ]),
    ],
    ['optional', null],
  ]);
  return Buffer.from(json.json, 'utf8');
}

export interface SimpleSigning {
  dockerReference: string;
  /** `critical.image.docker-manifest-digest`: the manifest the signature is about. */
  digest: string;
  type: string;
}

/**
 * A field the way Go's encoding/json finds it: the exact key, else one that differs only in case
 * (the spec's own example spells `Docker-manifest-digest`).
 */
function field(object: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(object, name)) return object[name];
  const key = Object.keys(object).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : object[key];
}

function bad(why: string): WasmOciError {
  return new WasmOciError('SIGNATURE_INVALID', `the simple-signing payload ${why}`);
}

/** Parses a simple-signing payload: its type must be cosign's and it must name a digest. */
export function parseSimpleSigning(bytes: Uint8Array): SimpleSigning {
  const json = jsonObject(bytes, 'SIGNATURE_INVALID', 'the simple-signing payload', MAX_PAYLOAD_BYTES);
  const critical = field(json, 'critical');
  if (!isRecord(critical)) throw bad('has no critical section');
  const type = field(critical, 'type');
  if (type !== COSIGN_SIGNATURE_TYPE) {
    const shown =
      typeof type === 'string' ? JSON.stringify(type.slice(0, 60)) : `of JSON type ${typeof type}`;
    throw bad(`has the type ${shown}, not a cosign signature's`);
  }
  const image = field(critical, 'image');
  const digest = isRecord(image) ? field(image, 'docker-manifest-digest') : undefined;
  if (typeof digest !== 'string') throw bad('names no docker-manifest-digest');
  try {
    parseDigest(digest);
  } catch (cause) {
    throw new WasmOciError('SIGNATURE_INVALID', 'the simple-signing payload names a malformed digest', {
      cause,
    });
  }
  const identity = field(critical, 'identity');
  const reference = isRecord(identity) ? field(identity, 'docker-reference') : undefined;
  return { dockerReference: typeof reference === 'string' ? reference : '', digest, type };
}
