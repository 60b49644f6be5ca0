import { createHash } from 'node:crypto';
import { WasmOciError } from '../../errors.js';
import { keyCertificate, rootCertificateProblem } from './keys.js';
import type { TrustDirectory } from './keystore.js';
import {
  baseRoleTrust,
  cachedVersion,
  checkExpiry,
  checkFileMeta,
  checkVersion,
  type DelegatedRole,
  type Envelope,
  type FileMeta,
  own,
  parseEnvelope,
  type RoleTrust,
  type RootSigned,
  type SnapshotSigned,
  type TargetsSigned,
  type TimestampSigned,
  trustError,
  trustRefusal,
  verifyThreshold,
} from './metadata.js';
import type { TrustServer } from './server.js';

/**
 * The TUF client workflow for one trusted collection (GUN), as Notary v1 clients run it:
 *
 * 1. root: pinned on first use (trust on first use: the root must be valid for the GUN and signed by
 *    its own root keys); later roots are accepted only through rotation, each version signed by the
 *    previous root's keys and by its own, never an older version;
 * 2. timestamp, snapshot, targets: each signed by a threshold of the keys the root gives its role, not
 *    expired, not older than the version trusted before, and snapshot and targets exactly the bytes
 *    (length and hashes) the metadata above them lists;
 * 3. delegations (`targets/releases` and others) only when a target is looked up, verified the same
 *    way with the keys their parent delegates to them.
 *
 * What passed is cached in the trust directory: it is the pin for the next run and the floor for
 * rollback checks.
 */

export interface TrustContext {
  gun: string;
  server: TrustServer;
  dir: TrustDirectory;
  /** The clock expiry is checked against. */
  now: Date;
}

export interface TrustedTarget {
  /** The role that signed it: `targets` or a delegation such as `targets/releases`. */
  role: string;
  name: string;
  meta: FileMeta;
}

export interface TrustedCollection {
  gun: string;
  root: Envelope<RootSigned>;
  timestamp: Envelope<TimestampSigned>;
  snapshot: Envelope<SnapshotSigned>;
  targets: Envelope<TargetsSigned>;
}

const what = (role: string, gun: string) => `the ${role} metadata of ${gun}`;

/**
 * The root role's keys that can vouch for `gun`: certificate keys whose certificate is issued for the
 * GUN (and, with `checkExpiry`, currently valid). Root keys that are not certificates do not count, as
 * in Notary.
 */
function rootRoleTrust(
  root: RootSigned,
  gun: string,
  now: Date,
  checkExpiry: boolean,
): RoleTrust & { problems: string[] } {
  const role = root.roles.root;
  const keys: RoleTrust['keys'] = {};
  const problems: string[] = [];
  for (const id of role.keyids) {
    const key = own(root.keys, id);
    if (!key) continue;
    let problem: string | undefined;
    try {
      const cert = keyCertificate(key);
      problem = cert
        ? rootCertificateProblem(cert, gun, { checkExpiry, now })
        : 'it is not a certificate key';
    } catch {
      problem = 'its certificate cannot be read';
    }
    if (problem) problems.push(`root key ${id.slice(0, 7)}: ${problem}`);
    else keys[id] = key;
  }
  return { keyids: Object.keys(keys), threshold: role.threshold, keys, problems };
}

/** Checks that a root vouches for itself: enough of its own valid root keys signed it. */
function verifyRootSelf(root: Envelope<RootSigned>, gun: string, now: Date, label: string): void {
  const trust = rootRoleTrust(root.signed, gun, now, true);
  if (trust.keyids.length < trust.threshold) {
    throw trustError(
      `${label} has no usable root key for ${gun}${trust.problems.length ? ` (${trust.problems.join('; ')})` : ''}`,
    );
  }
  verifyThreshold(root, trust, label);
}

