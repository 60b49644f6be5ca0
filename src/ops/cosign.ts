import { stat } from 'node:fs/promises';
import { writeAtomic } from '../content/atomic.js';
import { MemoryStore } from '../content/memory.js';
import { listReferrers } from '../content/referrers.js';
import type { ReadOnlyTarget, Target } from '../content/types.js';
import { readVerified } from '../content/verify.js';
import { copy, fetchManifest } from '../copy.js';
import { hasCode, WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { parseManifest } from '../oci/manifest.js';
import {
  type BuiltManifest,
  bundleReferrer,
  SIGNATURE_ANNOTATION,
  signatureLayer,
  signatureManifest,
  signatureTag,
} from '../sign/cosign/artifacts.js';
import {
  BUNDLE_MEDIA_TYPE,
  buildBundle,
  IN_TOTO_PAYLOAD_TYPE,
  MAX_BUNDLE_BYTES,
  pae,
  signStatement,
} from '../sign/cosign/bundle.js';
import { generateKeyPair, readPrivateKey, readPublicKey } from '../sign/cosign/keys.js';
import { keySigner, keyVerifier, type Signer, type Verifier } from '../sign/cosign/signer.js';
import {
  MAX_PAYLOAD_BYTES,
  SIMPLE_SIGNING_MEDIA_TYPE,
  simpleSigningPayload,
} from '../sign/cosign/simplesigning.js';
import { checkBundle, checkSimpleSigning, type SignatureCheck } from '../sign/cosign/verify.js';
import type { TargetOptions } from './repository.js';
import { readTagged, type SettleOptions, updateTag } from './tag-update.js';
import { formatTarget, openTarget, parseTarget, type TargetSpec, targetReference } from './target.js';

/**
 * cosign-compatible signatures with a key pair: `generateCosignKeyPair` writes cosign.key and
 * cosign.pub; `cosignSign` attaches a Sigstore bundle as a referrer (cosign 3) or appends to the
 * `sha256-<hex>.sig` tag (cosign 1/2, `legacyTag`); `cosignVerify` finds signatures both ways and
 * checks them against a public key. Push and pull load this module only when asked to sign or verify.
 */

export type { Signer, VerificationMaterial, Verifier } from '../sign/cosign/signer.js';

/** Where a password comes from: `confirm` asks for a new one twice. */
export type PasswordSource = (request: { confirm: boolean }) => Promise<string>;

export interface GenerateKeyPairOptions {
  /** File name prefix (default `cosign`): `<prefix>.key` and `<prefix>.pub`. */
  prefix?: string | undefined;
  /** Replace existing files. */
  force?: boolean | undefined;
  password: PasswordSource;
}

export interface GenerateKeyPairResult {
  privateKey: string;
  publicKey: string;
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}

/** Writes a new ECDSA P-256 key pair: the private key encrypted (0600), the public key (0644). */
export async function generateCosignKeyPair(options: GenerateKeyPairOptions): Promise<GenerateKeyPairResult> {
  const prefix = options.prefix ?? 'cosign';
  const privateKey = `${prefix}.key`;
  const publicKey = `${prefix}.pub`;
  if (!options.force) {
    for (const file of [privateKey, publicKey]) {
      if (await exists(file)) {
        throw new WasmOciError('FILE', `${file} exists: not overwriting it`, {
          hint: 'pick another prefix with the `prefix` option, or replace it with the `force` option',
        });
      }
    }
  }
  const password = await options.password({ confirm: true });
  const pair = await generateKeyPair(password);
  await writeAtomic(privateKey, pair.privateKey, { mode: 0o600, exact: true });
  await writeAtomic(publicKey, pair.publicKey, { mode: 0o644 });
  return { privateKey, publicKey };
}

/** A signer for an encrypted cosign private key (PEM text); the password is asked for once. */
export async function openKeySigner(privateKey: string, password: PasswordSource): Promise<Signer> {
  return keySigner(await readPrivateKey(privateKey, await password({ confirm: false })));
}

/** A verifier for a cosign public key (PEM text). */
export function openKeyVerifier(publicKey: string): Verifier {
  return keyVerifier(readPublicKey(publicKey));
}

/** One signature written. */
export interface SignatureWritten {
  kind: 'bundle' | 'legacy';
  /** The manifest holding it (the referrer, or the `.sig` manifest). */
  manifest: Descriptor;
  /** For `legacy`: the `.sig` tag. */
  tag?: string | undefined;
  /** True when an identical signature by this key was there already (nothing was written). */
  existed?: boolean | undefined;
}

function storeOf(built: BuiltManifest): MemoryStore {
  const store = new MemoryStore();
  for (const blob of built.blobs) store.add(blob.descriptor.mediaType, Buffer.from(blob.bytes));
  store.add(built.descriptor.mediaType, Buffer.from(built.bytes));
  return store;
}

/** The identity a simple-signing payload names: the repository, as cosign's `Repository.Name()`. */
function dockerReference(spec: TargetSpec): string {
  return formatTarget({ ...spec, tag: undefined, digest: undefined });
}

/** Blob bytes of a signature artifact, verified against the descriptor, within a cap. */
async function blobBytes(
  target: ReadOnlyTarget,
  desc: Descriptor,
  cap: number,
  signal: AbortSignal | undefined,
) {
  if (desc.size > cap) {
    throw new WasmOciError('TOO_LARGE', `${desc.digest} has ${desc.size} bytes: no signature is that large`);
  }
  return readVerified(await target.fetch(desc, { signal }), desc, cap);
}

export interface SignOptions extends SettleOptions {
  /** Instead of a bundle referrer, a layer of the cosign 1/2 `.sig` tag. */
  legacyTag?: boolean | undefined;
  /** The time in the referrer's created annotation (default: now). */
  now?: Date | undefined;
}

/**
 * Signs the manifest `subject` of an open target: a bundle referrer by default, the `.sig` tag with
 * `legacyTag`. Nothing is tagged before everything it points to is stored.
 */
export async function signManifest(
  target: Target,
  spec: TargetSpec,
  subject: Descriptor,
  signer: Signer,
  options: SignOptions = {},
): Promise<SignatureWritten> {
  if (options.legacyTag) {
    const payload = simpleSigningPayload(dockerReference(spec), subject.digest);
    const signature = await signer.sign(payload);
    return appendLegacySignature(target, subject, payload, signature, signer.verifier(), options);
  }
  const statement = signStatement(subject.digest);
  const signature = await signer.sign(pae(IN_TOTO_PAYLOAD_TYPE, statement));
  const bundle = buildBundle(statement, signature, signer.material());
  const built = bundleReferrer(subject, bundle, options.now ?? new Date());
  // Pushed by digest: the target lists it (a registry with the referrers API by itself; else the push
  // keeps the sha256-<hex> fallback index, content/referrers.ts addReferrer).
  await copy(storeOf(built), built.descriptor.digest, target, undefined, { signal: options.signal });
  return { kind: 'bundle', manifest: built.descriptor };
}

/** The `.sig` manifest now: its digest and layers (none when the tag does not exist). */
async function legacyLayers(
  target: Target,
  tag: string,
  signal: AbortSignal | undefined,
): Promise<{ digest?: string | undefined; value: Descriptor[] }> {
  const tagged = await readTagged(target, tag, signal);
  if (!tagged) return { value: [] };
  const parsed = parseManifest(tagged.bytes, tagged.descriptor.mediaType);
  if (parsed.kind !== 'manifest') {
    throw new WasmOciError(
      'UNSUPPORTED',
      `the tag ${tag} holds an index, not cosign signatures: not replacing it`,
    );
  }
  return { digest: tagged.descriptor.digest, value: parsed.manifest.layers };
}

/**
 * Appends a signature layer to the `.sig` manifest (as cosign does), unless a layer with the same
 * payload already carries a valid signature by this key; other writers are allowed for (`updateTag`).
 */
async function appendLegacySignature(
  target: Target,
  subject: Descriptor,
  payload: Uint8Array,
  signature: Uint8Array,
  verifier: Verifier,
  options: SignOptions,
): Promise<SignatureWritten> {
  const { signal } = options;
  const tag = signatureTag(subject.digest);
  const layer = signatureLayer(payload, signature);
  const ours = (l: Descriptor) =>
    l.digest === layer.digest &&
    checkSimpleSigning(payload, l.annotations?.[SIGNATURE_ANNOTATION], subject.digest, verifier).ok;
  let built: BuiltManifest | undefined;
  const wrote = await updateTag<Descriptor[]>(
    {
      read: () => legacyLayers(target, tag, signal),
      has: (layers) => layers.some(ours),
      async write(layers) {
        built = signatureManifest(layers, layer, payload);
        await copy(storeOf(built), built.descriptor.digest, target, tag, { signal });
      },
    },
    options,
  );
  const manifest = wrote && built ? built.descriptor : await target.resolve(tag, { signal });
  return { kind: 'legacy', manifest, tag, ...(wrote ? {} : { existed: true }) };
}

/** One signature found, and what checking it said. */
export interface SignatureFound {
  kind: 'bundle' | 'legacy';
  /** The manifest that holds it (the referrer, or the `.sig` manifest). */
  manifest: Descriptor;
  /** The layer (the bundle or the payload); none when the manifest itself failed. */
  layer?: Descriptor | undefined;
  verified: boolean;
  reason?: string | undefined;
}

type Located = Pick<SignatureFound, 'kind' | 'manifest' | 'layer'>;

/** Runs one check; a malformed or unreadable signature is a failed one (cancellation still ends it). */
async function checked(where: Located, check: () => Promise<SignatureCheck>): Promise<SignatureFound> {
  try {
    const result = await check();
    return { ...where, verified: result.ok, ...(result.reason ? { reason: result.reason } : {}) };
  } catch (err) {
    if (!(err instanceof WasmOciError) || err.code === 'ABORTED') throw err;
    return { ...where, verified: false, reason: err.message };
  }
}

/** At most this many signatures are checked for one subject (a registry could list without end). */
const MAX_SIGNATURES = 256;

/**
 * Every cosign signature of `subject` in the target, checked against `verifier`: the bundle referrers
 * (referrers API or tag schema) and the layers of the `.sig` tag.
 */
export async function findSignatures(
  target: ReadOnlyTarget,
  subject: Descriptor,
  verifier: Verifier,
  signal?: AbortSignal | undefined,
): Promise<SignatureFound[]> {
  const found: SignatureFound[] = [];
  // Not filtered by the registry: go-containerregistry (so cosign) writes fallback index entries without
  // their artifactType; an entry without one is looked at, and kept only when its manifest is a bundle.
  const { referrers } = await listReferrers(target, subject, { signal });
  const candidates = referrers.filter(
    (r) => r.artifactType === undefined || r.artifactType === BUNDLE_MEDIA_TYPE,
  );
  for (const referrer of candidates.slice(0, MAX_SIGNATURES)) {
    found.push(...(await checkReferrer(target, referrer, subject, verifier, signal)));
  }
  let sig: Descriptor | undefined;
  try {
    sig = await target.resolve(signatureTag(subject.digest), { signal });
  } catch (err) {
    if (!hasCode(err, 'NOT_FOUND')) throw err;
  }
  if (sig) {
    const tagged = sig;
    let layers: Descriptor[] = [];
    // A .sig manifest that cannot be read is one failed signature: the bundles may still verify.
    const whole = await checked({ kind: 'legacy', manifest: sig }, async () => {
      const parsed = parseManifest(await fetchManifest(target, tagged, signal), tagged.mediaType);
      layers = parsed.kind === 'manifest' ? parsed.manifest.layers : [];
      return { ok: true };
    });
    if (!whole.verified) found.push(whole);
    for (const layer of layers.slice(0, MAX_SIGNATURES)) {
      if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) continue;
      const where = { kind: 'legacy' as const, manifest: tagged, layer };
      found.push(
        await checked(where, async () =>
          checkSimpleSigning(
            await blobBytes(target, layer, MAX_PAYLOAD_BYTES, signal),
            layer.annotations?.[SIGNATURE_ANNOTATION],
            subject.digest,
            verifier,
          ),
        ),
      );
    }
  }
  return found;
}

