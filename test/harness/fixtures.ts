import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TESTDATA = fileURLToPath(new URL('../../../testdata/', import.meta.url));
export const HELLO_WASM = join(TESTDATA, 'hello.wasm');

/** A core-module preamble followed by a custom section of random bytes: a valid-looking module of any size. */
export async function writeLargeWasm(path: string, size: number): Promise<void> {
  const out = createWriteStream(path);
  const header = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  out.write(header);
  let left = size - header.length;
  const chunk = 1024 * 1024;
  while (left > 0) {
    const n = Math.min(chunk, left);
    if (!out.write(randomBytes(n))) await new Promise<void>((r) => out.once('drain', () => r()));
    left -= n;
  }
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
}

export async function tempDir(): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'wasm-to-oci-test-'));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** A skopeo signature policy that accepts everything (the tests copy unsigned test artifacts). */
export async function writeSkopeoPolicy(dir: string): Promise<string> {
  const { writeFile } = await import('node:fs/promises');
  const path = join(dir, 'skopeo-policy.json');
  await writeFile(path, '{"default":[{"type":"insecureAcceptAnything"}]}');
  return path;
}

/**
 * The environment of a CLI run kept inside `root` (a test's own directory): home, Docker config and
 * cache there, `caFile` trusted for TLS, no extra CA bundle from the machine.
 */
export function cliEnv(root: string, caFile?: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    HOME: root,
    DOCKER_CONFIG: join(root, 'docker'),
    XDG_CACHE_HOME: join(root, 'cache'),
    ...(caFile !== undefined ? { SSL_CERT_FILE: caFile } : {}),
    NODE_EXTRA_CA_CERTS: '',
    ...extra,
  };
}