/** Verifies the server's current root against the pinned one (rotation through every version). */
async function updateRoot(
  ctx: TrustContext,
  remoteRaw: Buffer,
): Promise<{ root: Envelope<RootSigned>; changed: boolean }> {
  const { gun, now } = ctx;
  const remote = parseEnvelope(remoteRaw, 'root', what('root', gun));
  const cachedRaw = await ctx.dir.readMetadata(gun, 'root');
  if (!cachedRaw) {
    // Trust on first use.
    verifyRootSelf(remote, gun, now, what('root', gun));
    checkExpiry(remote.signed, now, what('root', gun));
    return { root: remote, changed: true };
  }
  let trusted: Envelope<RootSigned>;
  try {
    trusted = parseEnvelope(cachedRaw, 'root', `the pinned root of ${gun}`);
  } catch (err) {
    throw new WasmOciError('TRUST', `the pinned root of ${gun} in ${ctx.dir.path} is corrupt`, {
      cause: err,
      hint: `restore it from a backup, or remove ${ctx.dir.path}/tuf/${gun} to trust the server's root anew`,
    });
  }
  if (cachedRaw.equals(remoteRaw)) {
    checkExpiry(remote.signed, now, what('root', gun));
    return { root: trusted, changed: false };
  }
  const from = trusted.signed.version;
  const to = remote.signed.version;
  checkVersion(to, from, what('root', gun));
  if (to === from) {
    throw trustError(
      `the trust server's root of ${gun} differs from the pinned root of the same version ${to}`,
      'someone may be impersonating the collection; if its owner really re-created it, remove ' +
        `${ctx.dir.path}/tuf/${gun} to trust the new root`,
    );
  }
  let previous = trusted;
  for (let v = from + 1; v <= to; v++) {
    const raw = v === to ? remoteRaw : await ctx.server.metadata(gun, `${v}.root`);
    if (!raw)
      throw trustError(
        `the trust server lacks version ${v} of the root of ${gun}, needed to rotate to version ${to}`,
      );
    const label = `version ${v} of the root of ${gun}`;
    const next = v === to ? remote : parseEnvelope(raw, 'root', label);
    if (next.signed.version !== v) throw trustError(`${label} says it is version ${next.signed.version}`);
    // Signed by the keys trusted so far (their certificates may have expired since) ...
    const old = rootRoleTrust(previous.signed, gun, now, false);
    try {
      verifyThreshold(next, old, label);
    } catch (err) {
      throw new WasmOciError(
        'TRUST',
        `the root of ${gun} was replaced by one the pinned root keys did not sign (rotation from version ${v - 1} to ${v})`,
        {
          cause: err,
          hint:
            'someone may be impersonating the collection; if its owner lost the root key and re-created it, ' +
            `remove ${ctx.dir.path}/tuf/${gun} to trust the new root`,
        },
      );
    }
    // ... and by its own.
    verifyRootSelf(next, gun, now, label);
    previous = next;
  }
  checkExpiry(remote.signed, now, what('root', gun));
  return { root: remote, changed: true };
}

/**
 * The name to fetch a listed file by: `<role>.<sha256 hex>` (what the listing hashes, so a file that
 * changed on the server in between cannot be mixed in), the plain role name otherwise.
 */
function consistentName(role: string, listed: FileMeta | undefined): string {
  const sha256 = listed?.hashes.sha256;
  return sha256 ? `${role}.${Buffer.from(sha256, 'base64').toString('hex')}` : role;
}

async function required(ctx: TrustContext, name: string): Promise<Buffer> {
  const raw = await ctx.server.metadata(ctx.gun, name);
  if (!raw) throw trustError(`the trust server has no ${name} metadata for ${ctx.gun}`);
  return raw;
}

/** Verifies one non-root role file: listed bytes, signatures, version floor, expiry. */
async function verifyRole<R extends 'timestamp' | 'snapshot' | 'targets'>(
  ctx: TrustContext,
  role: R,
  cacheName: string,
  raw: Buffer,
  trust: RoleTrust,
  listed: FileMeta | undefined,
): Promise<ReturnType<typeof parseEnvelope<R>>> {
  const label = what(cacheName, ctx.gun);
  if (listed) checkFileMeta(raw, listed, label);
  const envelope = parseEnvelope(raw, role, label);
  verifyThreshold(envelope, trust, label);
  checkVersion(envelope.signed.version, cachedVersion(await ctx.dir.readMetadata(ctx.gun, cacheName)), label);
  checkExpiry(envelope.signed, ctx.now, label);
  return envelope;
}

/**
 * Fetches and verifies the collection's trust data; undefined when the server has none (the collection
 * does not exist yet).
 */
