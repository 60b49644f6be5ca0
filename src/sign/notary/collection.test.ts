import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ecdsaSigner,
  ed25519Signer,
  fakeTrustServer,
  GUN,
  NOW,
  rootSigner,
  type Signer,
  signWith,
} from '../../../test/harness/tuf.js';
import { hasCode } from '../../errors.js';
import { delegationCovers, findTarget, type TrustContext, updateCollection } from './collection.js';
import { TrustDirectory } from './keystore.js';
import { type DelegatedRole, expiresIn, type FileMeta, fileMeta } from './metadata.js';

/**
 * The TUF client workflow of collection.ts against complete collections built in memory and served by
 * a fake trust server (a map from metadata name to bytes), with a real trust directory in a temp dir.
 */

const DAY = 86_400_000;

interface RoleSigners {
  root: Signer;
  targets: Signer;
  snapshot: Signer;
  timestamp: Signer;
}

const newKeys = (gun = GUN): RoleSigners => ({
  root: rootSigner(gun),
  targets: ecdsaSigner(),
  snapshot: ecdsaSigner(),
  timestamp: ed25519Signer(),
});

/** A root file of `keys` at `version`, signed by `signers` (default: its own root key). */
function rootFile(
  keys: RoleSigners,
  version: number,
  signers: Signer[] = [keys.root],
  expires = expiresIn(NOW, { years: 10 }),
): Buffer {
  return signWith(
    {
      _type: 'Root',
      consistent_snapshot: false,
      expires,
      keys: Object.fromEntries(
        [keys.root, keys.targets, keys.snapshot, keys.timestamp].map((s) => [s.id, s.pub]),
      ),
      roles: {
        root: { keyids: [keys.root.id], threshold: 1 },
        snapshot: { keyids: [keys.snapshot.id], threshold: 1 },
        targets: { keyids: [keys.targets.id], threshold: 1 },
        timestamp: { keyids: [keys.timestamp.id], threshold: 1 },
      },
      version,
    },
    signers,
  );
}

interface DelegationSpec {
  name: string;
  /** The role that delegates (default `targets`). */
  parent?: string;
  signer: Signer;
  paths?: string[];
  pathHashPrefixes?: string[];
  targets: Record<string, FileMeta>;
  expires?: string;
  version?: number;
  /** Who really signs it (default: its own key). */
  signedBy?: Signer[];
  /** Listed in the snapshot (default true). */
  inSnapshot?: boolean;
  /** Served by the trust server (default true). */
  served?: boolean;
}

interface Spec {
  keys: RoleSigners;
  /** Every root version to serve as `<n>.root`, the last also as `root` (default: v1, self-signed). */
  roots?: Buffer[];
  /** The version of timestamp, snapshot and targets unless given one by one. */
  version?: number;
  timestampVersion?: number;
  snapshotVersion?: number;
  targetsVersion?: number;
  targets?: Record<string, FileMeta>;
  delegations?: DelegationSpec[];
  timestampExpires?: string;
  snapshotExpires?: string;
  targetsSigner?: Signer;
  timestampSigner?: Signer;
  /** Changes the snapshot's file list before it is signed. */
  editSnapshotMeta?: (meta: Record<string, FileMeta>) => void;
}

const V1 = fileMeta(Buffer.from('module one'));
const sha256hex = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const versionOf = (raw: Buffer) =>
  (JSON.parse(raw.toString()) as { signed: { version: number } }).signed.version;

/** The files a trust server holds for a collection built from `spec`, by the names clients ask for. */
function publish(spec: Spec): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const roots = spec.roots ?? [rootFile(spec.keys, 1)];
  for (const r of roots) files.set(`${versionOf(r)}.root`, r);
  const root = roots.at(-1) as Buffer;
  files.set('root', root);
  const delegations = spec.delegations ?? [];
  const delegationsOf = (parent: string) => {
    const children = delegations.filter((d) => (d.parent ?? 'targets') === parent);
    return {
      keys: Object.fromEntries(children.map((d) => [d.signer.id, d.signer.pub])),
      roles: children.map(
        (d): DelegatedRole => ({
          name: d.name,
          keyids: [d.signer.id],
          threshold: 1,
          ...(d.paths ? { paths: d.paths } : {}),
          ...(d.pathHashPrefixes ? { path_hash_prefixes: d.pathHashPrefixes } : {}),
        }),
      ),
    };
  };
  const meta: Record<string, FileMeta> = { root: fileMeta(root) };
  const targets = signWith(
    {
      _type: 'Targets',
      delegations: delegationsOf('targets'),
      expires: expiresIn(NOW, { years: 3 }),
      targets: spec.targets ?? { v1: V1 },
      version: spec.targetsVersion ?? spec.version ?? 1,
    },
    [spec.targetsSigner ?? spec.keys.targets],
  );
  meta.targets = fileMeta(targets);
  files.set(`targets.${sha256hex(targets)}`, targets);
  for (const d of delegations) {
    const bytes = signWith(
      {
        _type: 'Targets',
        delegations: delegationsOf(d.name),
        expires: d.expires ?? expiresIn(NOW, { years: 3 }),
        targets: d.targets,
        version: d.version ?? 1,
      },
      d.signedBy ?? [d.signer],
    );
    if (d.inSnapshot !== false) meta[d.name] = fileMeta(bytes);
    if (d.served !== false) files.set(`${d.name}.${sha256hex(bytes)}`, bytes);
  }
  spec.editSnapshotMeta?.(meta);
  const snapshot = signWith(
    {
      _type: 'Snapshot',
      expires: spec.snapshotExpires ?? expiresIn(NOW, { years: 3 }),
      meta,
      version: spec.snapshotVersion ?? spec.version ?? 1,
    },
    [spec.keys.snapshot],
  );
  files.set(`snapshot.${sha256hex(snapshot)}`, snapshot);
  const timestamp = signWith(
    {
      _type: 'Timestamp',
      expires: spec.timestampExpires ?? expiresIn(NOW, { days: 14 }),
      meta: { snapshot: fileMeta(snapshot) },
      version: spec.timestampVersion ?? spec.version ?? 1,
    },
    [spec.timestampSigner ?? spec.keys.timestamp],
  );
  files.set('timestamp', timestamp);
  return files;
}

