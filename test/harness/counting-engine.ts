import { NodeHttpEngine } from '../../src/transport/engine.js';
import type { HttpEngine, HttpRequest, HttpResponse } from '../../src/transport/types.js';

/**
 * The real node:http engine, recording every request it sends (method, path, body kind) so tests can
 * assert what went over the wire to the real registry.
 */
export class CountingEngine implements HttpEngine {
  readonly inner = new NodeHttpEngine();
  readonly requests: Array<{ method: string; path: string; status: number }> = [];

  async request(req: HttpRequest): Promise<HttpResponse> {
    const res = await this.inner.request(req);
    this.requests.push({ method: req.method, path: req.url.pathname, status: res.status });
    return res;
  }

  /** Requests that carried blob content (monolithic PUT with a body, or PATCH). */
  blobUploads(): Array<{ method: string; path: string }> {
    return this.requests.filter(
      (r) => (r.method === 'PATCH' || r.method === 'PUT') && r.path.includes('/blobs/uploads/'),
    );
  }

  close(): void {
    this.inner.close();
  }
}
