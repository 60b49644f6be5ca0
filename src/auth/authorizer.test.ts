import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type { HttpEngine, HttpRequest, HttpResponse } from '../transport/types.js';
import { Authorizer } from './authorizer.js';

// Edge cases of the token protocol with a scripted engine; the real registry and token server are in
// test/e2e/token-auth.test.ts.

type Script = (req: HttpRequest) => { status: number; body?: string; headers?: Record<string, string> };

function engine(script: Script): HttpEngine & { seen: HttpRequest[] } {
  const seen: HttpRequest[] = [];
  return {
    seen,
    async request(req) {
      seen.push(req);
      const { status, body = '', headers = {} } = script(req);
      return { status, headers, body: Readable.from([Buffer.from(body)]), url: req.url } as HttpResponse;
    },
  };
}

const challenge = (scope: string): HttpResponse =>
  ({
    status: 401,
    headers: {
      'www-authenticate': `Bearer realm="https://auth.example/token",service="reg",scope="${scope}"`,
    },
    body: Readable.from([]),
    url: new URL('https://reg.example/v2/'),
  }) as HttpResponse;

const token = (value: string, expires = 300) => ({
  status: 200,
  body: JSON.stringify({ token: value, expires_in: expires }),
});

describe('Authorizer', () => {
  it('uses the OAuth2 password grant where the realm refuses GET', async () => {
    const e = engine((req) => (req.method === 'GET' ? { status: 405 } : token('t1')));
    const auth = new Authorizer({ engine: e, credentials: async () => ({ username: 'u', password: 'p w' }) });
    assert.equal(
      await auth.onUnauthorized('reg.example', challenge('repository:a:pull'), ['repository:a:pull'], false),
      true,
    );
    assert.equal(await auth.authorization('reg.example', ['repository:a:pull']), 'Bearer t1');
    const post = e.seen[1];
    assert.equal(post?.method, 'POST');
    assert.equal(post?.headers?.authorization, undefined, 'no basic header on the form POST');
    const form = new URLSearchParams(Buffer.from(post?.body as Uint8Array).toString());
    assert.equal(form.get('grant_type'), 'password');
    assert.equal(form.get('username'), 'u');
    assert.equal(form.get('password'), 'p w');
    assert.equal(form.get('scope'), 'repository:a:pull');
  });

  it('sends an identity token as a refresh-token grant', async () => {
    const e = engine(() => token('t2'));
    const auth = new Authorizer({ engine: e, credentials: async () => ({ identityToken: 'refresh' }) });
    await auth.onUnauthorized('r', challenge('repository:a:pull,push'), ['repository:a:pull,push'], false);
    const form = new URLSearchParams(Buffer.from(e.seen[0]?.body as Uint8Array).toString());
    assert.deepEqual(
      [form.get('grant_type'), form.get('refresh_token'), form.get('service'), form.get('scope')],
      ['refresh_token', 'refresh', 'reg', 'repository:a:pull,push'],
    );
  });

  it('shares one token request between concurrent requests and honours expires_in', async () => {
    let now = 1_000_000;
    let n = 0;
    const e = engine(() => token(`t${++n}`, 60));
    const auth = new Authorizer({ engine: e, now: () => now });
    const scopes = ['repository:a:pull'];
    await Promise.all(
      [1, 2, 3].map(() => auth.onUnauthorized('r', challenge(scopes[0] ?? ''), scopes, false)),
    );
    assert.equal(e.seen.length, 1);
    assert.equal(await auth.authorization('r', scopes), 'Bearer t1');
    now += 50_000;
    assert.equal(await auth.authorization('r', scopes), 'Bearer t1', 'still fresh');
    now += 10_000;
    assert.equal(await auth.authorization('r', scopes), 'Bearer t2', 'expired: a new token');
    assert.equal(
      await auth.authorization('r', ['repository:b:pull']),
      'Bearer t3',
      'another scope set, another token',
    );
  });

  it('reports a failing token server with a hint, and explains missing credentials', async () => {
    const e = engine(() => ({ status: 401, body: '{"errors":[]}' }));
    const auth = new Authorizer({
      engine: e,
      credentials: async () => {
        throw new Error('helper exploded');
      },
    });
    await assert.rejects(
      auth.onUnauthorized('r', challenge('repository:a:pull'), ['repository:a:pull'], false),
      {
        code: 'UNAUTHORIZED',
      },
    );
    assert.equal(await auth.explain('r'), 'no credentials were used: helper exploded');
    const plain = new Authorizer({ engine: e });
    assert.match((await plain.explain('r')) ?? '', /log in with "wasm-to-oci login r"/);
  });
});