/** An untyped index entry that turns out to be another kind of referrer (an SBOM...): not listed. */
const NOT_A_SIGNATURE = 'not a signature';

async function checkReferrer(
  target: ReadOnlyTarget,
  referrer: Descriptor,
  subject: Descriptor,
  verifier: Verifier,
  signal: AbortSignal | undefined,
): Promise<SignatureFound[]> {
  const whole = { kind: 'bundle' as const, manifest: referrer };
  let layers: Descriptor[] = [];
  const manifestCheck = await checked(whole, async () => {
    const parsed = parseManifest(await fetchManifest(target, referrer, signal), referrer.mediaType);
    const manifest = parsed.kind === 'manifest' ? parsed.manifest : undefined;
    const bundles = manifest?.layers.filter((l) => l.mediaType === BUNDLE_MEDIA_TYPE) ?? [];
    if (
      referrer.artifactType === undefined &&
      (manifest?.artifactType !== BUNDLE_MEDIA_TYPE || !bundles.length)
    ) {
      return { ok: false, reason: NOT_A_SIGNATURE };
    }
    if (manifest?.subject?.digest !== subject.digest) {
      return {
        ok: false,
        reason: `its subject is ${manifest?.subject?.digest ?? 'missing'}, not ${subject.digest}`,
      };
    }
    layers = bundles.slice(0, 16);
    return { ok: true };
  });
  if (!manifestCheck.verified) return manifestCheck.reason === NOT_A_SIGNATURE ? [] : [manifestCheck];
  const out: SignatureFound[] = [];
  for (const layer of layers) {
    out.push(
      await checked({ ...whole, layer }, async () =>
        checkBundle(await blobBytes(target, layer, MAX_BUNDLE_BYTES, signal), subject.digest, verifier),
      ),
    );
  }
  return out;
}