export async function updateCollection(ctx: TrustContext): Promise<TrustedCollection | undefined> {
  const { gun, server, dir } = ctx;
  const rootRaw = await server.metadata(gun, 'root');
  if (!rootRaw) {
    if (await dir.readMetadata(gun, 'root')) {
      throw trustError(
        `the trust server ${server.url.host} has no trust data for ${gun}, which was signed before`,
        'the collection was deleted or the server is not the one used before (see the `server` option)',
      );
    }
    return undefined;
  }
  const { root, changed } = await updateRoot(ctx, rootRaw);
  const timestampRaw = await required(ctx, 'timestamp');
  const timestamp = await verifyRole(
    ctx,
    'timestamp',
    'timestamp',
    timestampRaw,
    baseRoleTrust(root.signed, 'timestamp'),
    undefined,
  );
  const snapshotRaw = await required(ctx, consistentName('snapshot', timestamp.signed.meta.snapshot));
  const snapshot = await verifyRole(
    ctx,
    'snapshot',
    'snapshot',
    snapshotRaw,
    baseRoleTrust(root.signed, 'snapshot'),
    timestamp.signed.meta.snapshot,
  );
  const rootListed = snapshot.signed.meta.root;
  if (rootListed) checkFileMeta(root.raw, rootListed, `the root of ${gun}`);
  const targetsListed = snapshot.signed.meta.targets;
  if (!targetsListed) throw trustError(`${what('snapshot', gun)} does not list the targets metadata`);
  const targetsRaw = await required(ctx, consistentName('targets', targetsListed));
  const targets = await verifyRole(
    ctx,
    'targets',
    'targets',
    targetsRaw,
    baseRoleTrust(root.signed, 'targets'),
    targetsListed,
  );
  if (changed) await dir.writeMetadata(gun, 'root', root.raw);
  await dir.writeMetadata(gun, 'timestamp', timestamp.raw);
  await dir.writeMetadata(gun, 'snapshot', snapshot.raw);
  await dir.writeMetadata(gun, 'targets', targets.raw);
  return { gun, root, timestamp, snapshot, targets };
}

/** True when a delegated role may sign `name` (path prefixes or hash prefixes, as Notary matches). */
export function delegationCovers(role: DelegatedRole, name: string): boolean {
  if (role.paths && role.paths.some((p) => name.startsWith(p))) return true;
  if (role.path_hash_prefixes?.length) {
    const hash = createHash('sha256').update(name).digest('hex');
    return role.path_hash_prefixes.some((p) => hash.startsWith(p));
  }
  return false;
}

/**
 * Finds a target by name: first in `targets/releases` (where Docker Content Trust signs), then in
 * `targets`, then in the other delegations depth first. A delegation that is expired or under its
 * threshold is passed over, as Notary does; one whose bytes do not match the snapshot is an error.
 */
export async function findTarget(
  ctx: TrustContext,
  collection: TrustedCollection,
  name: string,
): Promise<TrustedTarget | undefined> {
  const visited = new Set<string>();
  const search = async (
    roleName: string,
    envelope: Envelope<TargetsSigned>,
  ): Promise<TrustedTarget | undefined> => {
    const meta = own(envelope.signed.targets, name);
    if (meta) return { role: roleName, name, meta };
    for (const delegated of envelope.signed.delegations.roles) {
      if (visited.has(delegated.name) || !delegated.name.startsWith(`${roleName}/`)) continue;
      if (!delegationCovers(delegated, name)) continue;
      visited.add(delegated.name);
      const child = await loadDelegation(ctx, collection, envelope, delegated);
      if (!child) continue;
      const found = await search(delegated.name, child);
      if (found) return found;
    }
    return undefined;
  };
  const releases = collection.targets.signed.delegations.roles.find((r) => r.name === 'targets/releases');
  if (releases && delegationCovers(releases, name)) {
    visited.add(releases.name);
    const child = await loadDelegation(ctx, collection, collection.targets, releases);
    const found = child ? await search(releases.name, child) : undefined;
    if (found) return found;
  }
  return search('targets', collection.targets);
}

async function loadDelegation(
  ctx: TrustContext,
  collection: TrustedCollection,
  parent: Envelope<TargetsSigned>,
  role: DelegatedRole,
): Promise<Envelope<TargetsSigned> | undefined> {
  const listed = own(collection.snapshot.signed.meta, role.name);
  if (!listed) return undefined;
  const raw = await ctx.server.metadata(ctx.gun, consistentName(role.name, listed));
  if (!raw) throw trustError(`the trust server lacks ${what(role.name, ctx.gun)}, which the snapshot lists`);
  const trust: RoleTrust = {
    keyids: role.keyids,
    threshold: role.threshold,
    keys: parent.signed.delegations.keys,
  };
  try {
    const envelope = await verifyRole(ctx, 'targets', role.name, raw, trust, listed);
    await ctx.dir.writeMetadata(ctx.gun, role.name, raw);
    return envelope;
  } catch (err) {
    if (trustRefusal(err)) return undefined;
    throw err;
  }
}
