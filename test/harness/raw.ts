import { createHash } from 'node:crypto';
import * as http from 'node:http';

/**
 * Raw distribution-API requests written for the tests, independent of the library: used to push
 * artifacts "by another tool" and to read back exactly what the registry stores.
 */

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export function raw(
  method: string,
  url: string,
  body?: Buffer,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method,
      headers: { ...headers, 'content-length': String(body?.length ?? 0) },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.end(body);
  });
}

export const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** Monolithic blob upload: POST then PUT ?digest=. */
export async function rawPushBlob(host: string, repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const start = await raw('POST', `http://${host}/v2/${repo}/blobs/uploads/`);
  if (start.status !== 202) throw new Error(`POST upload: ${start.status}`);
  const location = new URL(String(start.headers.location), `http://${host}`);
  location.searchParams.set('digest', digest);
  const put = await raw('PUT', location.href, data, { 'content-type': 'application/octet-stream' });
  if (put.status !== 201) throw new Error(`PUT blob: ${put.status} ${put.body.toString()}`);
  return digest;
}

export async function rawPushManifest(
  host: string,
  repo: string,
  tag: string,
  manifest: Buffer,
  mediaType: string,
): Promise<string> {
  const put = await raw('PUT', `http://${host}/v2/${repo}/manifests/${tag}`, manifest, {
    'content-type': mediaType,
  });
  if (put.status !== 201) throw new Error(`PUT manifest: ${put.status} ${put.body.toString()}`);
  return sha256(manifest);
}

export async function rawGetManifest(host: string, repo: string, ref: string): Promise<RawResponse> {
  return raw('GET', `http://${host}/v2/${repo}/manifests/${ref}`, undefined, {
    accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json',
  });
}

/** Pushes a module in the CNCF layout by raw requests: config, layer, manifest. Returns the digests. */
export async function rawPushCncf(
  host: string,
  repo: string,
  tag: string,
  module: Buffer,
  config: Buffer,
  layerAnnotations?: Record<string, string>,
): Promise<{ manifest: string; layer: string }> {
  const configDigest = await rawPushBlob(host, repo, config);
  const layer = await rawPushBlob(host, repo, module);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.wasm.config.v0+json', digest: configDigest, size: config.length },
      layers: [
        {
          mediaType: 'application/wasm',
          digest: layer,
          size: module.length,
          ...(layerAnnotations ? { annotations: layerAnnotations } : {}),
        },
      ],
    }),
  );
  return {
    manifest: await rawPushManifest(host, repo, tag, manifest, 'application/vnd.oci.image.manifest.v1+json'),
    layer,
  };
}
