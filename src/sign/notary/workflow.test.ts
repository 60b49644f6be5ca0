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
import { findTarget, type TrustContext, updateCollection } from './collection.js';
import { type TufKey } from './keys.js';
import { TrustDirectory } from './keystore.js';
import { type DelegatedRole, expiresIn, type FileMeta, fileMeta } from './metadata.js';
import type { TrustServer } from './server.js';

/**
 * The TUF client workflow against collections built in memory (a fake server answering metadata
 * by name): pinning, rotation, rollback, expiry, hashes, thresholds, delegations.
 */

const sha256hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A collection and the fake server serving it; `publish()` regenerates the files. */
class Collection {
  root = rootSigner();
  targetsKey = ecdsaSigner();
  snapshotKey = ecdsaSigner();
  timestampKey = ed25519Signer();
  rootVersion = 1;
  version = 1;
  targets: Record<string, FileMeta> = { v1: fileMeta(Buffer.from('module one')) };
  delegations: { keys: Record<string, TufKey>; roles: DelegatedRole[] } = { keys: {}, roles: [] };
  delegated = new Map<string, { signer: Signer; targets: Record<string, FileMeta>; expires?: string }>();
  timestampExpires = expiresIn(NOW, { days: 14 });
  files = new Map<string, Buffer>();
  /** Signers of the current root (for rotation: old and new). */
  rootSigners: Signer[] = [this.root];

  rootSigned() {
    return {
      _type: 'Root',
      consistent_snapshot: false,
      expires: expiresIn(NOW, { years: 10 }),
      keys: {
        [this.root.id]: this.root.pub,
        [this.targetsKey.id]: this.targetsKey.pub,
        [this.snapshotKey.id]: this.snapshotKey.pub,
        [this.timestampKey.id]: this.timestampKey.pub,
      },
      roles: {
        root: { keyids: [this.root.id], threshold: 1 },
        snapshot: { keyids: [this.snapshotKey.id], threshold: 1 },
        targets: { keyids: [this.targetsKey.id], threshold: 1 },
        timestamp: { keyids: [this.timestampKey.id], threshold: 1 },
      },
      version: this.rootVersion,
    };
  }

  /** Signs the targets metadata (the targets key unless a test swaps it). */
  targetsSigner?: Signer;

  publish(): void {
    // A root version is signed once (ECDSA signatures differ each time: a re-signed root is another root).
    const root = this.files.get(`${this.rootVersion}.root`) ?? signWith(this.rootSigned(), this.rootSigners);
    this.files.set('root', root);
    this.files.set(`${this.rootVersion}.root`, root);
    const targets = signWith(
      {
        _type: 'Targets',
        delegations: this.delegations,
        expires: expiresIn(NOW, { years: 3 }),
        targets: this.targets,
        version: this.version,
      },
      [this.targetsSigner ?? this.targetsKey],
    );
    const meta: Record<string, FileMeta> = { root: fileMeta(root), targets: fileMeta(targets) };
    this.files.set(`targets.${sha256hex(targets)}`, targets);
    for (const [name, d] of this.delegated) {
      const bytes = signWith(
        {
          _type: 'Targets',
          delegations: { keys: {}, roles: [] },
          expires: d.expires ?? expiresIn(NOW, { years: 3 }),
          targets: d.targets,
          version: this.version,
        },
        [d.signer],
      );
      meta[name] = fileMeta(bytes);
      this.files.set(`${name}.${sha256hex(bytes)}`, bytes);
    }
    const snapshot = signWith(
      { _type: 'Snapshot', expires: expiresIn(NOW, { years: 3 }), meta, version: this.version },
      [this.snapshotKey],
    );
    this.files.set(`snapshot.${sha256hex(snapshot)}`, snapshot);
    this.files.set(
      'timestamp',
      signWith(
        {
          _type: 'Timestamp',
          expires: this.timestampExpires,
          meta: { snapshot: fileMeta(snapshot) },
          version: this.version,
        },
        [this.timestampKey],
      ),
    );
  }

