import { createPublicKey, type KeyObject } from 'node:crypto';
import { WasmOciError } from '../../errors.js';
import { canonicalJson } from './canonical.js';
import { type TrustContext, type TrustedCollection, updateCollection } from './collection.js';
import {
  certificateKey,
  generateEcdsaKey,
  keyId,
  privateKeyId,
  rootCertificate,
  type Signature,
  signEcdsa,
  type TufKey,
  tufPublicKey,
} from './keys.js';
import type { KeyFile, PassphraseSource } from './keystore.js';
import {
  expiresIn,
  type FileMeta,
  fileMeta,
  own,
  type RootSigned,
  type SnapshotSigned,
  serializeEnvelope,
  type TargetsSigned,
} from './metadata.js';

/**
 * Signing a target into a collection, in two steps so that everything that can fail without touching
 * the registry fails first: `prepareSigning` verifies the collection as it stands, finds (or creates)
 * the keys and asks for their passphrases; `publish` then signs the new metadata and sends it.
 *
 * A new collection gets a root key (the trust directory's existing root key when there is one, as
 * Notary does), new targets and snapshot keys, and the server's timestamp key; its root certificate
 * names the GUN. An existing one gets new targets metadata (version + 1) and, when this machine holds
 * the snapshot key, a new snapshot; otherwise the server must hold the snapshot key and sign it.
 */

export interface SigningContext extends TrustContext {
  passphrases: PassphraseSource;
}

/** Notary's default lifetimes: root ten years, targets and snapshot three. */
const ROOT_YEARS = 10;
const TARGETS_YEARS = 3;

interface SigningKey {
  /** The key ID in the metadata (for a root key: the certificate key's ID). */
  id: string;
  key: KeyObject;
}

export interface PreparedSigning {
  /** True when the collection did not exist and will be created. */
  creating: boolean;
  /** Signs the targets (name -> length and hashes) into the collection and publishes them. */
  publish(targets: Record<string, FileMeta>): Promise<void>;
}

function sign(signed: object, keys: SigningKey[]): Buffer {
  const message = canonicalJson(signed);
  const signatures: Signature[] = keys.map(({ id, key }) => ({
    keyid: id,
    method: 'ecdsa',
    sig: signEcdsa(message, key),
  }));
  return serializeEnvelope(signed, signatures);
}

/** The local key for one of a role's key IDs, decrypted; undefined when this machine holds none. */
async function localKey(
  ctx: SigningContext,
  keys: Record<string, TufKey>,
  keyids: readonly string[],
): Promise<SigningKey | undefined> {
  for (const id of keyids) {
    const pub = own(keys, id);
    if (!pub) continue;
    let file: KeyFile | undefined;
    try {
      file = await ctx.dir.findKey(privateKeyId(pub));
    } catch {
      continue;
    }
    if (file) return { id, key: await ctx.dir.loadKey(file, ctx.passphrases) };
  }
  return undefined;
}

/** A key of the trust directory for `role` (and `gun`), decrypted; or a new one, saved encrypted. */
async function keyFor(ctx: SigningContext, role: string, gun: string | undefined): Promise<KeyObject> {
  const existing = (await ctx.dir.listKeys()).find(
    (k) => k.role === role && (gun === undefined || k.gun === gun),
  );
  if (existing) return ctx.dir.loadKey(existing, ctx.passphrases);
  const key = generateEcdsaKey();
  await ctx.dir.saveKey(key, role, gun, ctx.passphrases);
  return key;
}