/** The one served file whose name starts with `prefix.` (a consistent name). */
function served(files: Map<string, Buffer>, prefix: string): [string, Buffer] {
  const found = [...files].filter(
    ([name]) => name.startsWith(`${prefix}.`) && !name.slice(prefix.length + 1).includes('/'),
  );
  assert.equal(found.length, 1, `one ${prefix} file`);
  return found[0] as [string, Buffer];
}

let work: string;
let n = 0;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wasm-to-oci-collection-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

const newDir = () => new TrustDirectory(join(work, `trust${n++}`));

/** A context on a fake server serving `files`; the server logs the names it is asked for. */
function context(
  files: Map<string, Buffer>,
  options: { dir?: TrustDirectory; now?: Date; log?: string[] } = {},
): TrustContext {
  const server = fakeTrustServer(files, {
    url: 'https://notary.test:4443/',
    gun: GUN,
    log: options.log ?? [],
  });
  return { gun: GUN, server, dir: options.dir ?? newDir(), now: options.now ?? NOW };
}

const trust = (pattern: RegExp) => (err: unknown) => {
  assert.ok(hasCode(err, 'TRUST'), `not a TRUST error: ${err}`);
  assert.match(err.message, pattern);
  return true;
};

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const G = escape(GUN);

async function cached(ctx: TrustContext, role: string): Promise<Buffer | undefined> {
  return ctx.dir.readMetadata(GUN, role);
}