  delegate(name: string, paths: string[], targets: Record<string, FileMeta>, expires?: string): void {
    const signer = ecdsaSigner();
    this.delegations.keys[signer.id] = signer.pub;
    this.delegations.roles.push({ name, keyids: [signer.id], threshold: 1, paths });
    this.delegated.set(name, { signer, targets, ...(expires ? { expires } : {}) });
  }

  server(): TrustServer {
    return fakeTrustServer(this.files);
  }
}

let work: string;
let n = 0;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wasm-to-oci-trust-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

function context(c: Collection, dir = join(work, `dir${n++}`), now = NOW): TrustContext {
  return { gun: GUN, server: c.server(), dir: new TrustDirectory(dir), now };
}

const trustError = (pattern: RegExp) => (err: unknown) => hasCode(err, 'TRUST') && pattern.test(err.message);

describe('trust on first use and pinning', () => {
  it('verifies a new collection, pins its root and caches what it verified', async () => {
    const c = new Collection();
    c.publish();
    const ctx = context(c);
    const collection = await updateCollection(ctx);
    assert.ok(collection);
    assert.deepEqual(await findTarget(ctx, collection, 'v1'), {
      role: 'targets',
      name: 'v1',
      meta: c.targets.v1,
    });
    assert.equal(await findTarget(ctx, collection, 'v9'), undefined);
    for (const role of ['root', 'timestamp', 'snapshot', 'targets']) {
      assert.ok(await ctx.dir.readMetadata(GUN, role), `${role} cached`);
    }
    // Again with the same data, from the pin.
    assert.ok(await updateCollection(ctx));
  });

  it('undefined when the server has nothing and nothing was pinned; an error when something was', async () => {
    const empty = new Collection();
    const ctx = context(empty);
    assert.equal(await updateCollection(ctx), undefined);
    const c = new Collection();
    c.publish();
    const dir = join(work, `dir${n++}`);
    await updateCollection(context(c, dir));
    await assert.rejects(updateCollection(context(empty, dir)), trustError(/which was signed before/));
  });

  it('refuses a root whose certificate names another collection', async () => {
    const c = new Collection();
    c.root = rootSigner('registry.test:5000/someone/else');
    c.rootSigners = [c.root];
    c.publish();
    await assert.rejects(
      updateCollection(context(c)),
      trustError(/no usable root key .* not "registry\.test:5000\/team\/app"/),
    );
  });

  it('refuses a root signed by a key it does not list', async () => {
    const c = new Collection();
    c.rootSigners = [rootSigner()];
    c.publish();
    await assert.rejects(updateCollection(context(c)), trustError(/root metadata .* not signed by enough/));
  });
});

describe('root rotation', () => {
  it('follows v1 -> v3 through 2.root when each version is signed by the previous root and itself', async () => {
    const c = new Collection();
    c.publish();
    const dir = join(work, `dir${n++}`);
    await updateCollection(context(c, dir));
    for (const version of [2, 3]) {
      const old = c.root;
      c.root = rootSigner();
      c.rootSigners = [old, c.root];
      c.rootVersion = version;
      c.version++;
      c.publish();
    }
    const ctx = context(c, dir);
    assert.ok(await updateCollection(ctx));
    const pinned = JSON.parse(((await ctx.dir.readMetadata(GUN, 'root')) as Buffer).toString());
    assert.equal(pinned.signed.version, 3);
  });

  it('refuses a new root the pinned root keys did not sign', async () => {
    const c = new Collection();
    c.publish();
    const dir = join(work, `dir${n++}`);
    await updateCollection(context(c, dir));
    c.root = rootSigner();
    c.rootSigners = [c.root];
    c.rootVersion = 2;
    c.publish();
    await assert.rejects(
      updateCollection(context(c, dir)),
      trustError(/replaced by one the pinned root keys did not sign/),
    );
  });

  it('refuses an older root, and a different root of the same version', async () => {
    const c = new Collection();
    c.rootVersion = 2;
    c.publish();
    const dir = join(work, `dir${n++}`);
    await updateCollection(context(c, dir));
    c.rootVersion = 1;
    c.publish();
    await assert.rejects(
      updateCollection(context(c, dir)),
      trustError(/rolled back: version 1 is older than the version 2/),
    );
    const other = new Collection();
    other.rootVersion = 2;
    other.publish();
    await assert.rejects(
      updateCollection(context(other, dir)),
      trustError(/differs from the pinned root of the same version 2/),
    );
  });
});

