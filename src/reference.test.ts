import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatReference, isLoopback, parseReference, registryApiHost } from './reference.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference', () => {
  const good: Array<
    [string, { registry: string; repository: string; tag?: string; digest?: string }, boolean]
  > = [
    [
      'localhost:5000/wasm-to-oci:v1',
      { registry: 'localhost:5000', repository: 'wasm-to-oci', tag: 'v1' },
      false,
    ],
    [
      'localhost:5000/wasm-to-oci',
      { registry: 'localhost:5000', repository: 'wasm-to-oci', tag: 'latest' },
      true,
    ],
    [
      'ghcr.io/owner/app/mod:1.0.0',
      { registry: 'ghcr.io', repository: 'owner/app/mod', tag: '1.0.0' },
      false,
    ],
    [`ghcr.io/owner/mod@${D}`, { registry: 'ghcr.io', repository: 'owner/mod', digest: D }, false],
    [
      `ghcr.io/owner/mod:v1@${D}`,
      { registry: 'ghcr.io', repository: 'owner/mod', tag: 'v1', digest: D },
      false,
    ],
    ['docker.io/hello', { registry: 'docker.io', repository: 'library/hello', tag: 'latest' }, true],
    [
      '127.0.0.1:5000/a__b.c-d/e',
      { registry: '127.0.0.1:5000', repository: 'a__b.c-d/e', tag: 'latest' },
      true,
    ],
    ['[::1]:5000/x:t', { registry: '[::1]:5000', repository: 'x', tag: 't' }, false],
    ['localhost/x:_under', { registry: 'localhost', repository: 'x', tag: '_under' }, false],
    ['Registry.Example.com/x', { registry: 'Registry.Example.com', repository: 'x', tag: 'latest' }, true],
  ];
  for (const [input, expected, defaulted] of good) {
    it(`parses ${input}`, () => {
      const ref = parseReference(input);
      assert.equal(ref.registry, expected.registry);
      assert.equal(ref.repository, expected.repository);
      assert.equal(ref.tag, expected.tag);
      assert.equal(ref.digest, expected.digest);
      assert.equal(ref.defaultedTag, defaulted);
    });
  }

  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['hello:v1', /registry host is missing/],
    ['library/hello', /registry host is missing/],
    ['https://ghcr.io/x', /no URL scheme/],
    ['localhost:5000/Upper', /not a valid repository/],
    ['localhost:5000/a//b', /not a valid repository/],
    ['localhost:5000/a-', /not a valid repository/],
    ['localhost:5000/', /repository name is missing/],
    ['localhost:5000/a:-bad', /not a valid tag/],
    [`localhost:5000/a:${'t'.repeat(129)}`, /not a valid tag/],
    ['localhost:5000/a@sha256:xyz', /not a digest/],
    ['local host/a', /white space/],
    [`example.com/${'a'.repeat(250)}`, /longer than 255/],
  ];
  for (const [input, message] of bad) {
    it(`rejects ${JSON.stringify(input.slice(0, 40))}`, () => {
      assert.throws(
        () => parseReference(input),
        (err: Error & { code?: string; hint?: string }) => {
          assert.equal(err.code, 'INVALID_REFERENCE');
          assert.match(err.message, message);
          assert.ok(err.hint, 'every reference error carries a hint');
          return true;
        },
      );
    });
  }

  it('formats back what it parsed', () => {
    assert.equal(formatReference(parseReference(`ghcr.io/o/m:v1@${D}`)), `ghcr.io/o/m:v1@${D}`);
    assert.equal(formatReference(parseReference('localhost:5000/m')), 'localhost:5000/m:latest');
  });
});

describe('hosts', () => {
  it('maps docker.io to the Docker Hub API host', () => {
    assert.equal(registryApiHost('docker.io'), 'registry-1.docker.io');
    assert.equal(registryApiHost('ghcr.io'), 'ghcr.io');
  });
  it('knows loopback hosts', () => {
    for (const h of ['localhost', 'localhost:5000', '127.0.0.1:1', '127.1.2.3', '[::1]:5000'])
      assert.ok(isLoopback(h), h);
    for (const h of ['ghcr.io', '10.0.0.1:5000', 'localhost.example.com', '128.0.0.1'])
      assert.ok(!isLoopback(h), h);
  });
});
