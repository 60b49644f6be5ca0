import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { proxyAuthorization, proxyFor } from './proxy.js';

describe('proxyFor', () => {
  const env = { HTTPS_PROXY: 'http://proxy.corp:3128', HTTP_PROXY: 'proxy.corp:8080' };
  const cases: Array<[string, Record<string, string>, string | undefined]> = [
    ['https://ghcr.io/v2/', env, 'http://proxy.corp:3128/'],
    ['http://registry.lan:5000/v2/', env, 'http://proxy.corp:8080/'],
    ['https://ghcr.io/v2/', { https_proxy: 'http://lower:1' }, 'http://lower:1/'],
    ['https://ghcr.io/v2/', {}, undefined],
    ['https://localhost:5000/v2/', env, undefined],
    ['https://127.0.0.1:5000/v2/', env, undefined],
    ['https://[::1]:5000/v2/', env, undefined],
    ['https://ghcr.io/v2/', { ...env, NO_PROXY: 'ghcr.io' }, undefined],
    ['https://pkg.ghcr.io/v2/', { ...env, NO_PROXY: '.ghcr.io' }, undefined],
    ['https://pkg.ghcr.io/v2/', { ...env, NO_PROXY: 'ghcr.io' }, undefined],
    ['https://notghcr.io/v2/', { ...env, NO_PROXY: 'ghcr.io' }, 'http://proxy.corp:3128/'],
    ['https://a.example/v2/', { ...env, no_proxy: 'x.example, *' }, undefined],
    ['https://reg.lan:5000/v2/', { ...env, NO_PROXY: 'reg.lan:5000' }, undefined],
    ['https://reg.lan:6000/v2/', { ...env, NO_PROXY: 'reg.lan:5000' }, 'http://proxy.corp:3128/'],
  ];
  for (const [url, e, expected] of cases) {
    it(`${url} with ${JSON.stringify(e)}`, () => assert.equal(proxyFor(new URL(url), e)?.href, expected));
  }
  it('builds Proxy-Authorization from user info', () => {
    assert.equal(
      proxyAuthorization(new URL('http://u%40x:p%3Ass@proxy:1')),
      `Basic ${Buffer.from('u@x:p:ss').toString('base64')}`,
    );
    assert.equal(proxyAuthorization(new URL('http://proxy:1')), undefined);
  });
});