async function prepareNew(ctx: SigningContext): Promise<PreparedSigning> {
  const { gun } = ctx;
  const rootKey = await keyFor(ctx, 'root', undefined);
  const targetsKey = await keyFor(ctx, 'targets', gun);
  const snapshotKey = await keyFor(ctx, 'snapshot', gun);
  const timestampKey = await ctx.server.key(gun, 'timestamp');
  return {
    creating: true,
    async publish(newTargets) {
      const now = ctx.now;
      const cert = certificateKey(rootCertificate(gun, rootKey, { years: ROOT_YEARS, now }));
      const targetsPub = tufPublicKey(createPublicKey(targetsKey));
      const snapshotPub = tufPublicKey(createPublicKey(snapshotKey));
      const ids = {
        root: keyId(cert),
        targets: keyId(targetsPub),
        snapshot: keyId(snapshotPub),
        timestamp: keyId(timestampKey),
      };
      const rootSigned: RootSigned = {
        _type: 'Root',
        consistent_snapshot: false,
        expires: expiresIn(now, { years: ROOT_YEARS }),
        keys: {
          [ids.root]: cert,
          [ids.targets]: targetsPub,
          [ids.snapshot]: snapshotPub,
          [ids.timestamp]: timestampKey,
        },
        roles: {
          root: { keyids: [ids.root], threshold: 1 },
          snapshot: { keyids: [ids.snapshot], threshold: 1 },
          targets: { keyids: [ids.targets], threshold: 1 },
          timestamp: { keyids: [ids.timestamp], threshold: 1 },
        },
        version: 1,
      };
      const root = sign(rootSigned, [{ id: ids.root, key: rootKey }]);
      const targetsSigned: TargetsSigned = {
        _type: 'Targets',
        delegations: { keys: {}, roles: [] },
        expires: expiresIn(now, { years: TARGETS_YEARS }),
        targets: { ...newTargets },
        version: 1,
      };
      const targets = sign(targetsSigned, [{ id: ids.targets, key: targetsKey }]);
      const snapshotSigned: SnapshotSigned = {
        _type: 'Snapshot',
        expires: expiresIn(now, { years: TARGETS_YEARS }),
        meta: { root: fileMeta(root), targets: fileMeta(targets) },
        version: 1,
      };
      const snapshot = sign(snapshotSigned, [{ id: ids.snapshot, key: snapshotKey }]);
      await ctx.server.publish(gun, [
        { role: 'root', bytes: root },
        { role: 'targets', bytes: targets },
        { role: 'snapshot', bytes: snapshot },
      ]);
      // The root just published is the pin from now on.
      await ctx.dir.writeMetadata(gun, 'root', root);
      await ctx.dir.writeMetadata(gun, 'targets', targets);
      await ctx.dir.writeMetadata(gun, 'snapshot', snapshot);
    },
  };
}

async function prepareExisting(ctx: SigningContext, collection: TrustedCollection): Promise<PreparedSigning> {
  const { gun } = ctx;
  const root = collection.root.signed;
  const targetsKey = await localKey(ctx, root.keys, root.roles.targets.keyids);
  if (!targetsKey) {
    throw new WasmOciError('SIGNING_KEY', `this machine holds no targets key of ${gun}`, {
      hint:
        `the collection was created with other keys: sign where they are, or copy the targets key ` +
        `(private/<key ID>.key) into ${ctx.dir.path}`,
    });
  }
  if (root.roles.targets.threshold > 1) {
    throw new WasmOciError(
      'UNSUPPORTED',
      `the targets role of ${gun} needs ${root.roles.targets.threshold} signatures`,
    );
  }
  const snapshotKey = await localKey(ctx, root.keys, root.roles.snapshot.keyids);
  return {
    creating: false,
    async publish(newTargets) {
      const now = ctx.now;
      const previous = collection.targets.signed;
      const targetsSigned: TargetsSigned = {
        ...previous,
        expires: expiresIn(now, { years: TARGETS_YEARS }),
        targets: { ...previous.targets, ...newTargets },
        version: previous.version + 1,
      };
      const targets = sign(targetsSigned, [targetsKey]);
      const files = [{ role: 'targets', bytes: targets }];
      let snapshot: Buffer | undefined;
      if (snapshotKey) {
        const prev = collection.snapshot.signed;
        const snapshotSigned: SnapshotSigned = {
          ...prev,
          expires: expiresIn(now, { years: TARGETS_YEARS }),
          meta: { ...prev.meta, root: fileMeta(collection.root.raw), targets: fileMeta(targets) },
          version: prev.version + 1,
        };
        snapshot = sign(snapshotSigned, [snapshotKey]);
        files.push({ role: 'snapshot', bytes: snapshot });
      }
      await ctx.server.publish(gun, files);
      await ctx.dir.writeMetadata(gun, 'targets', targets);
      if (snapshot) await ctx.dir.writeMetadata(gun, 'snapshot', snapshot);
    },
  };
}

/**
 * Verifies the collection as it stands (creating nothing yet) and gets the signing keys ready,
 * passphrases asked for now.
 */
export async function prepareSigning(ctx: SigningContext): Promise<PreparedSigning> {
  const collection = await updateCollection(ctx);
  return collection ? prepareExisting(ctx, collection) : prepareNew(ctx);
}
