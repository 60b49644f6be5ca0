/** PEM blocks, with the RFC 1421 headers Notary writes in its key files (`role: targets`, `gun: ...`); cosign writes none. */

/** A PEM block of `type` with `headers` before the base64 of `der` (64 characters a line). */
export function pem(type: string, headers: Record<string, string>, der: Buffer): string {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  const body = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${type}-----\n${lines.length ? `${lines.join('\n')}\n\n` : ''}${body}\n-----END ${type}-----\n`;
}

export interface PemBlock {
  type: string;
  headers: Record<string, string>;
  der: Buffer;
}

/** The first PEM block of `text`: its type, its headers (before the first base64 line) and its bytes. */
export function parsePem(text: string): PemBlock | undefined {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  const body: string[] = [];
  for (const line of (m[2] as string).split(/\r?\n/)) {
    const header = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
    if (header && body.length === 0) headers[header[1] as string] = header[2] as string;
    else body.push(line.trim());
  }
  return { type: m[1] as string, headers, der: Buffer.from(body.join(''), 'base64') };
}