describe('first use', () => {
  it('pins the root and caches exactly the files it verified, fetched by consistent names', async () => {
    const keys = newKeys();
    const files = publish({ keys });
    const log: string[] = [];
    const ctx = context(files, { log });
    const collection = await updateCollection(ctx);
    assert.ok(collection);
    assert.equal(collection.gun, GUN);
    assert.equal(collection.root.signed.version, 1);
    assert.deepEqual(collection.targets.signed.targets, { v1: V1 });
    const [snapshotName, snapshot] = served(files, 'snapshot');
    const [targetsName, targets] = served(files, 'targets');
    assert.deepEqual(log, ['root', 'timestamp', snapshotName, targetsName]);
    assert.deepEqual(await cached(ctx, 'root'), files.get('root'));
    assert.deepEqual(await cached(ctx, 'timestamp'), files.get('timestamp'));
    assert.deepEqual(await cached(ctx, 'snapshot'), snapshot);
    assert.deepEqual(await cached(ctx, 'targets'), targets);
    assert.ok(collection.snapshot.raw.equals(snapshot));
  });

  it('works again with the same data, from the pin, and the pin stays as it was', async () => {
    const files = publish({ keys: newKeys() });
    const dir = newDir();
    assert.ok(await updateCollection(context(files, { dir })));
    const second = await updateCollection(context(files, { dir }));
    assert.ok(second);
    assert.ok(second.root.raw.equals(files.get('root') as Buffer));
    assert.deepEqual(await dir.readMetadata(GUN, 'root'), files.get('root'));
  });

  it('takes newer timestamp, snapshot and targets on a later run and caches them', async () => {
    const keys = newKeys();
    const root = rootFile(keys, 1);
    const dir = newDir();
    await updateCollection(context(publish({ keys, roots: [root] }), { dir }));
    const v2 = fileMeta(Buffer.from('module two'));
    const later = publish({ keys, roots: [root], version: 2, targets: { v1: V1, v2 } });
    const collection = await updateCollection(context(later, { dir }));
    assert.ok(collection);
    assert.equal(collection.targets.signed.version, 2);
    assert.deepEqual(collection.targets.signed.targets.v2, v2);
    assert.deepEqual(await dir.readMetadata(GUN, 'targets'), served(later, 'targets')[1]);
    assert.deepEqual(await dir.readMetadata(GUN, 'timestamp'), later.get('timestamp'));
  });

  it('refuses a root whose certificate is for another GUN, and pins nothing', async () => {
    const ctx = context(publish({ keys: newKeys('registry.test:5000/someone/else') }));
    await assert.rejects(
      updateCollection(ctx),
      trust(
        new RegExp(
          `^the root metadata of ${G} has no usable root key for ${G} \\(root key [0-9a-f]{7}: its certificate is for "registry\\.test:5000/someone/else", not "${G}"\\)$`,
        ),
      ),
    );
    assert.equal(await cached(ctx, 'root'), undefined);
  });

  it('refuses a root whose certificate has expired', async () => {
    const keys = { ...newKeys(), root: rootSigner(GUN, { now: new Date('2020-01-01T00:00:00Z'), years: 1 }) };
    await assert.rejects(
      updateCollection(context(publish({ keys }))),
      trust(/no usable root key .*its certificate expired on 2021-01-01/),
    );
  });

  it('refuses a root whose root key is a bare key, not a certificate', async () => {
    const keys = { ...newKeys(), root: ecdsaSigner() };
    await assert.rejects(
      updateCollection(context(publish({ keys }))),
      trust(/no usable root key .*it is not a certificate key/),
    );
  });

  it('refuses a root signed by a key it does not list', async () => {
    const keys = newKeys();
    const files = publish({ keys, roots: [rootFile(keys, 1, [rootSigner()])] });
    await assert.rejects(
      updateCollection(context(files)),
      trust(
        new RegExp(
          `^the root metadata of ${G} is not signed by enough of its keys \\(0 valid signatures, 1 needed\\)$`,
        ),
      ),
    );
  });

  it('refuses an expired root', async () => {
    const keys = newKeys();
    const files = publish({ keys, roots: [rootFile(keys, 1, [keys.root], '2026-11-01T00:00:00Z')] });
    await assert.rejects(
      updateCollection(context(files)),
      trust(new RegExp(`^the root metadata of ${G} expired on 2026-11-01`)),
    );
  });

  it('pins nothing when a later step fails', async () => {
    const keys = newKeys();
    const ctx = context(publish({ keys, targetsSigner: ecdsaSigner() }));
    await assert.rejects(updateCollection(ctx), trust(/targets metadata/));
    for (const role of ['root', 'timestamp', 'snapshot', 'targets'])
      assert.equal(await cached(ctx, role), undefined, role);
  });

  it('returns undefined when the server has no root and nothing is pinned', async () => {
    const log: string[] = [];
    assert.equal(await updateCollection(context(new Map(), { log })), undefined);
    assert.deepEqual(log, ['root']);
  });

  it('throws when the server has no root for a collection pinned before', async () => {
    const dir = newDir();
    await updateCollection(context(publish({ keys: newKeys() }), { dir }));
    await assert.rejects(
      updateCollection(context(new Map(), { dir })),
      (err) =>
        trust(
          new RegExp(
            `^the trust server notary\\.test:4443 has no trust data for ${G}, which was signed before$`,
          ),
        )(err) && /the `server` option/.test((err as { hint?: string }).hint ?? ''),
    );
  });

  it('refuses to go on when the pinned root is corrupt', async () => {
    const files = publish({ keys: newKeys() });
    const dir = newDir();
    await dir.writeMetadata(GUN, 'root', Buffer.from('{"signed":{"_type":"Root"},"signatures":[]}'));
    await assert.rejects(
      updateCollection(context(files, { dir })),
      trust(new RegExp(`^the pinned root of ${G} in .* is corrupt$`)),
    );
  });

  it('needs a timestamp', async () => {
    const files = publish({ keys: newKeys() });
    files.delete('timestamp');
    await assert.rejects(
      updateCollection(context(files)),
      trust(new RegExp(`^the trust server has no timestamp metadata for ${G}$`)),
    );
  });
});

