import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  defineOwn,
  expectResultOrError,
  expectResultOrErrorAsync,
  HOSTILE_KEYS,
  mutateBytes,
  mutateJson,
  Rng,
} from '../../test/harness/fuzz.js';
import {
  anyString,
  hostileKey,
  hostileValue,
  jsonInput,
  nearRecord,
  outcome,
  outcomeAsync,
  params,
} from '../../test/harness/properties.js';
import type { Credential } from '../auth/authorizer.js';
import {
  checkConfig,
  type DockerConfig,
  decodeEntry,
  findAuthEntry,
  helperFor,
  keyHost,
  readConfig,
} from './config.js';

/**
 * Seeded fuzzing of Docker's config.json (a file anything may have written): a mutated config is
 * accepted or refused with FILE; whatever is accepted answers every lookup with a credential of strings,
 * a helper name, nothing, or CREDENTIALS; never an internal exception.
 */

const SEEDS = [21, 22, 23];
const b64 = (s: string) => Buffer.from(s).toString('base64');
const CONFIGS: unknown[] = [
  {
    auths: {
      'https://index.docker.io/v1/': { auth: b64('hub:pw') },
      'https://ghcr.io/v2/': { username: 'gh', password: 'tok' },
      'myreg.azurecr.io': { auth: b64('00000000-0000-0000-0000-000000000000:'), identitytoken: 'refresh' },
      'quay.io': {},
    },
    credsStore: 'desktop',
    credHelpers: { 'gcr.io': 'gcloud' },
    HttpHeaders: { 'User-Agent': 'x' },
  },
  { auths: { 'localhost:5000': { username: 'u', password: '' } } },
];
const REGISTRIES = [
  'docker.io',
  'ghcr.io',
  'myreg.azurecr.io',
  'quay.io',
  'localhost:5000',
  'gcr.io',
  ...HOSTILE_KEYS,
];

function checkCredential(cred: Credential | undefined, context: string): void {
  if (cred === undefined) return;
  for (const [k, v] of Object.entries(cred))
    assert.ok(
      v === undefined || typeof v === 'string',
      `${context}: credential field ${k} is ${v === null ? 'null' : typeof v}`,
    );
}

/** Every lookup a command does with a config, for one registry. */
function lookups(config: DockerConfig, registry: string, context: string): void {
  expectResultOrError(
    () => helperFor(config, registry),
    [],
    context,
    registry,
    (helper) =>
      assert.ok(helper === undefined || typeof helper === 'string', `${context}: helper ${typeof helper}`),
  );
  const found = expectResultOrError(() => findAuthEntry(config, registry), [], context, registry);
  if (Array.isArray(found)) {
    const [key, entry] = found;
    assert.equal(typeof key, 'string', context);
    assert.equal(keyHost(key), keyHost(registry), `${context}: entry of another host`);
    expectResultOrError(
      () => decodeEntry(entry, registry),
      ['CREDENTIALS'],
      context,
      entry,
      (cred) => checkCredential(cred, context),
    );
  }
}