/** Throws SIGNATURE_INVALID unless one of `found` verified. */
export function requireVerified(found: readonly SignatureFound[], what: string): void {
  if (found.some((s) => s.verified)) return;
  const first = found[0];
  throw new WasmOciError(
    'SIGNATURE_INVALID',
    found.length === 0
      ? `${what} has no cosign signature`
      : `no signature of ${what} verifies with this key (${found.length} checked; ${first?.reason ?? 'invalid'})`,
    {
      hint:
        found.length === 0
          ? 'sign it first (sign with a key), or check the reference'
          : 'check that the public key is the one it was signed with',
      details: { signatures: found },
    },
  );
}

export interface CosignSignOptions extends TargetOptions, SignOptions {
  /** The encrypted private key (PEM text of cosign.key). */
  privateKey: string;
  password: PasswordSource;
}

export interface CosignSignResult {
  /** The signed manifest, by digest. */
  reference: string;
  subject: Descriptor;
  signature: SignatureWritten;
}

/** Signs the manifest a reference names (a tag is resolved once: the digest is what is signed). */
export async function cosignSign(options: CosignSignOptions): Promise<CosignSignResult> {
  const spec = parseTarget(options.reference, { layout: options.ociLayout });
  const signer = await openKeySigner(options.privateKey, options.password);
  const { target, close } = openTarget(spec, 'push', options);
  try {
    const subject = await target.resolve(targetReference(spec), { signal: options.signal });
    const signature = await signManifest(target, spec, subject, signer, options);
    return {
      reference: formatTarget({ ...spec, tag: undefined, digest: subject.digest }),
      subject,
      signature,
    };
  } finally {
    close();
  }
}

export interface CosignVerifyOptions extends TargetOptions {
  /** The public key (PEM text of cosign.pub). */
  publicKey: string;
}

export interface CosignVerifyResult {
  reference: string;
  subject: Descriptor;
  /** Every signature found, verified or not; at least one verified (else SIGNATURE_INVALID). */
  signatures: SignatureFound[];
}

/** Verifies that the manifest a reference names has a cosign signature by the key. */
export async function cosignVerify(options: CosignVerifyOptions): Promise<CosignVerifyResult> {
  const spec = parseTarget(options.reference, { layout: options.ociLayout });
  const verifier = openKeyVerifier(options.publicKey);
  const { target, close } = openTarget(spec, 'pull', options);
  try {
    const subject = await target.resolve(targetReference(spec), { signal: options.signal });
    const reference = formatTarget({ ...spec, tag: undefined, digest: subject.digest });
    const signatures = await findSignatures(target, subject, verifier, options.signal);
    requireVerified(signatures, reference);
    return { reference, subject, signatures };
  } finally {
    close();
  }
}