describe('root rotation', () => {
  /** keys1 -> keys2 -> keys3: the same other keys, a new root key each time. */
  function rotation() {
    const keys1 = newKeys();
    const keys2 = { ...keys1, root: rootSigner() };
    const keys3 = { ...keys1, root: rootSigner() };
    return { keys1, keys2, keys3, v1: rootFile(keys1, 1) };
  }

  async function pinned(v1: Buffer, keys: RoleSigners): Promise<TrustDirectory> {
    const dir = newDir();
    assert.ok(await updateCollection(context(publish({ keys, roots: [v1] }), { dir })));
    return dir;
  }

  it('follows v1 -> v3 through 2.root, each signed by the previous root key and its own, and pins v3', async () => {
    const { keys1, keys2, keys3, v1 } = rotation();
    const dir = await pinned(v1, keys1);
    const v2 = rootFile(keys2, 2, [keys1.root, keys2.root]);
    const v3 = rootFile(keys3, 3, [keys2.root, keys3.root]);
    const files = publish({ keys: keys3, roots: [v1, v2, v3], version: 2 });
    const log: string[] = [];
    const collection = await updateCollection(context(files, { dir, log }));
    assert.ok(collection);
    assert.equal(collection.root.signed.version, 3);
    assert.deepEqual(log.slice(0, 3), ['root', '2.root', 'timestamp']);
    assert.deepEqual(await dir.readMetadata(GUN, 'root'), v3);
    // And from the new pin on, v3 is simply the pinned root.
    assert.ok(await updateCollection(context(files, { dir })));
  });

  it('needs every version in between', async () => {
    const { keys1, keys2, keys3, v1 } = rotation();
    const dir = await pinned(v1, keys1);
    const v3 = rootFile(keys3, 3, [keys2.root, keys3.root]);
    const files = publish({ keys: keys3, roots: [v1, v3] });
    await assert.rejects(
      updateCollection(context(files, { dir })),
      trust(
        new RegExp(`^the trust server lacks version 2 of the root of ${G}, needed to rotate to version 3$`),
      ),
    );
    assert.deepEqual(await dir.readMetadata(GUN, 'root'), v1);
  });

  it('refuses a new root the pinned root key did not sign, and keeps the pin', async () => {
    const { keys1, keys2, v1 } = rotation();
    const dir = await pinned(v1, keys1);
    const v2 = rootFile(keys2, 2, [keys2.root]);
    await assert.rejects(
      updateCollection(context(publish({ keys: keys2, roots: [v1, v2] }), { dir })),
      trust(
        new RegExp(
          `^the root of ${G} was replaced by one the pinned root keys did not sign \\(rotation from version 1 to 2\\)$`,
        ),
      ),
    );
    assert.deepEqual(await dir.readMetadata(GUN, 'root'), v1);
  });

  it('refuses an intermediate root the pinned root key did not sign, even if the next one is fine', async () => {
    const { keys1, keys2, keys3, v1 } = rotation();
    const dir = await pinned(v1, keys1);
    const v2 = rootFile(keys2, 2, [keys2.root]);
    const v3 = rootFile(keys3, 3, [keys2.root, keys3.root]);
    await assert.rejects(
      updateCollection(context(publish({ keys: keys3, roots: [v1, v2, v3] }), { dir })),
      trust(/rotation from version 1 to 2/),
    );
  });

  it('refuses a new root signed by the old root key but not by its own', async () => {
    const { keys1, keys2, v1 } = rotation();
    const dir = await pinned(v1, keys1);
    const v2 = rootFile(keys2, 2, [keys1.root]);
    await assert.rejects(
      updateCollection(context(publish({ keys: keys2, roots: [v1, v2] }), { dir })),
      trust(new RegExp(`^version 2 of the root of ${G} is not signed by enough of its keys`)),
    );
  });

  it('refuses a served root older than the pinned one', async () => {
    const { keys1, keys2, v1 } = rotation();
    const v2 = rootFile(keys2, 2, [keys1.root, keys2.root]);
    const dir = newDir();
    await updateCollection(context(publish({ keys: keys2, roots: [v1, v2] }), { dir }));
    assert.deepEqual(await dir.readMetadata(GUN, 'root'), v2);
    await assert.rejects(
      updateCollection(context(publish({ keys: keys1, roots: [v1] }), { dir })),
      trust(
        new RegExp(
          `^the root metadata of ${G} was rolled back: version 1 is older than the version 2 trusted before$`,
        ),
      ),
    );
  });

  it('refuses another root of the pinned version', async () => {
    const { keys1, v1 } = rotation();
    const dir = await pinned(v1, keys1);
    // Same keys, same version, signed again: other bytes (ECDSA signatures are randomised).
    const again = rootFile(keys1, 1);
    assert.ok(!again.equals(v1));
    await assert.rejects(
      updateCollection(context(publish({ keys: keys1, roots: [again] }), { dir })),
      trust(
        new RegExp(`^the trust server's root of ${G} differs from the pinned root of the same version 1$`),
      ),
    );
  });

  it('refuses an intermediate root file that says it is another version', async () => {
    const { keys1, keys2, keys3, v1 } = rotation();
    const dir = await pinned(v1, keys1);
    const v3 = rootFile(keys3, 3, [keys2.root, keys3.root]);
    const files = publish({ keys: keys3, roots: [v1, v3] });
    files.set('2.root', rootFile(keys2, 4, [keys1.root, keys2.root]));
    await assert.rejects(
      updateCollection(context(files, { dir })),
      trust(new RegExp(`^version 2 of the root of ${G} says it is version 4$`)),
    );
  });

  it('accepts a rotation signed by a pinned root key whose certificate has expired since', async () => {
    const keys1 = { ...newKeys(), root: rootSigner(GUN, { years: 1 }) };
    const v1 = rootFile(keys1, 1);
    const dir = await pinned(v1, keys1);
    const later = new Date(NOW.getTime() + 2 * 365 * DAY);
    const keys2 = { ...keys1, root: rootSigner(GUN, { now: later }) };
    const v2 = rootFile(keys2, 2, [keys1.root, keys2.root], expiresIn(later, { years: 10 }));
    const files = publish({ keys: keys2, roots: [v1, v2], timestampExpires: expiresIn(later, { days: 14 }) });
    const collection = await updateCollection(context(files, { dir, now: later }));
    assert.equal(collection?.root.signed.version, 2);
    assert.deepEqual(await dir.readMetadata(GUN, 'root'), v2);
  });
});