describe('Docker config fuzzing', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: mutated configs are refused with FILE or answer lookups with strings`, () => {
      const rng = new Rng(seed);
      let accepted = 0;
      for (let i = 0; i < 600; i++) {
        const text = mutateJson(rng, rng.pick(CONFIGS));
        const context = `seed ${seed} case ${i}`;
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          continue; // readConfig's own JSON error is checked on files below
        }
        const config = expectResultOrError(() => checkConfig(json, 'config.json'), ['FILE'], context, text);
        if (config instanceof Error) continue;
        accepted++;
        for (let n = 0; n < 4; n++) {
          const registry = rng.pick(REGISTRIES);
          lookups(config, registry, `${context} ${registry}`);
        }
      }
      assert.ok(accepted > 100, `only ${accepted} configs accepted`);
    });
  }

  it('decodes every entry the config check lets through to a credential of strings (regression)', () => {
    // A null password passed the check (null means "not set") and came out as a credential whose
    // password was null, sent as the text "null".
    const config = checkConfig({ auths: { 'localhost:5000': { username: 'u', password: null } } }, 'c');
    const entry = findAuthEntry(config, 'localhost:5000')?.[1];
    assert.ok(entry);
    checkCredential(decodeEntry(entry, 'localhost:5000'), 'null password');
    assert.equal(decodeEntry(entry, 'localhost:5000'), undefined);
    const withToken = checkConfig({ auths: { r: { identitytoken: 't', username: null, auth: null } } }, 'c');
    checkCredential(decodeEntry(findAuthEntry(withToken, 'r')?.[1] ?? {}, 'r'), 'null username');
  });

  describe('readConfig on files', () => {
    let dir = '';
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-config-fuzz-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('reads random and mutated files: a config or FILE', async () => {
      const rng = new Rng(24);
      const path = join(dir, 'config.json');
      for (let i = 0; i < 200; i++) {
        const base = Buffer.from(JSON.stringify(rng.pick(CONFIGS)));
        const bytes = i % 4 === 0 ? rng.bytes(rng.int(64)) : mutateBytes(rng, base);
        await writeFile(path, bytes);
        await expectResultOrErrorAsync(
          () => readConfig(path),
          ['FILE'],
          `file case ${i}`,
          bytes,
          (config) => {
            if (config) lookups(config, rng.pick(REGISTRIES), `file case ${i}`);
          },
        );
      }
    });
  });
});

describe('Docker config properties (fast-check)', () => {
  const str = (valid: string[]) => fc.oneof(fc.constantFrom(...valid), anyString(24));
  const entry = nearRecord({
    auth: fc.oneof(
      fc.constantFrom(b64('hub:pw'), b64('u:'), b64(':p'), b64('nocolon'), b64('u:p\n'), '====', 'a'),
      anyString(16).map(b64),
      anyString(16),
    ),
    username: str(['u', 'gh', '00000000-0000-0000-0000-000000000000']),
    password: str(['p', 'tok', '']),
    identitytoken: str(['refresh']),
    registrytoken: str(['tok']),
    email: str(['a@b']),
  });
  const host = fc.oneof(
    fc.constantFrom(
      'https://index.docker.io/v1/',
      'docker.io',
      'https://ghcr.io/v2/',
      'localhost:5000',
      'http://localhost:5000',
      'quay.io',
      'gcr.io',
      'ghcr.io/owner',
    ),
    hostileKey,
    anyString(20),
  );
  const map = <T>(key: fc.Arbitrary<string>, value: fc.Arbitrary<T>) =>
    fc.array(fc.tuple(key, value), { maxLength: 5 }).map((pairs) => {
      const out = {};
      for (const [k, v] of pairs) defineOwn(out, k, v);
      return out;
    });
  const config = nearRecord({
    auths: map(host, fc.oneof({ weight: 5, arbitrary: entry }, { weight: 1, arbitrary: hostileValue })),
    credsStore: str(['desktop', 'osxkeychain', '../x', '']),
    credHelpers: map(
      host,
      fc.oneof(
        { weight: 5, arbitrary: str(['gcloud', 'ecr-login']) },
        { weight: 1, arbitrary: hostileValue },
      ),
    ),
    HttpHeaders: fc.jsonValue({ maxDepth: 2 }),
  });
  const registry = fc.oneof(fc.constantFrom(...REGISTRIES), anyString(20));

  it('any config is refused with FILE or answers every lookup with strings', () => {
    let accepted = 0;
    fc.assert(
      fc.property(
        jsonInput(config),
        fc.array(registry, { minLength: 1, maxLength: 4 }),
        (bytes, registries) => {
          let json: unknown;
          try {
            json = JSON.parse(bytes.toString('utf8'));
          } catch {
            return; // readConfig's own JSON error is checked on files below
          }
          const checked = outcome(() => checkConfig(json, 'config.json'), ['FILE'], bytes);
          if (checked instanceof Error) return;
          accepted++;
          for (const r of registries) outcome(() => lookups(checked, r, JSON.stringify(r)), [], r);
        },
      ),
      params(0xc0f601, 800),
    );
    assert.ok(accepted > 60, `only ${accepted} configs accepted`);
  });

  describe('readConfig on files', () => {
    let dir = '';
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'wasm-to-oci-config-prop-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('any file content gives a config or FILE', async () => {
      const path = join(dir, 'config.json');
      await fc.assert(
        fc.asyncProperty(jsonInput(config), registry, async (bytes, r) => {
          await writeFile(path, bytes);
          await outcomeAsync(
            () => readConfig(path),
            ['FILE'],
            bytes,
            (c) => {
              if (c) lookups(c, r, JSON.stringify(r));
            },
          );
        }),
        params(0xc0f602, 150),
      );
    });
  });
});
