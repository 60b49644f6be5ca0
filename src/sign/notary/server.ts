import { randomBytes } from 'node:crypto';
import { repositoryScope } from '../../auth/scope.js';
import { hasCode, WasmOciError } from '../../errors.js';
import { RegistryClient, type RegistryOptions } from '../../registry/client.js';
import { parseErrorBody } from '../../registry/errors.js';
import { discard, readCapped, readText } from '../../transport/body.js';
import type { TufKey } from './keys.js';

/**
 * A Notary v1 trust server (`/v2/<GUN>/_trust/tuf/...`). It speaks the registry's token protocol, so
 * the registry client does the talking: the trust server's 401 challenge is answered with the
 * credentials the Docker config holds for the trust server's host (Docker Hub's for notary.docker.io).
 */

/** Size caps for metadata downloads (Notary's own: 5 MiB for root and targets, 1 MiB for the others). */
const MAX_METADATA = 5 * 1024 * 1024;
const MAX_TIMESTAMP = 1024 * 1024;

export interface TrustServerOptions extends Omit<RegistryOptions, 'baseUrl' | 'plainHttp'> {
  signal?: AbortSignal | undefined;
}

/** The host whose credentials a trust server gets: Docker Hub's trust server uses Docker Hub's. */
export function credentialHost(server: URL): string {
  return server.hostname === 'notary.docker.io' ? 'docker.io' : server.host;
}

/** An error entry's detail as text; one nested too deep for JSON.stringify (it recurses) is left out. */
function detailText(detail: unknown): string {
  try {
    return JSON.stringify(detail).slice(0, 300);
  } catch {
    return '';
  }
}

export class TrustServer {
  readonly url: URL;
  private readonly client: RegistryClient;
  private readonly signal: AbortSignal | undefined;

  constructor(url: string | URL, options: TrustServerOptions = {}) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new WasmOciError('USAGE', `the trust server ${String(url)} is not a URL`, {
        hint: 'give it as https://host[:port] (or http:// for a test server)',
      });
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      throw new WasmOciError('USAGE', `the trust server ${parsed.href} is not an http(s) URL`);
    }
    this.url = parsed;
    this.signal = options.signal;
    this.client = new RegistryClient(credentialHost(parsed), { ...options, baseUrl: parsed });
  }

  /** Sends through the registry client, with hints that name the trust server's own flags. */
  private async send(req: Parameters<RegistryClient['send']>[0]) {
    try {
      return await this.client.send(req);
    } catch (err) {
      if (hasCode(err, 'TLS') && !err.details?.plainHttpPeer) {
        throw new WasmOciError('TLS', `trust server ${err.message}`, {
          cause: err,
          hint: "trust the trust server's CA with the `tlsCaCert` option",
        });
      }
      if (hasCode(err, 'TLS') || hasCode(err, 'NETWORK')) {
        throw new WasmOciError(err.code, `trust server: ${err.message}`, {
          cause: err,
          hint: err.details?.plainHttpPeer
            ? `the trust server speaks plain HTTP: set the \`server\` option to http://${this.url.host}`
            : `is the trust server ${this.url.href} running and reachable? (the \`server\` option)`,
        });
      }
      throw err;
    }
  }

  private path(gun: string, file: string): string {
    return `v2/${gun.split('/').map(encodeURIComponent).join('/').replace(/%3A/gi, ':')}/_trust/tuf/${file}`;
  }

  private async error(res: Awaited<ReturnType<RegistryClient['send']>>, what: string): Promise<WasmOciError> {
    if (res.status === 401 || res.status === 403) return this.client.responseError(res, what);
    const text = await readText(res.body).catch(() => '');
    const entries = parseErrorBody(text);
    const detail = entries
      .map((e) =>
        [e.message, typeof e.detail === 'string' ? e.detail : e.detail ? detailText(e.detail) : '']
          .filter(Boolean)
          .join(': '),
      )
      .filter(Boolean)
      .join('; ');
    return new WasmOciError(
      'REGISTRY',
      `${what}: the trust server answered ${res.status}${detail ? ` (${detail})` : ''}`,
      {
        status: res.status,
      },
    );
  }

  /**
   * One metadata file: `root`, `2.root`, `targets`, `targets/releases`, `snapshot`, `timestamp`;
   * undefined when the server has none (404).
   */
  async metadata(gun: string, name: string): Promise<Buffer | undefined> {
    const what = `${name}.json of ${gun} from ${this.url.host}`;
    const res = await this.send({
      method: 'GET',
      url: this.path(gun, `${name}.json`),
      scopes: [repositoryScope(gun, ['pull'])],
      signal: this.signal,
    });
    if (res.status === 404) {
      await discard(res.body);
      return undefined;
    }
    if (res.status !== 200) throw await this.error(res, `cannot get ${what}`);
    return readCapped(res.body, name === 'timestamp' ? MAX_TIMESTAMP : MAX_METADATA, { what });
  }

  /** The public key the server holds for a role it signs (`timestamp`, or `snapshot` when it manages it). */
  async key(gun: string, role: 'timestamp' | 'snapshot'): Promise<TufKey> {
    const what = `the ${role} key of ${gun} from ${this.url.host}`;
    const res = await this.send({
      method: 'GET',
      url: this.path(gun, `${role}.key`),
      scopes: [repositoryScope(gun, ['pull', 'push'])],
      signal: this.signal,
    });
    if (res.status !== 200) throw await this.error(res, `cannot get ${what}`);
    const text = (await readCapped(res.body, 64 * 1024, { what })).toString('utf8');
    try {
      const key = JSON.parse(text) as TufKey;
      if (typeof key.keytype === 'string' && typeof key.keyval?.public === 'string') {
        return { keytype: key.keytype, keyval: { private: null, public: key.keyval.public } };
      }
    } catch {}
    throw new WasmOciError('REGISTRY', `${what} is not a TUF key`);
  }

  /**
   * Publishes new metadata in one atomic update (multipart POST, one `files` part per role, as the
   * Notary client does); the server checks it and signs a new timestamp.
   */
  async publish(gun: string, files: ReadonlyArray<{ role: string; bytes: Buffer }>): Promise<void> {
    const boundary = `wasm-to-oci-${randomBytes(12).toString('hex')}`;
    const parts: Buffer[] = [];
    for (const { role, bytes } of files) {
      parts.push(
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="${role}"\r\n` +
            'Content-Type: application/octet-stream\r\n\r\n',
        ),
        bytes,
        Buffer.from('\r\n'),
      );
    }
    parts.push(Buffer.from(`--${boundary}--\r\n`));
    const body = Buffer.concat(parts);
    const res = await this.send({
      method: 'POST',
      url: this.path(gun, ''),
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
      scopes: [repositoryScope(gun, ['pull', 'push'])],
      signal: this.signal,
    });
    if (res.status !== 200) throw await this.error(res, `the trust server refused the update of ${gun}`);
    await discard(res.body);
  }

  close(): void {
    this.client.close();
  }
}