describe('timestamp, snapshot, targets', () => {
  it('refuses a timestamp older than the one seen before', async () => {
    const c = new Collection();
    c.version = 3;
    c.publish();
    const dir = join(work, `dir${n++}`);
    await updateCollection(context(c, dir));
    const newer = c.files.get('timestamp') as Buffer;
    c.version = 2;
    c.publish();
    await assert.rejects(
      updateCollection(context(c, dir)),
      trustError(/timestamp metadata .* rolled back: version 2 is older than the version 3/),
    );
    c.files.set('timestamp', newer);
  });

  it('refuses expired metadata (a freeze)', async () => {
    const c = new Collection();
    c.publish();
    const later = new Date(NOW.getTime() + 15 * 86_400_000);
    await assert.rejects(
      updateCollection(context(c, undefined, later)),
      trustError(/timestamp metadata .* expired on 2026-12-12/),
    );
  });

  it('refuses a snapshot that is not the one the timestamp lists', async () => {
    const c = new Collection();
    c.publish();
    const [name, bytes] = [...c.files].find(([k]) => k.startsWith('snapshot.')) as [string, Buffer];
    c.files.set(name, Buffer.concat([bytes, Buffer.from(' ')]));
    await assert.rejects(
      updateCollection(context(c)),
      trustError(/snapshot metadata .* has \d+ bytes where the signed metadata says/),
    );
  });

  it('refuses targets signed by a key the root does not give the targets role', async () => {
    const c = new Collection();
    c.targetsSigner = ecdsaSigner();
    c.publish();
    await assert.rejects(
      updateCollection(context(c)),
      trustError(/targets metadata .* not signed by enough of its keys \(0 valid signatures, 1 needed\)/),
    );
  });
});

describe('delegations', () => {
  it('prefers targets/releases, follows paths, skips expired delegations, refuses altered ones', async () => {
    const c = new Collection();
    const released = fileMeta(Buffer.from('released module'));
    const other = fileMeta(Buffer.from('other module'));
    c.delegate('targets/releases', [''], { v1: released });
    c.delegate('targets/qa', ['qa-'], { 'qa-1': other, v2: other });
    c.delegate('targets/old', [''], { v3: other }, expiresIn(new Date('2020-01-01T00:00:00Z'), {}));
    c.publish();
    const ctx = context(c);
    const collection = await updateCollection(ctx);
    assert.ok(collection);
    assert.deepEqual(await findTarget(ctx, collection, 'v1'), {
      role: 'targets/releases',
      name: 'v1',
      meta: released,
    });
    assert.deepEqual((await findTarget(ctx, collection, 'qa-1'))?.role, 'targets/qa');
    // targets/qa may only sign names starting with qa-: its v2 does not count.
    assert.equal(await findTarget(ctx, collection, 'v2'), undefined);
    // An expired delegation is passed over.
    assert.equal(await findTarget(ctx, collection, 'v3'), undefined);

    const [name, bytes] = [...c.files].find(([k]) => k.startsWith('targets/releases.')) as [string, Buffer];
    c.files.set(name, Buffer.concat([bytes.subarray(0, -1), Buffer.from(' }')]));
    const again = context(c);
    const tampered = await updateCollection(again);
    assert.ok(tampered);
    await assert.rejects(
      findTarget(again, tampered, 'v1'),
      trustError(/targets\/releases metadata .* has \d+ bytes where the signed metadata says/),
    );
  });
});
