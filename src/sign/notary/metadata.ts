import { createHash } from 'node:crypto';
import { hasCode, WasmOciError } from '../../errors.js';
import { canonicalJson } from './canonical.js';
import { keyId, type Signature, type TufKey, verifySignature } from './keys.js';

/**
 * TUF metadata as Notary v1 writes it: each file is `{"signed": {...}, "signatures": [...]}`, the
 * signatures made over the canonical JSON of `signed`. Parsing checks the shape strictly (a malformed
 * file is as untrusted as a badly signed one); the checks of the update workflow (signatures,
 * thresholds, versions, expiry, hashes) are the functions below.
 */

export type BaseRole = 'root' | 'targets' | 'snapshot' | 'timestamp';

export interface RoleKeys {
  keyids: string[];
  threshold: number;
}

export interface FileMeta {
  length: number;
  hashes: Record<string, string>;
  custom?: unknown;
}

export interface RootSigned {
  _type: 'Root';
  consistent_snapshot: boolean;
  expires: string;
  keys: Record<string, TufKey>;
  roles: Record<BaseRole, RoleKeys>;
  version: number;
}

export interface DelegatedRole extends RoleKeys {
  name: string;
  paths?: string[];
  path_hash_prefixes?: string[];
}

export interface TargetsSigned {
  _type: 'Targets';
  delegations: { keys: Record<string, TufKey>; roles: DelegatedRole[] };
  expires: string;
  targets: Record<string, FileMeta>;
  version: number;
}

export interface SnapshotSigned {
  _type: 'Snapshot';
  expires: string;
  meta: Record<string, FileMeta>;
  version: number;
}

export interface TimestampSigned {
  _type: 'Timestamp';
  expires: string;
  meta: Record<string, FileMeta>;
  version: number;
}

export interface Envelope<T> {
  /** The bytes as served (what snapshot and timestamp hashes cover). */
  raw: Buffer;
  signed: T;
  signatures: Signature[];
  /** The canonical bytes of `signed`: what the signatures sign. */
  message: Buffer;
}

/** The role a key set belongs to, for verification. */
export interface RoleTrust extends RoleKeys {
  keys: Record<string, TufKey>;
}

const TYPES = { root: 'Root', targets: 'Targets', snapshot: 'Snapshot', timestamp: 'Timestamp' } as const;

/** Why trust data was refused, when a caller may pass over it (an expired or under-signed delegation). */
export type TrustRefusal = 'expired' | 'threshold';

export function trustError(message: string, hint?: string, reason?: TrustRefusal): WasmOciError {
  return new WasmOciError('TRUST', message, {
    ...(hint ? { hint } : {}),
    ...(reason ? { details: { reason } } : {}),
  });
}

/** The refusal reason of a trust error, if it has one. */
export function trustRefusal(err: unknown): TrustRefusal | undefined {
  return hasCode(err, 'TRUST') ? (err.details?.reason as TrustRefusal | undefined) : undefined;
}

type Json = Record<string, unknown>;

/**
 * A property of untrusted metadata, only if the object has it itself: keys such as `constructor` or
 * `__proto__` must not find what every object inherits.
 */