describe('timestamp, snapshot and targets', () => {
  async function pinnedAt(version: number, keys: RoleSigners, root: Buffer): Promise<TrustDirectory> {
    const dir = newDir();
    assert.ok(await updateCollection(context(publish({ keys, roots: [root], version }), { dir })));
    return dir;
  }

  it('refuses a timestamp older than the cached one', async () => {
    const keys = newKeys();
    const root = rootFile(keys, 1);
    const dir = await pinnedAt(3, keys, root);
    await assert.rejects(
      updateCollection(context(publish({ keys, roots: [root], version: 2 }), { dir })),
      trust(
        new RegExp(
          `^the timestamp metadata of ${G} was rolled back: version 2 is older than the version 3 trusted before$`,
        ),
      ),
    );
  });

  it('refuses a snapshot older than the cached one under a newer timestamp', async () => {
    const keys = newKeys();
    const root = rootFile(keys, 1);
    const dir = await pinnedAt(3, keys, root);
    const files = publish({
      keys,
      roots: [root],
      timestampVersion: 4,
      snapshotVersion: 2,
      targetsVersion: 3,
    });
    await assert.rejects(
      updateCollection(context(files, { dir })),
      trust(
        new RegExp(`^the snapshot metadata of ${G} was rolled back: version 2 is older than the version 3`),
      ),
    );
  });

  it('refuses targets older than the cached ones under a newer snapshot', async () => {
    const keys = newKeys();
    const root = rootFile(keys, 1);
    const dir = await pinnedAt(3, keys, root);
    const files = publish({
      keys,
      roots: [root],
      timestampVersion: 4,
      snapshotVersion: 4,
      targetsVersion: 1,
    });
    await assert.rejects(
      updateCollection(context(files, { dir })),
      trust(
        new RegExp(`^the targets metadata of ${G} was rolled back: version 1 is older than the version 3`),
      ),
    );
  });

  it('refuses an expired timestamp', async () => {
    const files = publish({ keys: newKeys() });
    const later = new Date(NOW.getTime() + 15 * DAY);
    await assert.rejects(
      updateCollection(context(files, { now: later })),
      trust(new RegExp(`^the timestamp metadata of ${G} expired on 2026-12-12T12:00:00.000Z$`)),
    );
    // The same data is fine the day before it expires.
    assert.ok(await updateCollection(context(files, { now: new Date(NOW.getTime() + 13 * DAY) })));
  });

  it('refuses an expired snapshot under a fresh timestamp', async () => {
    const files = publish({ keys: newKeys(), snapshotExpires: '2026-11-01T00:00:00Z' });
    await assert.rejects(
      updateCollection(context(files)),
      trust(new RegExp(`^the snapshot metadata of ${G} expired on`)),
    );
  });

  it('refuses snapshot bytes that are not the ones the timestamp lists', async () => {
    const files = publish({ keys: newKeys() });
    const [name, bytes] = served(files, 'snapshot');
    const altered = Buffer.from(bytes);
    // Same length, one byte of a signature changed: only the hashes can tell.
    const at = altered.lastIndexOf('"sig":"') + 10;
    altered[at] = altered[at] === 0x41 ? 0x42 : 0x41;
    files.set(name, altered);
    await assert.rejects(
      updateCollection(context(files)),
      trust(
        new RegExp(
          `^the snapshot metadata of ${G} does not match the sha256 hash the signed metadata gives$`,
        ),
      ),
    );
    files.set(name, Buffer.concat([bytes, Buffer.from('\n')]));
    await assert.rejects(
      updateCollection(context(files)),
      trust(
        new RegExp(
          `^the snapshot metadata of ${G} has ${bytes.length + 1} bytes where the signed metadata says ${bytes.length}$`,
        ),
      ),
    );
  });

  it('refuses targets bytes that are not the ones the snapshot lists', async () => {
    const files = publish({ keys: newKeys() });
    const [name, bytes] = served(files, 'targets');
    files.set(name, Buffer.from(bytes.toString().replace('"version":1', '"version":9')));
    await assert.rejects(
      updateCollection(context(files)),
      trust(new RegExp(`^the targets metadata of ${G} does not match the sha256 hash`)),
    );
  });

  it('refuses targets signed by a key root does not give the targets role', async () => {
    const files = publish({ keys: newKeys(), targetsSigner: ecdsaSigner() });
    await assert.rejects(
      updateCollection(context(files)),
      trust(
        new RegExp(
          `^the targets metadata of ${G} is not signed by enough of its keys \\(0 valid signatures, 1 needed\\)$`,
        ),
      ),
    );
  });

  it('refuses a timestamp signed by another role’s key', async () => {
    const keys = newKeys();
    const files = publish({ keys, timestampSigner: keys.snapshot });
    await assert.rejects(
      updateCollection(context(files)),
      trust(/timestamp metadata .* not signed by enough of its keys/),
    );
  });

  it('refuses a snapshot that does not list the targets', async () => {
    const files = publish({ keys: newKeys(), editSnapshotMeta: (meta) => delete meta.targets });
    await assert.rejects(
      updateCollection(context(files)),
      trust(new RegExp(`^the snapshot metadata of ${G} does not list the targets metadata$`)),
    );
  });

  it('refuses a root that is not the one the snapshot lists', async () => {
    const keys = newKeys();
    const other = rootFile(keys, 1);
    const files = publish({ keys, editSnapshotMeta: (meta) => (meta.root = fileMeta(other)) });
    await assert.rejects(
      updateCollection(context(files)),
      trust(new RegExp(`^the root of ${G} does not match the sha256 hash`)),
    );
  });

  it('needs the targets the snapshot lists', async () => {
    const files = publish({ keys: newKeys() });
    const [name] = served(files, 'targets');
    files.delete(name);
    await assert.rejects(
      updateCollection(context(files)),
      trust(new RegExp(`^the trust server has no ${escape(name)} metadata for ${G}$`)),
    );
  });
});

