import { Readable, Transform, type TransformCallback } from 'node:stream';
import { finished } from 'node:stream/promises';
import { type Action, repositoryScope } from '../auth/scope.js';
import {
  type ChunkFetcher,
  type ChunkSink,
  type Content,
  type Ingester,
  type IngestOptions,
  type IngestSource,
  type OperationOptions,
  type ReferencePusher,
  STREAM_CHUNK,
  type Target,
} from '../content/types.js';
import { readAll } from '../content/verify.js';
import { WasmOciError } from '../errors.js';
import { discard, type HttpBody, type HttpResponse, header, isFileRange } from '../http.js';
import type { Descriptor } from '../oci/descriptor.js';
import { Digester, digestOf, isDigest, parseDigest } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import { baseMediaType, isManifestMediaType, MANIFEST_ACCEPT, MediaType } from '../oci/mediatypes.js';
import type { RegistryClient } from './client.js';

export interface RepositoryOptions {
  /**
   * What the caller will do: `push` asks every token for `pull,push` from the first request on, so one
   * token serves a whole push instead of a pull token followed by a push token.
   */
  access?: 'pull' | 'push';
}

/** Hashes and counts what an upload of unknown digest sends. */
class UploadHash {
  readonly digester = new Digester();
  count = 0;
  update(chunk: Buffer): void {
    this.digester.update(chunk);
    this.count += chunk.length;
  }
}

