import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseChallenges } from './challenge.js';
import { normalizeScopes, repositoryScope, scopeKey } from './scope.js';

describe('parseChallenges', () => {
  const cases: Array<[string, string | undefined, ReturnType<typeof parseChallenges>]> = [
    ['empty', undefined, []],
    [
      'Distribution bearer',
      'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"',
      [
        {
          scheme: 'bearer',
          params: {
            realm: 'https://auth.example.com/token',
            service: 'registry.example.com',
            scope: 'repository:a/b:pull,push',
          },
        },
      ],
    ],
    [
      'several scopes in one quoted parameter (mounts)',
      'Bearer realm="https://a/t",scope="repository:x:pull repository:y:pull,push"',
      [
        {
          scheme: 'bearer',
          params: { realm: 'https://a/t', scope: 'repository:x:pull repository:y:pull,push' },
        },
      ],
    ],
    [
      'basic with realm',
      'Basic realm="Registry Realm"',
      [{ scheme: 'basic', params: { realm: 'Registry Realm' } }],
    ],
    [
      'two challenges, spaces around separators, case-insensitive names',
      'Basic realm="a, b" ,  BEARER Realm="https://x/t" , Service=svc',
      [
        { scheme: 'basic', params: { realm: 'a, b' } },
        { scheme: 'bearer', params: { realm: 'https://x/t', service: 'svc' } },
      ],
    ],
    [
      'escaped quotes inside a quoted string',
      'Bearer realm="https://x/t",error="say \\"hi\\""',
      [{ scheme: 'bearer', params: { realm: 'https://x/t', error: 'say "hi"' } }],
    ],
    ['token68', 'Negotiate abc123==', [{ scheme: 'negotiate', params: {}, token68: 'abc123==' }]],
    ['scheme only', 'Bearer', [{ scheme: 'bearer', params: {} }]],
    ['unterminated quote stops parsing', 'Bearer realm="https://x', [{ scheme: 'bearer', params: {} }]],
    ['garbage is skipped', '=,,"', []],
  ];
  for (const [name, header, expected] of cases) {
    it(name, () => assert.deepEqual(parseChallenges(header), expected));
  }
});

describe('scopes', () => {
  it('builds repository scopes with sorted, unique actions', () => {
    assert.equal(repositoryScope('a/b', ['push', 'pull', 'push']), 'repository:a/b:pull,push');
  });
  it('merges actions per resource and sorts', () => {
    assert.deepEqual(normalizeScopes(['repository:b:pull', 'repository:a:push', 'repository:a:pull']), [
      'repository:a:pull,push',
      'repository:b:pull',
    ]);
    assert.deepEqual(normalizeScopes(['repository:x:pull repository:y:push']), [
      'repository:x:pull',
      'repository:y:push',
    ]);
  });
  it('gives one key to equivalent scope sets', () => {
    assert.equal(scopeKey(['repository:a:push,pull']), scopeKey(['repository:a:pull', 'repository:a:push']));
    assert.notEqual(scopeKey(['repository:a:pull']), scopeKey(['repository:a:pull,push']));
  });
});