describe('finding targets', () => {
  const released = fileMeta(Buffer.from('released module'));
  const other = fileMeta(Buffer.from('other module'));

  async function load(spec: Spec, log: string[] = []) {
    const files = publish(spec);
    const ctx = context(files, { log });
    const collection = await updateCollection(ctx);
    assert.ok(collection);
    log.length = 0;
    return { files, ctx, collection, log };
  }

  it('finds a target the targets role signs, and nothing for other names', async () => {
    const { ctx, collection, log } = await load({ keys: newKeys(), targets: { v1: V1, 'dir/v2': other } });
    assert.deepEqual(await findTarget(ctx, collection, 'v1'), { role: 'targets', name: 'v1', meta: V1 });
    assert.deepEqual(await findTarget(ctx, collection, 'dir/v2'), {
      role: 'targets',
      name: 'dir/v2',
      meta: other,
    });
    assert.equal(await findTarget(ctx, collection, 'v3'), undefined);
    assert.equal(await findTarget(ctx, collection, 'V1'), undefined);
    assert.deepEqual(log, [], 'no delegation, nothing more to fetch');
  });

  it('prefers targets/releases over targets when both list the name, and caches the delegation', async () => {
    const signer = ecdsaSigner();
    const { files, ctx, collection, log } = await load({
      keys: newKeys(),
      targets: { v1: V1 },
      delegations: [{ name: 'targets/releases', signer, paths: [''], targets: { v1: released } }],
    });
    assert.deepEqual(await findTarget(ctx, collection, 'v1'), {
      role: 'targets/releases',
      name: 'v1',
      meta: released,
    });
    const [name, bytes] = served(files, 'targets/releases');
    assert.deepEqual(log, [name]);
    assert.deepEqual(await cached(ctx, 'targets/releases'), bytes);
  });

  it('falls back to targets when targets/releases does not list the name', async () => {
    const { ctx, collection } = await load({
      keys: newKeys(),
      targets: { v1: V1 },
      delegations: [
        { name: 'targets/releases', signer: ecdsaSigner(), paths: [''], targets: { v2: released } },
      ],
    });
    assert.deepEqual(await findTarget(ctx, collection, 'v1'), { role: 'targets', name: 'v1', meta: V1 });
    assert.deepEqual(await findTarget(ctx, collection, 'v2'), {
      role: 'targets/releases',
      name: 'v2',
      meta: released,
    });
  });

  it('finds names only other delegations sign', async () => {
    const { ctx, collection } = await load({
      keys: newKeys(),
      delegations: [
        { name: 'targets/releases', signer: ecdsaSigner(), paths: [''], targets: {} },
        { name: 'targets/qa', signer: ecdsaSigner(), paths: ['qa-'], targets: { 'qa-1': other } },
      ],
    });
    assert.deepEqual(await findTarget(ctx, collection, 'qa-1'), {
      role: 'targets/qa',
      name: 'qa-1',
      meta: other,
    });
  });

  it('passes over an expired delegation', async () => {
    const { ctx, collection } = await load({
      keys: newKeys(),
      targets: { v1: V1 },
      delegations: [
        {
          name: 'targets/releases',
          signer: ecdsaSigner(),
          paths: [''],
          targets: { v1: released, only: released },
          expires: '2026-01-01T00:00:00Z',
        },
      ],
    });
    assert.deepEqual(await findTarget(ctx, collection, 'v1'), { role: 'targets', name: 'v1', meta: V1 });
    assert.equal(await findTarget(ctx, collection, 'only'), undefined);
    assert.equal(await cached(ctx, 'targets/releases'), undefined);
  });

  it('passes over a delegation signed by a key it was not given', async () => {
    const { ctx, collection } = await load({
      keys: newKeys(),
      targets: { v1: V1 },
      delegations: [
        {
          name: 'targets/releases',
          signer: ecdsaSigner(),
          signedBy: [ecdsaSigner()],
          paths: [''],
          targets: { v1: released },
        },
      ],
    });
    assert.deepEqual(await findTarget(ctx, collection, 'v1'), { role: 'targets', name: 'v1', meta: V1 });
  });

  it('does not consult a delegation whose paths do not cover the name', async () => {
    const { files, ctx, collection, log } = await load({
      keys: newKeys(),
      targets: {},
      delegations: [
        {
          name: 'targets/other',
          signer: ecdsaSigner(),
          paths: ['other/'],
          targets: { v1: other, 'other/x': other },
        },
      ],
    });
    assert.equal(await findTarget(ctx, collection, 'v1'), undefined);
    assert.deepEqual(log, [], 'targets/other was not fetched');
    assert.equal(await cached(ctx, 'targets/other'), undefined);
    assert.deepEqual(await findTarget(ctx, collection, 'other/x'), {
      role: 'targets/other',
      name: 'other/x',
      meta: other,
    });
    assert.deepEqual(log, [served(files, 'targets/other')[0]]);
  });

  it('does not let targets/releases sign names outside its paths', async () => {
    const { ctx, collection, log } = await load({
      keys: newKeys(),
      targets: { v1: V1 },
      delegations: [
        { name: 'targets/releases', signer: ecdsaSigner(), paths: ['stable-'], targets: { v1: released } },
      ],
    });
    assert.deepEqual(await findTarget(ctx, collection, 'v1'), { role: 'targets', name: 'v1', meta: V1 });
    assert.deepEqual(log, []);
  });

  it('matches path hash prefixes', async () => {
    const prefix = createHash('sha256').update('v7').digest('hex').slice(0, 2);
    const wrong = prefix === '00' ? 'ff' : '00';
    const { ctx, collection } = await load({
      keys: newKeys(),
      targets: {},
      delegations: [
        { name: 'targets/miss', signer: ecdsaSigner(), pathHashPrefixes: [wrong], targets: { v7: V1 } },
        { name: 'targets/hit', signer: ecdsaSigner(), pathHashPrefixes: [prefix], targets: { v7: other } },
      ],
    });
    assert.deepEqual(await findTarget(ctx, collection, 'v7'), {
      role: 'targets/hit',
      name: 'v7',
      meta: other,
    });
  });

  it('follows a delegation of a delegation, but only to roles under it', async () => {
    const { ctx, collection } = await load({
      keys: newKeys(),
      targets: {},
      delegations: [
        { name: 'targets/releases', signer: ecdsaSigner(), paths: [''], targets: {} },
        {
          name: 'targets/releases/nightly',
          parent: 'targets/releases',
          signer: ecdsaSigner(),
          paths: ['nightly-'],
          targets: { 'nightly-1': other },
        },
        // Delegated by targets/releases, but not a role under it.
        {
          name: 'targets/sideways',
          parent: 'targets/releases',
          signer: ecdsaSigner(),
          paths: [''],
          targets: { side: other },
        },
      ],
    });
    assert.deepEqual(await findTarget(ctx, collection, 'nightly-1'), {
      role: 'targets/releases/nightly',
      name: 'nightly-1',
      meta: other,
    });
    assert.equal(await findTarget(ctx, collection, 'side'), undefined);
  });

  it('passes over a delegation the snapshot does not list, without fetching it', async () => {
    const { ctx, collection, log } = await load({
      keys: newKeys(),
      targets: {},
      delegations: [
        {
          name: 'targets/releases',
          signer: ecdsaSigner(),
          paths: [''],
          targets: { v1: released },
          inSnapshot: false,
        },
      ],
    });
    assert.equal(await findTarget(ctx, collection, 'v1'), undefined);
    assert.deepEqual(log, []);
  });

  it('is an error when a delegation is not the bytes the snapshot lists', async () => {
    const { files, ctx, collection } = await load({
      keys: newKeys(),
      targets: { v1: V1 },
      delegations: [
        { name: 'targets/releases', signer: ecdsaSigner(), paths: [''], targets: { v1: released } },
      ],
    });
    const [name, bytes] = served(files, 'targets/releases');
    files.set(name, Buffer.concat([bytes.subarray(0, -1), Buffer.from(' }')]));
    await assert.rejects(
      findTarget(ctx, collection, 'v1'),
      trust(
        new RegExp(
          `^the targets/releases metadata of ${G} has ${bytes.length + 1} bytes where the signed metadata says ${bytes.length}$`,
        ),
      ),
    );
    files.set(name, Buffer.from(bytes.toString().replace('"version":1', '"version":2')));
    await assert.rejects(
      findTarget(ctx, collection, 'v1'),
      trust(/targets\/releases metadata .* does not match the sha256 hash/),
    );
  });

  it('is an error when the server lacks a delegation the snapshot lists', async () => {
    const { ctx, collection } = await load({
      keys: newKeys(),
      delegations: [
        { name: 'targets/releases', signer: ecdsaSigner(), paths: [''], targets: {}, served: false },
      ],
    });
    await assert.rejects(
      findTarget(ctx, collection, 'v1'),
      trust(
        new RegExp(
          `^the trust server lacks the targets/releases metadata of ${G}, which the snapshot lists$`,
        ),
      ),
    );
  });

  it('is an error when a delegation is older than the one cached', async () => {
    const keys = newKeys();
    const signer = ecdsaSigner();
    const root = rootFile(keys, 1);
    const dir = newDir();
    const spec = (version: number): Spec => ({
      keys,
      roots: [root],
      version,
      targets: {},
      delegations: [{ name: 'targets/releases', signer, paths: [''], targets: { v1: released }, version }],
    });
    const newer = context(publish(spec(2)), { dir });
    const first = await updateCollection(newer);
    assert.ok(first);
    assert.equal((await findTarget(newer, first, 'v1'))?.role, 'targets/releases');
    // A server replaying an old delegation under new timestamp, snapshot and targets.
    const replay = publish({
      ...spec(3),
      delegations: [{ name: 'targets/releases', signer, paths: [''], targets: { v1: other }, version: 1 }],
    });
    const ctx = context(replay, { dir });
    const collection = await updateCollection(ctx);
    assert.ok(collection);
    await assert.rejects(
      findTarget(ctx, collection, 'v1'),
      trust(/targets\/releases metadata .* was rolled back: version 1 is older than the version 2/),
    );
  });

  it('keeps a delegation named with .. from landing on another cache file (the pinned root)', async () => {
    const keys = newKeys();
    const files = publish({
      keys,
      targets: {},
      delegations: [
        { name: 'targets/../root', signer: ecdsaSigner(), paths: [''], targets: { evil: other } },
      ],
    });
    const dir = newDir();
    // Notary refuses such a role name outright: the targets metadata naming it is malformed.
    await assert.rejects(
      updateCollection(context(files, { dir })),
      trust(/delegated role name "targets\/\.\.\/root" is not valid/),
    );
    assert.equal(await dir.readMetadata(GUN, 'root'), undefined, 'nothing was pinned or cached');
  });
});