export function own<T>(object: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return object !== undefined && Object.hasOwn(object, key) ? object[key] : undefined;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function check(condition: boolean, what: string, problem: string): asserts condition {
  if (!condition) throw trustError(`${what} is malformed: ${problem}`);
}

function checkInt(v: unknown, what: string, field: string, min = 0): asserts v is number {
  check(typeof v === 'number' && Number.isSafeInteger(v) && v >= min, what, `${field} is not a valid number`);
}

function checkKeys(v: unknown, what: string): asserts v is Record<string, TufKey> {
  check(isObject(v), what, 'keys is not an object');
  for (const [id, key] of Object.entries(v)) {
    check(
      isObject(key) &&
        typeof key.keytype === 'string' &&
        isObject(key.keyval) &&
        typeof key.keyval.public === 'string',
      what,
      `key ${id} is malformed`,
    );
  }
}

function checkRole(v: unknown, what: string, name: string): asserts v is RoleKeys {
  check(isObject(v), what, `role ${name} is missing`);
  check(
    Array.isArray(v.keyids) && v.keyids.every((k) => typeof k === 'string'),
    what,
    `role ${name} has no key IDs`,
  );
  checkInt(v.threshold, what, `the threshold of ${name}`, 1);
}

function checkMetaShape(v: unknown, what: string, name: string): asserts v is FileMeta {
  check(isObject(v), what, `the entry of ${name} is not an object`);
  checkInt(v.length, what, `the length of ${name}`);
  check(
    isObject(v.hashes) && Object.values(v.hashes).every((h) => typeof h === 'string'),
    what,
    `the hashes of ${name} are malformed`,
  );
}

/** RFC 3339 as Go's time.Time reads it: a full date and time with a zone. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function checkExpires(v: unknown, what: string): asserts v is string {
  check(
    typeof v === 'string' && RFC3339.test(v) && !Number.isNaN(Date.parse(v)),
    what,
    'expires is not a date',
  );
}

/**
 * A delegated role's name as Notary allows it: `targets/` then path segments of `[-a-z0-9_]`, none
 * empty, `.` or `..`, at most 255 characters. The name becomes a file name in the trust directory.
 */
export function isDelegationName(name: string): boolean {
  return name.length <= 255 && /^targets(\/[-a-z0-9_]+)+$/.test(name);
}

/**
 * Parses one metadata file of `role` (a delegation parses as targets), checking its shape. `what` names
 * it in messages: "the targets metadata of localhost:5000/hello".
 */
export function parseEnvelope<R extends BaseRole>(
  raw: Buffer,
  role: R,
  what: string,
): Envelope<
  R extends 'root'
    ? RootSigned
    : R extends 'targets'
      ? TargetsSigned
      : R extends 'snapshot'
        ? SnapshotSigned
        : TimestampSigned
> {
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch {
    throw trustError(`${what} is not valid JSON`);
  }
  check(isObject(doc) && isObject(doc.signed), what, 'no signed object');
  check(Array.isArray(doc.signatures), what, 'no signature list');
  const signatures = doc.signatures as unknown[];
  for (const s of signatures) {
    check(
      isObject(s) && typeof s.keyid === 'string' && typeof s.method === 'string' && typeof s.sig === 'string',
      what,
      'a signature is malformed',
    );
  }
  const signed = doc.signed;
  let message: Buffer;
  try {
    message = canonicalJson(signed);
  } catch (err) {
    throw trustError(`${what} is malformed: ${(err as Error).message}`);
  }
  check(signed._type === TYPES[role], what, `it is ${JSON.stringify(signed._type)}, not ${TYPES[role]}`);
  checkInt(signed.version, what, 'version', 1);
  checkExpires(signed.expires, what);
  if (role === 'root') {
    checkKeys(signed.keys, what);
    check(isObject(signed.roles), what, 'roles is not an object');
    for (const name of ['root', 'targets', 'snapshot', 'timestamp'])
      checkRole(own(signed.roles as Record<string, unknown>, name), what, name);
  } else if (role === 'targets') {
    check(isObject(signed.targets), what, 'targets is not an object');
    for (const [name, meta] of Object.entries(signed.targets)) checkMetaShape(meta, what, name);
    const delegations = signed.delegations ?? { keys: {}, roles: [] };
    check(isObject(delegations), what, 'delegations is not an object');
    checkKeys(delegations.keys ?? {}, what);
    check(Array.isArray(delegations.roles ?? []), what, 'delegated roles are not a list');
    for (const r of (delegations.roles ?? []) as unknown[]) {
      check(isObject(r) && typeof r.name === 'string', what, 'a delegated role has no name');
      check(isDelegationName(r.name), what, `the delegated role name ${JSON.stringify(r.name)} is not valid`);
      checkRole(r, what, r.name as string);
      for (const field of ['paths', 'path_hash_prefixes']) {
        const list = r[field];
        check(
          list === undefined ||
            list === null ||
            (Array.isArray(list) && list.every((p) => typeof p === 'string')),
          what,
          `${field} of ${r.name as string} is malformed`,
        );
      }
    }
    signed.delegations = { keys: delegations.keys ?? {}, roles: delegations.roles ?? [] };
  } else {
    check(isObject(signed.meta), what, 'meta is not an object');
    for (const [name, meta] of Object.entries(signed.meta)) checkMetaShape(meta, what, name);
    if (role === 'timestamp') check(signed.meta.snapshot !== undefined, what, 'it lists no snapshot');
  }
  return { raw, signed: signed as never, signatures: signatures as Signature[], message };
}

/**
 * Throws unless at least `threshold` distinct keys of the role signed the envelope. A signature whose
 * key ID is not the ID of the key it names does not count (Notary refuses it outright).
 */
export function verifyThreshold(envelope: Envelope<unknown>, role: RoleTrust, what: string): void {
  const valid = new Set<string>();
  for (const sig of envelope.signatures) {
    if (!role.keyids.includes(sig.keyid) || valid.has(sig.keyid)) continue;
    const key = own(role.keys, sig.keyid);
    if (!key || keyId(key) !== sig.keyid) continue;
    if (verifySignature(sig.method, sig.sig, envelope.message, key)) valid.add(sig.keyid);
  }
  if (valid.size < role.threshold) {
    throw trustError(
      `${what} is not signed by enough of its keys (${valid.size} valid signature${valid.size === 1 ? '' : 's'}, ` +
        `${role.threshold} needed)`,
      'the trust data was altered or signed with keys the collection does not trust',
      'threshold',
    );
  }
}

/** The keys and threshold root metadata gives a base role. */
export function baseRoleTrust(root: RootSigned, role: BaseRole): RoleTrust {
  const r = own(root.roles, role) as (typeof root.roles)[BaseRole];
  return { keyids: r.keyids, threshold: r.threshold, keys: root.keys };
}

export function checkExpiry(signed: { expires: string }, now: Date, what: string): void {
  const expires = new Date(signed.expires);
  if (expires.getTime() <= now.getTime()) {
    throw trustError(
      `${what} expired on ${expires.toISOString()}`,
      'the trust server sent stale data (or the publisher stopped re-signing): it cannot be trusted',
      'expired',
    );
  }
}

export function checkVersion(version: number, trusted: number | undefined, what: string): void {
  if (trusted !== undefined && version < trusted) {
    throw trustError(
      `${what} was rolled back: version ${version} is older than the version ${trusted} trusted before`,
      'the trust server sent old trust data; someone may be replaying it',
    );
  }
}

const HASHES: Record<string, string> = { sha256: 'sha256', sha512: 'sha512', sha384: 'sha384' };

/** Throws unless `bytes` have the length and every known hash `meta` lists (at least one). */
export function checkFileMeta(bytes: Buffer, meta: FileMeta, what: string): void {
  if (bytes.length !== meta.length) {
    throw trustError(`${what} has ${bytes.length} bytes where the signed metadata says ${meta.length}`);
  }
  let checked = 0;
  for (const [name, expected] of Object.entries(meta.hashes)) {
    const algorithm = own(HASHES, name);
    if (!algorithm) continue;
    checked++;
    if (createHash(algorithm).update(bytes).digest('base64') !== expected) {
      throw trustError(`${what} does not match the ${name} hash the signed metadata gives`);
    }
  }
  if (checked === 0) throw trustError(`${what} is listed with no hash this version knows`);
}

/** The version of a cached metadata file, if it parses at all (for rollback checks). */
export function cachedVersion(raw: Buffer | undefined): number | undefined {
  if (!raw) return undefined;
  try {
    const v = (JSON.parse(raw.toString('utf8')) as { signed?: { version?: unknown } }).signed?.version;
    return typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The file metadata of some bytes, as TUF lists it (length, sha256 and sha512 in base64). */
export function fileMeta(bytes: Uint8Array): FileMeta {
  return {
    length: bytes.length,
    hashes: {
      sha256: createHash('sha256').update(bytes).digest('base64'),
      sha512: createHash('sha512').update(bytes).digest('base64'),
    },
  };
}

/** Serialises a signed envelope as Notary does: `signed` (canonical) first, then the signatures. */
export function serializeEnvelope(signed: object, signatures: Signature[]): Buffer {
  return Buffer.concat([
    Buffer.from('{"signed":'),
    canonicalJson(signed),
    Buffer.from(',"signatures":'),
    canonicalJson(signatures),
    Buffer.from('}'),
  ]);
}

/**
 * A time as Go writes it (RFC 3339 with the fraction's trailing zeros dropped: `…:15.16Z`, `…:15Z`).
 * It matters: notary-server re-encodes the snapshot it receives and lists the SHA-256 of its own
 * encoding in the timestamp, so any other spelling makes the timestamp name a snapshot that does not
 * exist.
 */
export function goTime(date: Date): string {
  const ms = date.getUTCMilliseconds();
  const fraction = ms ? `.${String(ms).padStart(3, '0').replace(/0+$/, '')}` : '';
  return `${date.toISOString().slice(0, 19)}${fraction}Z`;
}

/** An expiry `years`/`days` from `now`, as TUF writes it. */
export function expiresIn(now: Date, options: { years?: number; days?: number }): string {
  const d = new Date(now);
  if (options.years) d.setUTCFullYear(d.getUTCFullYear() + options.years);
  if (options.days) d.setUTCDate(d.getUTCDate() + options.days);
  return goTime(d);
}
