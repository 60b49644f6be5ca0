import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  credentialKey,
  decodeEntry,
  dockerConfigPath,
  findAuthEntry,
  helperFor,
  keyHost,
  podmanAuthPaths,
} from './config.js';
import { helperGet } from './helper.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('Docker config lookups', () => {
  it('normalises keys written with or without scheme and path', () => {
    const cases: Array<[string, string]> = [
      ['ghcr.io', 'ghcr.io'],
      ['https://ghcr.io', 'ghcr.io'],
      ['https://ghcr.io/v2/', 'ghcr.io'],
      ['http://localhost:5000/v1/', 'localhost:5000'],
      ['https://index.docker.io/v1/', 'docker.io'],
      ['registry-1.docker.io', 'docker.io'],
      ['Docker.IO', 'docker.io'],
    ];
    for (const [key, host] of cases) assert.equal(keyHost(key), host, key);
    assert.equal(credentialKey('docker.io'), 'https://index.docker.io/v1/');
    assert.equal(credentialKey('ghcr.io'), 'ghcr.io');
  });

  it('finds the entry for a registry whichever way it is keyed', () => {
    const config = {
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hub:pw') },
        'https://ghcr.io/v2/': { username: 'gh', password: 'tok' },
        'myreg.azurecr.io': { auth: b64('00000000-0000-0000-0000-000000000000:'), identitytoken: 'refresh' },
      },
    };
    assert.deepEqual(decodeEntry(findAuthEntry(config, 'docker.io')?.[1] ?? {}, 'x'), {
      username: 'hub',
      password: 'pw',
    });
    assert.deepEqual(decodeEntry(findAuthEntry(config, 'ghcr.io')?.[1] ?? {}, 'x'), {
      username: 'gh',
      password: 'tok',
    });
    assert.deepEqual(decodeEntry(findAuthEntry(config, 'myreg.azurecr.io')?.[1] ?? {}, 'x'), {
      username: '00000000-0000-0000-0000-000000000000',
      identityToken: 'refresh',
    });
    assert.equal(findAuthEntry(config, 'quay.io'), undefined);
    assert.equal(decodeEntry({}, 'x'), undefined, 'an empty marker entry holds no credential');
    assert.throws(() => decodeEntry({ auth: b64('no-colon') }, 'reg'), { code: 'CREDENTIALS' });
  });

  it('picks credHelpers over credsStore', () => {
    const config = {
      credsStore: 'desktop',
      credHelpers: { 'gcr.io': 'gcloud', 'https://123.dkr.ecr.us-east-1.amazonaws.com': 'ecr-login' },
    };
    assert.equal(helperFor(config, 'gcr.io'), 'gcloud');
    assert.equal(helperFor(config, '123.dkr.ecr.us-east-1.amazonaws.com'), 'ecr-login');
    assert.equal(helperFor(config, 'ghcr.io'), 'desktop');
    assert.equal(helperFor({}, 'ghcr.io'), undefined);
  });

  it('finds the config files', () => {
    assert.equal(dockerConfigPath({ env: {}, home: '/h' }), '/h/.docker/config.json');
    assert.equal(dockerConfigPath({ env: { DOCKER_CONFIG: '/d' }, home: '/h' }), '/d/config.json');
    assert.equal(
      dockerConfigPath({ env: { DOCKER_CONFIG: '/d' }, home: '/h', configFile: '/x.json' }),
      '/x.json',
    );
    assert.deepEqual(
      podmanAuthPaths({ env: { REGISTRY_AUTH_FILE: '/a.json', XDG_RUNTIME_DIR: '/run/u' }, home: '/h' }),
      ['/a.json', '/run/u/containers/auth.json'],
    );
  });
});

describe('credential helper protocol', () => {
  const runner =
    (stdout: string, code = 0, stderr = '') =>
    async () => ({ code, stdout, stderr });
  it('reads Username/Secret, and <token> as an identity token', async () => {
    assert.deepEqual(await helperGet(runner('{"ServerURL":"x","Username":"u","Secret":"s"}'), 'h', 'x'), {
      username: 'u',
      password: 's',
    });
    assert.deepEqual(await helperGet(runner('{"Username":"<token>","Secret":"refresh"}'), 'h', 'x'), {
      identityToken: 'refresh',
    });
  });
  it('treats "not found" as no credential and other failures as errors', async () => {
    assert.equal(await helperGet(runner('credentials not found in native keychain', 1), 'h', 'x'), undefined);
    await assert.rejects(helperGet(runner('', 1, 'keychain locked'), 'h', 'x'), {
      code: 'CREDENTIALS',
      message: 'credential helper docker-credential-h get failed: keychain locked',
    });
    await assert.rejects(helperGet(runner('not json'), 'h', 'x'), { code: 'CREDENTIALS' });
    const missing = async () => {
      throw Object.assign(new Error('spawn ENOENT'), { code: 'ENOENT' });
    };
    await assert.rejects(helperGet(missing, 'nope', 'x'), {
      message: /docker-credential-nope get failed: not found on PATH/,
    });
  });
});