describe('delegationCovers', () => {
  const role = (extra: Partial<DelegatedRole>): DelegatedRole => ({
    name: 'targets/x',
    keyids: [],
    threshold: 1,
    ...extra,
  });

  it('matches path prefixes, the empty prefix matching everything', () => {
    assert.equal(delegationCovers(role({ paths: [''] }), 'anything'), true);
    assert.equal(delegationCovers(role({ paths: ['rel/', 'v'] }), 'rel/1'), true);
    assert.equal(delegationCovers(role({ paths: ['rel/', 'v'] }), 'v2'), true);
    assert.equal(delegationCovers(role({ paths: ['rel/'] }), 'rel'), false);
    assert.equal(delegationCovers(role({ paths: ['rel/'] }), 'other/rel/1'), false);
  });

  it('matches SHA-256 hex prefixes of the name', () => {
    const hash = createHash('sha256').update('v1').digest('hex');
    assert.equal(delegationCovers(role({ path_hash_prefixes: [hash.slice(0, 4)] }), 'v1'), true);
    assert.equal(delegationCovers(role({ path_hash_prefixes: [hash] }), 'v1'), true);
    assert.equal(delegationCovers(role({ path_hash_prefixes: [hash.slice(0, 4)] }), 'v2'), false);
    assert.equal(
      delegationCovers(role({ paths: ['x/'], path_hash_prefixes: [hash.slice(0, 1)] }), 'v1'),
      true,
    );
  });

  it('covers nothing without paths or prefixes', () => {
    assert.equal(delegationCovers(role({}), 'v1'), false);
    assert.equal(delegationCovers(role({ paths: [] }), 'v1'), false);
    assert.equal(delegationCovers(role({ path_hash_prefixes: [] }), 'v1'), false);
  });
});
