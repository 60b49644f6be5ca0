import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RegistryMemory } from '../target.js';

/**
 * Which loopback registries speak TLS, kept between runs in the cache directory so a run does not
 * probe again (a stale answer is corrected by the registry client on the first request). Loaded by the
 * command table for every network command: it imports nothing heavy.
 */

function memoryFile(env: NodeJS.ProcessEnv): string | undefined {
  const root = env.XDG_CACHE_HOME || (env.HOME ? join(env.HOME, '.cache') : '');
  return root ? join(root, 'wasm-to-oci', 'registries.json') : undefined;
}

/** The registry memory of this run, with what earlier runs learnt (a missing or corrupt file: none). */
export function loadRegistryMemory(env: NodeJS.ProcessEnv): { memory: RegistryMemory; save(): void } {
  const memory: RegistryMemory = { schemes: new Map(), uploads: new Map(), warned: new Set() };
  const file = memoryFile(env);
  let before = '{}';
  try {
    if (file) {
      const json = JSON.parse(readFileSync(file, 'utf8')) as { schemes?: Record<string, unknown> };
      for (const [host, scheme] of Object.entries(json.schemes ?? {})) {
        if (scheme === 'http' || scheme === 'https') memory.schemes.set(host, scheme);
      }
      before = JSON.stringify(Object.fromEntries(memory.schemes));
    }
  } catch {
    // Nothing remembered yet.
  }
  return {
    memory,
    save() {
      const now = JSON.stringify(Object.fromEntries(memory.schemes));
      if (!file || now === before) return;
      try {
        mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
        const temp = `${file}.${Math.random().toString(16).slice(2)}.part`;
        writeFileSync(temp, JSON.stringify({ schemes: Object.fromEntries(memory.schemes) }), { mode: 0o600 });
        renameSync(temp, file);
      } catch {
        // Only speed is lost.
      }
    },
  };
}