/** The upload body for an ingest source, hashed as it is sent. */
function hashedBody(content: IngestSource, hash: UploadHash): HttpBody {
  if (isFileRange(content)) {
    const { observe } = content;
    return {
      ...content,
      observe: (chunk) => {
        observe?.(chunk);
        hash.update(chunk);
      },
    };
  }
  const tap = new Transform({
    highWaterMark: STREAM_CHUNK,
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  content.on('error', (err) => tap.destroy(err));
  return content.pipe(tap);
}

/** How many recently resolved manifests are kept, so resolve-then-fetch costs one GET. */
const MANIFEST_MEMO_SIZE = 16;

/**
 * A repository on a registry, as a Target over the distribution API: manifests by tag or digest, blobs
 * with existence checks, monolithic uploads for known digests and a streamed single-pass upload
 * (POST, PATCH, PUT ?digest=) for content hashed as it is sent.
 */
export class RemoteRepository implements Target, ReferencePusher, Ingester, ChunkFetcher {
  readonly client: RegistryClient;
  readonly name: string;
  private readonly actions: Action[];
  private readonly manifests = new Map<string, Buffer>();
  /** Blobs this process stored or saw in the repository: no need to ask again. */
  private readonly present = new Set<string>();

  constructor(client: RegistryClient, name: string, options: RepositoryOptions = {}) {
    this.client = client;
    this.name = name;
    this.actions = options.access === 'push' ? ['pull', 'push'] : ['pull'];
  }

  private get scopes(): string[] {
    return [repositoryScope(this.name, this.actions)];
  }

  private get pushScopes(): string[] {
    return [repositoryScope(this.name, ['pull', 'push'])];
  }

  private path(kind: 'manifests' | 'blobs', reference: string): string {
    return `/v2/${this.name}/${kind}/${reference}`;
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
   * Resolves a tag or digest with one GET (the bytes are kept for the fetch that follows). The body is
   * checked against the digest asked for, or against the registry's Docker-Content-Digest.
   */
  async resolve(reference: string, options: OperationOptions = {}): Promise<Descriptor> {
    const res = await this.client.send({
      method: 'GET',
      url: this.path('manifests', reference),
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      scopes: this.scopes,
      signal: options.signal,
    });
    if (res.status === 404) {
      await discard(res.body);
      throw new WasmOciError('NOT_FOUND', `${this.where()}:${reference}: manifest not found`, {
        status: 404,
        hint: isDigest(reference)
          ? undefined
          : `check the repository name and the tag; nothing is tagged ${reference} in ${this.where()}`,
      });
    }
    if (res.status !== 200)
      throw await this.client.responseError(res, `get manifest ${this.where()}:${reference}`);
    const bytes = await readAll(res.body, MAX_MANIFEST_BYTES, 'manifest');
    const desc = this.manifestDescriptor(res, bytes, reference);
    this.remember(desc.digest, bytes);
    return desc;
  }

  private manifestDescriptor(res: HttpResponse, bytes: Buffer, reference: string): Descriptor {
    const claimed = header(res, 'docker-content-digest');
    const expected = isDigest(reference) ? reference : claimed && isDigest(claimed) ? claimed : undefined;
    const algorithm = expected ? parseDigest(expected).algorithm : 'sha256';
    const digest = digestOf(bytes, algorithm);
    if (expected && digest !== expected) {
      throw new WasmOciError(
        'DIGEST_MISMATCH',
        `manifest ${this.where()}:${reference} hashes to ${digest}, not ${expected}`,
        { hint: 'the registry served corrupt or substituted content; nothing was used' },
      );
    }
    let mediaType = baseMediaType(header(res, 'content-type') ?? '');
    if (!isManifestMediaType(mediaType)) {
      // Some registries serve a generic type; the body's own mediaType, or its shape, says what it is.
      try {
        const json = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
        if (typeof json.mediaType === 'string') mediaType = json.mediaType;
        else mediaType = Array.isArray(json.manifests) ? MediaType.ociIndex : MediaType.ociManifest;
      } catch {
        throw new WasmOciError('INVALID_MANIFEST', `manifest ${this.where()}:${reference} is not JSON`);
      }
    }
    return { mediaType, digest, size: bytes.length };
  }

  async fetch(desc: Descriptor, options: OperationOptions = {}): Promise<Readable> {
    if (isManifestMediaType(desc.mediaType)) {
      const memo = this.manifests.get(desc.digest);
      if (memo) return Readable.from([memo]);
      const res = await this.client.send({
        method: 'GET',
        url: this.path('manifests', desc.digest),
        headers: { accept: [desc.mediaType, ...MANIFEST_ACCEPT].join(', ') },
        scopes: this.scopes,
        signal: options.signal,
      });
      if (res.status !== 200)
        throw await this.client.responseError(res, `get manifest ${this.where()}@${desc.digest}`);
      return res.body;
    }
    return (await this.getBlob(desc, options.signal)).body;
  }

  /** `GET /blobs/<digest>`, following redirects to storage hosts (which get no registry credentials). */
  private async getBlob(
    desc: Descriptor,
    signal: AbortSignal | undefined,
    sink?: ChunkSink,
  ): Promise<HttpResponse> {
    const res = await this.client.send({
      method: 'GET',
      url: this.path('blobs', desc.digest),
      scopes: this.scopes,
      signal,
      followRedirects: true,
      largeBody: true,
      sink,
    });
    if (res.status !== 200)
      throw await this.client.responseError(res, `get blob ${this.where()}@${desc.digest}`);
    return res;
  }

  /** Downloads a blob straight into a synchronous sink (the allocation-free path of copy()). */
  async fetchInto(desc: Descriptor, sink: ChunkSink, options: OperationOptions = {}): Promise<void> {
    const res = await this.getBlob(desc, options.signal, sink);
    res.body.resume();
    await finished(res.body);
  }

  async exists(desc: Descriptor, options: OperationOptions = {}): Promise<boolean> {
    if (this.present.has(desc.digest)) return true;
    const kind = isManifestMediaType(desc.mediaType) ? 'manifests' : 'blobs';
    const res = await this.client.send({
      method: 'HEAD',
      url: this.path(kind, desc.digest),
      headers: kind === 'manifests' ? { accept: MANIFEST_ACCEPT.join(', ') } : {},
      scopes: this.scopes,
      signal: options.signal,
    });
    await discard(res.body);
    if (res.status === 200) {
      if (kind === 'blobs') this.present.add(desc.digest);
      return true;
    }
    if (res.status === 404) return false;
    throw await this.client.responseError(res, `check ${this.where()}@${desc.digest}`);
  }

  async push(desc: Descriptor, content: Content, options: OperationOptions = {}): Promise<void> {
    if (isManifestMediaType(desc.mediaType)) {
      if (!(content instanceof Uint8Array)) {
        throw new WasmOciError('USAGE', 'manifests are pushed from memory, not from a stream');
      }
      await this.putManifest(desc, content, desc.digest, options.signal);
      return;
    }
    const location = await this.startUpload(options.signal);
    location.searchParams.set('digest', desc.digest);
    const res = await this.client.send({
      method: 'PUT',
      url: location,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
      body: content,
      scopes: this.pushScopes,
      signal: options.signal,
    });
    if (res.status !== 201) {
      const err = await this.client.responseError(res, `upload blob ${desc.digest} to ${this.where()}`);
      await this.cancelUpload(location);
      throw err;
    }
    await discard(res.body);
    this.present.add(desc.digest);
  }

  async pushReference(
    desc: Descriptor,
    content: Uint8Array,
    reference: string,
    options: OperationOptions = {},
  ): Promise<void> {
    await this.putManifest(desc, content, reference, options.signal);
  }

  /** All tags, following `Link: <...>; rel="next"` pagination (same origin only). */
  async tags(options: OperationOptions & { pageSize?: number } = {}): Promise<string[]> {
    const tags: string[] = [];
    let url: URL | undefined = this.client.url(`/v2/${this.name}/tags/list`);
    url.searchParams.set('n', String(options.pageSize ?? 1000));
    for (let pages = 0; url && pages < 1000; pages++) {
      const res = await this.client.send({ method: 'GET', url, scopes: this.scopes, signal: options.signal });
      if (res.status === 404) {
        await discard(res.body);
        throw new WasmOciError('NOT_FOUND', `${this.where()}: no such repository`, { status: 404 });
      }
      if (res.status !== 200) throw await this.client.responseError(res, `list tags of ${this.where()}`);
      const body = JSON.parse((await readAll(res.body, MAX_MANIFEST_BYTES, 'tag list')).toString('utf8')) as {
        tags?: unknown;
      };
      if (Array.isArray(body.tags)) for (const t of body.tags) if (typeof t === 'string') tags.push(t);
      const next = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(header(res, 'link') ?? '')?.[1];
      url = next ? new URL(next, url) : undefined;
      if (url && url.origin !== this.client.baseUrl.origin) {
        throw new WasmOciError(
          'REGISTRY',
          `${this.where()} paginates to another origin (${url.origin}); refused`,
        );
      }
    }
    return tags;
  }

  /** The descriptor of a blob from `HEAD` (size from Content-Length). */
  async blobDescriptor(digest: string, options: OperationOptions = {}): Promise<Descriptor> {
    const res = await this.client.send({
      method: 'HEAD',
      url: this.path('blobs', digest),
      scopes: this.scopes,
      signal: options.signal,
      followRedirects: true,
    });
    await discard(res.body);
    if (res.status === 404) throw new WasmOciError('NOT_FOUND', `${this.where()}@${digest}: no such blob`);
    if (res.status !== 200)
      throw await this.client.responseError(res, `check blob ${this.where()}@${digest}`);
    const size = Number(header(res, 'content-length'));
    if (!Number.isSafeInteger(size))
      throw new WasmOciError('REGISTRY', `${this.where()} sent no size for ${digest}`);
    return { mediaType: 'application/octet-stream', digest, size };
  }

  /** `DELETE /manifests/<digest>` (registries must allow deletes). */
  async deleteManifest(digest: string, options: OperationOptions = {}): Promise<void> {
    const res = await this.client.send({
      method: 'DELETE',
      url: this.path('manifests', digest),
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
    const bytes = await readAll(await this.fetch(desc, options), MAX_MANIFEST_BYTES, 'manifest');
    await this.putManifest(desc, bytes, reference, options.signal);
  }

  private async putManifest(
    desc: Descriptor,
    bytes: Uint8Array,
    reference: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const res = await this.client.send({
      method: 'PUT',
      url: this.path('manifests', reference),
      headers: { 'content-type': desc.mediaType },
      body: bytes,
      scopes: this.pushScopes,
      signal,
    });
    if (res.status !== 201 && res.status !== 200) {
      throw await this.client.responseError(res, `push manifest to ${this.where()}:${reference}`);
    }
    await discard(res.body);
    const answered = header(res, 'docker-content-digest');
    if (
      answered &&
      isDigest(answered) &&
      parseDigest(answered).algorithm === parseDigest(desc.digest).algorithm
    ) {
      if (answered !== desc.digest) {
        throw new WasmOciError(
          'DIGEST_MISMATCH',
          `${this.where()} stored the manifest as ${answered}, not ${desc.digest}`,
          { hint: 'the registry rewrote the manifest; its digest is not the one we computed' },
        );
      }
    }
    this.remember(desc.digest, Buffer.from(bytes));
  }

  /**
   * Makes a blob of another repository on the same registry available here without uploading it
   * (`POST /blobs/uploads/?mount=<digest>&from=<repo>`). False when the registry declines (202: it
   * opened an upload session instead, which is cancelled) or the source is elsewhere.
   */
  async mount(desc: Descriptor, source: object, options: OperationOptions = {}): Promise<boolean> {
    if (!(source instanceof RemoteRepository) || source.client.baseUrl.host !== this.client.baseUrl.host)
      return false;
    if (source.name === this.name) return false;
    const url = this.client.url(`/v2/${this.name}/blobs/uploads/`);
    url.searchParams.set('mount', desc.digest);
    url.searchParams.set('from', source.name);
    const res = await this.client.send({
      method: 'POST',
      url,
      scopes: [...this.pushScopes, repositoryScope(source.name, ['pull'])],
      signal: options.signal,
    });
    await discard(res.body);
    if (res.status === 201) {
      this.present.add(desc.digest);
      return true;
    }
    if (res.status === 202) {
      await this.cancelUpload(this.location(res));
      return false;
    }
    throw await this.client.responseError(
      res,
      `mount ${desc.digest} from ${source.name} into ${this.where()}`,
    );
  }

  /** `POST /blobs/uploads/`: opens an upload session and returns its location. */
  private async startUpload(signal: AbortSignal | undefined): Promise<URL> {
    const res = await this.client.expect(
      { method: 'POST', url: `/v2/${this.name}/blobs/uploads/`, scopes: this.pushScopes, signal },
      [202],
      `start upload to ${this.where()}`,
    );
    await discard(res.body);
    return this.location(res);
  }

  private location(res: HttpResponse): URL {
    const location = header(res, 'location');
    if (!location) throw new WasmOciError('REGISTRY', `${this.client.registry} sent no upload Location`);
    return new URL(location, res.url);
  }

  private async cancelUpload(location: URL): Promise<void> {
    try {
      const url = new URL(location);
      url.searchParams.delete('digest');
      const res = await this.client.send({ method: 'DELETE', url, scopes: this.pushScopes });
      await discard(res.body);
    } catch {
      // Best effort: the registry purges abandoned uploads on its own.
    }
  }

  /**
   * Single-pass upload of content whose digest is not known yet: POST opens the session, one PATCH
   * streams the bytes while they are hashed, and `PUT ?digest=` commits them under the computed digest
   * (the registry checks it too). The file is read exactly once.
   */
  async ingest(
    mediaType: string,
    content: IngestSource,
    options: OperationOptions & IngestOptions = {},
  ): Promise<Descriptor> {
    const { signal, size } = options;
    const location = await this.startUpload(signal);
    const hashing = new UploadHash();
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (size !== undefined) {
      headers['content-length'] = String(size);
      if (size > 0) headers['content-range'] = `0-${size - 1}`;
    }
    let committed = false;
    try {
      const patch = await this.client.send({
        method: 'PATCH',
        url: location,
        headers,
        body: hashedBody(content, hashing),
        scopes: this.pushScopes,
        signal,
      });
      if (patch.status !== 202) throw await this.client.responseError(patch, `upload to ${this.where()}`);
      await discard(patch.body);
      if (size !== undefined && hashing.count !== size) {
        throw new WasmOciError('SIZE_MISMATCH', `expected ${size} bytes, read ${hashing.count}`, {
          hint: 'the file changed while it was read',
        });
      }
      const desc: Descriptor = { mediaType, digest: hashing.digester.digest(), size: hashing.count };
      const commit = this.location(patch);
      commit.searchParams.set('digest', desc.digest);
      const put = await this.client.send({ method: 'PUT', url: commit, scopes: this.pushScopes, signal });
      if (put.status !== 201) throw await this.client.responseError(put, `commit upload to ${this.where()}`);
      await discard(put.body);
      committed = true;
      this.present.add(desc.digest);
      return desc;
    } finally {
      if (!committed) await this.cancelUpload(location);
    }
  }
}
