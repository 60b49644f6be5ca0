import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Starts the real CNCF Distribution registry (Debian package `docker-registry`) on a free loopback port
 * with a temporary storage root, for integration and end-to-end tests. Never skips: a missing binary
 * is a failure that says how to install it.
 */

export const REGISTRY_BIN = process.env.DOCKER_REGISTRY_BIN ?? '/usr/bin/docker-registry';

export interface RegistryServer {
  /** `127.0.0.1:<port>` */
  host: string;
  port: number;
  /** The storage root, for tests that look at what the registry stored. */
  root: string;
  /** Everything the registry logged so far. */
  log(): string;
  stop(): Promise<void>;
}

export interface RegistryConfig {
  /** Extra YAML appended to the config (auth sections and the like). */
  extraYaml?: string;
  /** Serve TLS with this certificate and key; `clientCas` makes client certificates mandatory. */
  tls?: { certificate: string; key: string; clientCas?: string[] };
}

export async function startRegistry(config: RegistryConfig = {}): Promise<RegistryServer> {
  if (!existsSync(REGISTRY_BIN)) {
    throw new Error(
      `the Distribution registry binary ${REGISTRY_BIN} is missing: install it with ` +
        '`apt-get update && apt-get install -y docker-registry` (or set DOCKER_REGISTRY_BIN)',
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-registry-'));
  const root = join(dir, 'data');
  const yaml = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${root}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    '  addr: 127.0.0.1:0',
    '  secret: wasm-to-oci-test-secret',
    ...(config.tls
      ? [
          '  tls:',
          `    certificate: ${config.tls.certificate}`,
          `    key: ${config.tls.key}`,
          ...(config.tls.clientCas?.length
            ? ['    clientcas:', ...config.tls.clientCas.map((ca) => `      - ${ca}`)]
            : []),
        ]
      : []),
    config.extraYaml ?? '',
  ].join('\n');
  const file = join(dir, 'config.yml');
  await writeFile(file, yaml);
  const child: ChildProcess = spawn(REGISTRY_BIN, ['serve', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`registry did not start within 15 s:\n${output}`)),
      15_000,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`registry exited with code ${code}:\n${output}`));
    });
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  return { host: `127.0.0.1:${port}`, port, root, log: () => output, stop };
}
