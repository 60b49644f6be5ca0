import type { Readable } from 'node:stream';
import { Readable as ReadableStream } from 'node:stream';
import { type Action, repositoryScope } from '../auth/scope.js';
import { addReferrer, referrerOf, removeReferrer } from '../content/referrers.js';
import type {
  BlobPushOptions,
  BlobStat,
  BytesHolder,
  ChunkFetcher,
  ChunkSink,
  Content,
  Ingester,
  IngestOptions,
  IngestSource,
  ManifestDeleter,
  Mounter,
  OperationOptions,
  ReferencePusher,
  ReferrerLister,
  ReferrersQuery,
  RepositoryLocation,
  TagLister,
  TagListOptions,
  Target,
} from '../content/types.js';
import { hasCode, WasmOciError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { isDigest, parseDigest } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import { isManifestMediaType, MANIFEST_ACCEPT } from '../oci/mediatypes.js';
import { discard } from '../transport/body.js';
import { isTransient } from '../transport/errors.js';
import { header, isFileRange } from '../transport/types.js';
import { api } from './api.js';
import type { RegistryClient } from './client.js';
import { type DownloadRequest, downloadInto, downloadStream } from './download.js';
import { registryCodes } from './errors.js';
import { at, manifestDescriptor } from './manifests.js';
import { referrersFromApi } from './referrers.js';
import { tagPages } from './tags.js';
import {
  bytesSource,
  fileSource,
  PositionedHash,
  streamSource,
  type UploadRequest,
  uploadBlob,
} from './upload.js';

export { nextLink, parseTagPage, type TagListOptions } from './tags.js';

export interface RepositoryOptions {
  /**
   * What the caller will do: `push` asks every token for `pull,push` from the first request on, so one
   * token serves a whole push instead of a pull token followed by a push token.
   */
  access?: 'pull' | 'push';
  /** Largest PATCH body when a registry needs chunked uploads (default 4 MiB). */
  maxChunkBytes?: number | undefined;
}

/** How many recently resolved manifests are kept, so resolve-then-fetch costs one GET. */
const MANIFEST_MEMO_SIZE = 16;

/**
 * A repository on a registry, as a Target over the distribution API: manifests by tag or digest, blobs
 * with existence checks, resumable downloads, and uploads that survive drops and registries' limits
 * (upload.ts).
 */
export class RemoteRepository
  implements
    Target,
    BytesHolder,
    ReferencePusher,
    Ingester,
    ChunkFetcher,
    Mounter,
    TagLister,
    BlobStat,
    ManifestDeleter,
    ReferrerLister
{
  readonly client: RegistryClient;
  readonly name: string;
  private readonly actions: Action[];
  private readonly manifests = new Map<string, Buffer>();
  /** Blobs this process stored or saw in the repository: no need to ask again. */
  private readonly present = new Set<string>();
  private readonly maxChunkBytes: number | undefined;

  constructor(client: RegistryClient, name: string, options: RepositoryOptions = {}) {
    this.client = client;
    this.name = name;
    this.actions = options.access === 'push' ? ['pull', 'push'] : ['pull'];
    this.maxChunkBytes = options.maxChunkBytes;
  }

  private get scopes(): string[] {
    return [repositoryScope(this.name, this.actions)];
  }

  private get pushScopes(): string[] {
    return [repositoryScope(this.name, ['pull', 'push'])];
  }

  private where(): string {
    return `${this.client.registry}/${this.name}`;
  }

  private remember(digest: string, bytes: Buffer): void {
    this.manifests.set(digest, bytes);
    if (this.manifests.size > MANIFEST_MEMO_SIZE) {
      const oldest = this.manifests.keys().next().value;
      if (oldest !== undefined) this.manifests.delete(oldest);
    }
  }

  /**
   * A manifest this repository resolved or stored in this process, checked against its digest then
   * (a pull reads the one it resolved from here, with no stream between); none for blobs.
   */
  bytesOf(desc: Descriptor): Buffer | undefined {
    const bytes = this.manifests.get(desc.digest);
    return bytes?.length === desc.size ? bytes : undefined;
  }

  /** Forgets that a blob is present (the registry said otherwise): the next check asks again. */
  forget(digest: string): void {
    this.present.delete(digest);
  }

  /**
   * Resolves a tag or digest with one GET (the bytes are kept for the fetch that follows). The body is
   * checked against the digest asked for, or against the registry's Docker-Content-Digest.
   */
  async resolve(reference: string, options: OperationOptions = {}): Promise<Descriptor> {
    const byDigest = isDigest(reference);
    const request = (retry: boolean) =>
      this.client.read(
        {
          method: 'GET',
          url: api.manifest(this.name, reference),
          headers: { accept: MANIFEST_ACCEPT.join(', ') },
          scopes: this.scopes,
          signal: options.signal,
          retry,
        },
        { cap: MAX_MANIFEST_BYTES, what: 'manifest', ok: [200] },
      );
    // A digest is tried once first: registries answer a blob's digest with 404 or 500 (Distribution
    // reads the blob as a manifest and fails), and a blob is settled by one HEAD, not by retries.
    // Transient failures of that first try (a reset, a timeout) go on to the retried request.
    let { res, bytes } = await request(!byDigest).catch((err: unknown) => {
      if (!byDigest || !isTransient(err)) throw err;
      return request(true);
    });
    if (byDigest && res.status !== 200) {
      if (await this.isBlob(reference, options.signal)) {
        await discard(res.body);
        throw new WasmOciError(
          'NOT_FOUND',
          `${this.where()}@${reference} is a blob (a layer or a config), not a manifest`,
          {
            status: res.status,
            hint: `pull and inspect take a manifest; to download the blob itself use: blob get ${this.where()}@${reference} -o <file>`,
            details: { blob: true },
          },
        );
      }
      if (res.status !== 404) {
        await discard(res.body);
        ({ res, bytes } = await request(true));
      }
    }
    if (res.status === 404) {
      await discard(res.body);
      throw new WasmOciError('NOT_FOUND', `${this.where()}${at(reference)}: manifest not found`, {
        status: 404,
        hint: byDigest
          ? `no manifest or blob has that digest in ${this.where()}`
          : `check the repository name and the tag; nothing is tagged ${reference} in ${this.where()}`,
      });
    }
    if (res.status !== 200)
      throw await this.client.responseError(res, `get manifest ${this.where()}${at(reference)}`);
    const desc = manifestDescriptor(res, bytes, reference, this.where());
    this.remember(desc.digest, bytes);
    return desc;
  }

  /** True when the repository holds a blob with this digest (a `HEAD`; any failure counts as no). */
  private async isBlob(digest: string, signal: AbortSignal | undefined): Promise<boolean> {
    try {
      const res = await this.client.send({
        method: 'HEAD',
        url: api.blob(this.name, digest),
        scopes: this.scopes,
        signal,
        followRedirects: true,
        retry: false,
      });
      await discard(res.body);
      return res.status === 200;
    } catch (err) {
      if (hasCode(err, 'ABORTED')) throw err;
      return false;
    }
  }

  private download(desc: Descriptor, signal: AbortSignal | undefined): DownloadRequest {
    return {
      client: this.client,
      path: api.blob(this.name, desc.digest),
      desc,
      scopes: this.scopes,
      signal,
      where: `${this.where()}@${desc.digest}`,
    };
  }

  async fetch(desc: Descriptor, options: OperationOptions = {}): Promise<Readable> {
    if (isManifestMediaType(desc.mediaType)) {
      const memo = this.manifests.get(desc.digest);
      if (memo) return ReadableStream.from([memo]);
      const { res, bytes } = await this.client.read(
        {
          method: 'GET',
          url: api.manifest(this.name, desc.digest),
          headers: { accept: [desc.mediaType, ...MANIFEST_ACCEPT].join(', ') },
          scopes: this.scopes,
          signal: options.signal,
        },
        { cap: MAX_MANIFEST_BYTES, what: 'manifest', ok: [200] },
      );
      if (res.status !== 200)
        throw await this.client.responseError(res, `get manifest ${this.where()}@${desc.digest}`);
      return ReadableStream.from([bytes]);
    }
    return downloadStream(this.download(desc, options.signal));
  }

  /** Downloads a blob straight into a synchronous sink (the allocation-free path of copy()), resumably. */
  async fetchInto(desc: Descriptor, sink: ChunkSink, options: OperationOptions = {}): Promise<void> {
    await downloadInto(this.download(desc, options.signal), sink);
  }

  async exists(desc: Descriptor, options: OperationOptions = {}): Promise<boolean> {
    if (this.present.has(desc.digest)) return true;
    const manifest = isManifestMediaType(desc.mediaType);
    const res = await this.client.send({
      method: 'HEAD',
      url: manifest ? api.manifest(this.name, desc.digest) : api.blob(this.name, desc.digest),
      headers: manifest ? { accept: MANIFEST_ACCEPT.join(', ') } : {},
      scopes: this.scopes,
      signal: options.signal,
    });
    await discard(res.body);
    if (res.status === 200) {
      if (!manifest) this.present.add(desc.digest);
      return true;
    }
    if (res.status === 404) return false;
    throw await this.client.responseError(res, `check ${this.where()}@${desc.digest}`);
  }

  private uploads(signal: AbortSignal | undefined): UploadRequest {
    return {
      client: this.client,
      name: this.name,
      scopes: this.pushScopes,
      signal,
      where: this.where(),
      maxChunkBytes: this.maxChunkBytes,
    };
  }

  async push(desc: Descriptor, content: Content, options: BlobPushOptions = {}): Promise<void> {
    if (isManifestMediaType(desc.mediaType)) {
      if (!(content instanceof Uint8Array)) {
        throw new WasmOciError('USAGE', 'manifests are pushed from memory, not from a stream');
      }
      await this.putManifest(desc, content, desc.digest, options.signal, true);
      return;
    }
    const source =
      content instanceof Uint8Array ? bytesSource(content) : streamSource(content, desc.size, options.reopen);
    const stored = await uploadBlob(this.uploads(options.signal), source, {
      digest: desc.digest,
      size: desc.size,
    });
    if (stored.digest !== desc.digest) {
      throw new WasmOciError(
        'DIGEST_MISMATCH',
        `${this.where()} stored ${stored.digest}, not ${desc.digest}`,
      );
    }
    this.present.add(desc.digest);
  }

  async pushReference(
    desc: Descriptor,
    content: Uint8Array,
    reference: string,
    options: OperationOptions = {},
  ): Promise<void> {
    await this.putManifest(desc, content, reference, options.signal, true);
  }

  /**
   * The tags, page by page, following `Link: <...>; rel="next"` (same origin only), bounded in pages and
   * bytes; a page that links back to one already read ends the listing with an error.
   */
  tagPages(options: TagListOptions = {}): AsyncGenerator<string[]> {
    return tagPages(
      { client: this.client, name: this.name, scopes: this.scopes, where: this.where() },
      options,
    );
  }

  /** All tags (bounded as tagPages is). */
  async tags(options: TagListOptions = {}): Promise<string[]> {
    const tags: string[] = [];
    for await (const page of this.tagPages(options)) tags.push(...page);
    return tags;
  }

  /** The referrers of `subject` through the registry's referrers API (`undefined`: it has none). */
  async referrers(subject: Descriptor, query: ReferrersQuery = {}): Promise<Descriptor[] | undefined> {
    return referrersFromApi(this.client, this.name, subject, query);
  }

  /** The descriptor of a blob from `HEAD` (size from Content-Length). */
  async blobDescriptor(digest: string, options: OperationOptions = {}): Promise<Descriptor> {
    const res = await this.client.send({
      method: 'HEAD',
      url: api.blob(this.name, digest),
      scopes: this.scopes,
      signal: options.signal,
      followRedirects: true,
    });
    await discard(res.body);
    if (res.status === 404) throw new WasmOciError('NOT_FOUND', `${this.where()}@${digest}: no such blob`);
    if (res.status !== 200)
      throw await this.client.responseError(res, `check blob ${this.where()}@${digest}`);
    const size = Number(header(res, 'content-length'));
    if (!Number.isSafeInteger(size) || size < 0)
      throw new WasmOciError('REGISTRY', `${this.where()} sent no size for ${digest}`);
    return { mediaType: 'application/octet-stream', digest, size };
  }

  /**
   * `DELETE /manifests/<digest>` (registries must allow deletes). A manifest with a `subject` first
   * leaves its subject's referrers index (the `<alg>-<hex>` tag), if one lists it.
   */
  async deleteManifest(digest: string, options: OperationOptions = {}): Promise<void> {
    const referrer = await this.referrerAt(digest, options.signal);
    if (referrer) await removeReferrer(this, referrer.subject, digest, { signal: options.signal });
    const res = await this.client.send({
      method: 'DELETE',
      url: api.manifest(this.name, digest),
      scopes: [repositoryScope(this.name, ['delete', 'pull', 'push'])],
      signal: options.signal,
    });
    if (res.status === 405) {
      await discard(res.body);
      throw new WasmOciError('UNSUPPORTED', `${this.client.registry} does not allow deleting manifests`, {
        status: 405,
        hint: 'Distribution needs storage.delete.enabled: true',
      });
    }
    if (res.status !== 202 && res.status !== 200) {
      throw await this.client.responseError(res, `delete ${this.where()}@${digest}`);
    }
    await discard(res.body);
    this.manifests.delete(digest);
  }

  async tag(desc: Descriptor, reference: string, options: OperationOptions = {}): Promise<void> {
    const { readVerified } = await import('../content/verify.js');
    const bytes = await readVerified(await this.fetch(desc, options), desc, MAX_MANIFEST_BYTES);
    await this.putManifest(desc, bytes, reference, options.signal);
  }

  /** The subject a stored manifest refers to (nothing when it has none or cannot be read as one). */
  private async referrerAt(
    digest: string,
    signal: AbortSignal | undefined,
  ): Promise<ReturnType<typeof referrerOf>> {
    let desc: Descriptor;
    try {
      desc = await this.resolve(digest, { signal });
    } catch (err) {
      if (hasCode(err, 'NOT_FOUND') || hasCode(err, 'INVALID_MANIFEST') || hasCode(err, 'DIGEST_MISMATCH'))
        return undefined;
      throw err;
    }
    const { readVerified } = await import('../content/verify.js');
    return referrerOf(desc, await readVerified(await this.fetch(desc, { signal }), desc, MAX_MANIFEST_BYTES));
  }

  /**
   * `PUT /manifests/<reference>`. A pushed manifest (`pushed`, not a re-tag) with a `subject` that the
   * registry does not acknowledge with `OCI-Subject` (it has no referrers API: Distribution 2.8) is
   * listed in its subject's referrers index, which is kept here (content/referrers.ts addReferrer).
   */
  private async putManifest(
    desc: Descriptor,
    bytes: Uint8Array,
    reference: string,
    signal: AbortSignal | undefined,
    pushed = false,
  ): Promise<void> {
    const res = await this.client.send({
      method: 'PUT',
      url: api.manifest(this.name, reference),
      headers: { 'content-type': desc.mediaType },
      body: bytes,
      scopes: this.pushScopes,
      signal,
    });
    if (res.status !== 201 && res.status !== 200) {
      const err = await this.client.responseError(res, `push manifest to ${this.where()}${at(reference)}`);
      const codes = registryCodes(err);
      if (codes.includes('MANIFEST_BLOB_UNKNOWN') || codes.includes('BLOB_UNKNOWN')) {
        // Content the manifest names is not (or no longer) there: copy() checks and sends it again.
        for (const digest of this.present) this.present.delete(digest);
        throw new WasmOciError(err.code, err.message, {
          status: err.status,
          details: { ...(err.details ?? {}), missingContent: true },
        });
      }
      throw err;
    }
    await discard(res.body);
    const answered = header(res, 'docker-content-digest');
    if (
      answered &&
      isDigest(answered) &&
      parseDigest(answered).algorithm === parseDigest(desc.digest).algorithm &&
      answered !== desc.digest
    ) {
      throw new WasmOciError(
        'DIGEST_MISMATCH',
        `${this.where()} stored the manifest as ${answered}, not ${desc.digest}`,
        { hint: 'the registry rewrote the manifest; its digest is not the one we computed' },
      );
    }
    this.remember(desc.digest, Buffer.from(bytes));
    if (pushed && !header(res, 'oci-subject')) {
      const referrer = referrerOf(desc, bytes);
      if (referrer) await addReferrer(this, referrer.subject, referrer.entry, { signal });
    }
  }

  /**
   * Makes a blob of another repository on the same registry available here without uploading it
   * (`POST /blobs/uploads/?mount=<digest>&from=<repo>`). False when the registry declines (202: it
   * opened an upload session instead, which is cancelled) or the source is elsewhere.
   */
  /** This repository: the registry is the origin's host (what a mount between repositories needs). */
  get location(): RepositoryLocation {
    return { registry: this.client.baseUrl.host, repository: this.name };
  }

  async mount(desc: Descriptor, from: string, options: OperationOptions = {}): Promise<boolean> {
    if (from === this.name) return false;
    const url = this.client.url(api.uploads(this.name));
    url.searchParams.set('mount', desc.digest);
    url.searchParams.set('from', from);
    const res = await this.client.send({
      method: 'POST',
      url,
      scopes: [...this.pushScopes, repositoryScope(from, ['pull'])],
      signal: options.signal,
    });
    await discard(res.body);
    if (res.status === 201) {
      this.present.add(desc.digest);
      return true;
    }
    if (res.status === 202) {
      const { cancel } = await import('./upload.js');
      const location = header(res, 'location');
      if (location) await cancel(this.uploads(undefined), { location: new URL(location, res.url) });
      return false;
    }
    throw await this.client.responseError(res, `mount ${desc.digest} from ${from} into ${this.where()}`);
  }

  /**
   * Stores content whose digest is not known yet, hashed as it is sent (one pass over a large file;
   * a resumed or restarted upload does not hash a byte twice).
   */
  async ingest(
    mediaType: string,
    content: IngestSource,
    options: OperationOptions & IngestOptions = {},
  ): Promise<Descriptor> {
    const hash = new PositionedHash();
    const observe = (chunk: Buffer, at: number) => hash.update(chunk, at);
    const source = isFileRange(content)
      ? fileSource(content, observe)
      : streamSource(content, options.size, undefined, observe);
    const stored = await uploadBlob(this.uploads(options.signal), source, { hash, size: options.size });
    if (options.size !== undefined && stored.size !== options.size) {
      throw new WasmOciError('SIZE_MISMATCH', `expected ${options.size} bytes, sent ${stored.size}`, {
        hint: 'the file changed while it was read',
      });
    }
    this.present.add(stored.digest);
    return { mediaType, digest: stored.digest, size: stored.size };
  }
}
