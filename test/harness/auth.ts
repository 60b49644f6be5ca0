import { execFile } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type RegistryServer, startRegistry } from './registry.js';

const exec = promisify(execFile);

/**
 * The real registry with htpasswd (bcrypt) basic auth, and credential helpers written for the tests: a
 * working store (`docker-credential-wtotest`, kept in a JSON file) and one that always fails
 * (`docker-credential-broken`).
 */

export async function startBasicAuthRegistry(
  dir: string,
  users: Record<string, string>,
): Promise<RegistryServer> {
  const lines: string[] = [];
  for (const [user, password] of Object.entries(users)) {
    try {
      const { stdout } = await exec('htpasswd', ['-Bbn', user, password]);
      lines.push(stdout.trim());
    } catch (err) {
      throw new Error(
        'htpasswd (Debian package apache2-utils) is needed for the basic-auth tests: apt-get install -y apache2-utils',
        { cause: err },
      );
    }
  }
  const file = join(dir, 'htpasswd');
  await writeFile(file, `${lines.join('\n')}\n`);
  return startRegistry({ extraYaml: `auth:\n  htpasswd:\n    realm: basic-realm\n    path: ${file}\n` });
}

const STORE_HELPER = `#!/usr/bin/env node
// A Docker credential helper for tests: secrets live in the JSON file $DOCKER_TEST_HELPER_STORE.
const fs = require('node:fs');
const file = process.env.DOCKER_TEST_HELPER_STORE;
const read = () => { try { return JSON.parse(fs.readFileSync(file, 'utf8')); } catch { return {}; } };
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const store = read();
  const action = process.argv[2];
  fs.appendFileSync(file + '.log', action + ' ' + (action === 'store' ? JSON.parse(input).ServerURL : input.trim()) + '\\n');
  if (action === 'get') {
    const entry = store[input.trim()];
    if (!entry) { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); }
    process.stdout.write(JSON.stringify({ ServerURL: input.trim(), Username: entry.Username, Secret: entry.Secret }));
  } else if (action === 'store') {
    const entry = JSON.parse(input);
    store[entry.ServerURL] = { Username: entry.Username, Secret: entry.Secret };
    fs.writeFileSync(file, JSON.stringify(store));
  } else if (action === 'erase') {
    if (!store[input.trim()]) { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); }
    delete store[input.trim()];
    fs.writeFileSync(file, JSON.stringify(store));
  } else if (action === 'list') {
    process.stdout.write(JSON.stringify(Object.fromEntries(Object.entries(store).map(([k, v]) => [k, v.Username]))));
  } else { process.exit(2); }
});
`;

const BROKEN_HELPER = `#!/bin/sh
echo "the keychain is locked" >&2
exit 1
`;

export interface HelperBin {
  /** Directory to put first on PATH. */
  bin: string;
  /** The store file of docker-credential-wtotest. */
  store: string;
}

export async function writeHelpers(dir: string): Promise<HelperBin> {
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, 'docker-credential-wtotest'), STORE_HELPER);
  await writeFile(join(bin, 'docker-credential-broken'), BROKEN_HELPER);
  await chmod(join(bin, 'docker-credential-wtotest'), 0o755);
  await chmod(join(bin, 'docker-credential-broken'), 0o755);
  return { bin, store: join(dir, 'helper-store.json') };
}

/** Writes a Docker config file into `dir` (used as DOCKER_CONFIG). */
export async function writeDockerConfig(dir: string, config: object): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
}

export const basic = (user: string, password: string) =>
  Buffer.from(`${user}:${password}`).toString('base64');
