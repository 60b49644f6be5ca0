import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { assertFast, expectResultOrError, Rng } from '../../test/harness/fuzz.js';
import { params } from '../../test/harness/properties.js';
import { WasmOciError } from '../errors.js';
import { isValidTag } from '../reference.js';
import { tagFilter, tagPattern } from './tag-glob.js';

const TAGS = [
  'latest',
  'v1',
  'v1.0',
  'v1.1',
  'v1.10',
  'v2.0',
  'v2.0-rc1',
  'v2.0-rc2',
  'x_1',
  'sha256-ab',
  'V1',
];

const select = (include: string[], exclude: string[] = []) => TAGS.filter(tagFilter({ include, exclude }));

describe('tag globs', () => {
  it('select what a shell would', () => {
    assert.deepEqual(select(['v1.*']), ['v1.0', 'v1.1', 'v1.10']);
    assert.deepEqual(select(['v1.?']), ['v1.0', 'v1.1']);
    assert.deepEqual(select(['*-rc*']), ['v2.0-rc1', 'v2.0-rc2']);
    assert.deepEqual(
      select([], ['*-rc*', 'sha256-*']),
      TAGS.filter((t) => !/-rc|sha256/.test(t)),
    );
    assert.deepEqual(select(['v[12].0']), ['v1.0', 'v2.0']);
    assert.deepEqual(select(['v[!1]*']), ['v2.0', 'v2.0-rc1', 'v2.0-rc2']);
    assert.deepEqual(select(['v[^1]*']), ['v2.0', 'v2.0-rc1', 'v2.0-rc2']);
    assert.deepEqual(
      select(['[a-z]*']),
      TAGS.filter((t) => /^[a-z]/.test(t)),
    );
    assert.deepEqual(select(['v1', 'latest']), ['latest', 'v1'], 'any include pattern');
    assert.deepEqual(select(['v*'], ['v2*']), ['v1', 'v1.0', 'v1.1', 'v1.10'], 'exclude after include');
    assert.deepEqual(select(['\\v1']), ['v1'], 'an escaped letter is itself');
    assert.deepEqual(select(['v1']), ['v1'], 'case matters, and the whole tag must match');
    assert.deepEqual(select(['*']), TAGS);
    assert.deepEqual(select(['**', '*.*']).length, TAGS.length);
    assert.deepEqual(select(['[]v]1']), ['v1'], 'a ] first in a class is a member');
    assert.deepEqual(select(['v1[.-]*']), ['v1.0', 'v1.1', 'v1.10'], '- last in a class is a member');
  });

  it('refuse patterns that are malformed or can match no tag, naming the option', () => {
    for (const [pattern, why] of [
      ['', /is empty/],
      ['!v1', /starts with !/],
      ['v[12', /\[ without its \]/],
      ['[]', /\[ without its \]/],
      ['v1\\', /lone \\/],
      ['[a\\', /lone \\/],
      ['[z-a]', /runs backwards/],
      ['a/b', /"\/", which no tag can hold/],
      ['v 1', /which no tag can hold/],
      ['\\*', /"\*", which no tag can hold/],
      ['x'.repeat(300), /longer than 256/],
    ] as const) {
      assert.throws(
        () => tagPattern(pattern, 'exclude'),
        (err: unknown) =>
          err instanceof WasmOciError &&
          err.code === 'USAGE' &&
          why.test(err.message) &&
          err.message.includes('the `exclude` option') &&
          err.hint !== undefined,
        pattern,
      );
    }
    assert.throws(() => tagFilter({ include: ['v1'], exclude: ['ok', '[bad'] }), /\[bad/);
  });

  it('agree with a regular expression built from the same glob (seeded property)', () => {
    const piece = fc.constantFrom(
      'a',
      'b',
      '1',
      '.',
      '-',
      '_',
      '*',
      '?',
      '[ab]',
      '[!a]',
      '[a-c]',
      '[^1]',
      '\\a',
    );
    const tag = fc.array(fc.constantFrom('a', 'b', 'c', '1', '.', '-', '_'), { minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 8 }), tag, (pieces, chars) => {
        const glob = pieces.join('');
        fc.pre(!glob.startsWith('!'));
        const text = chars.join('');
        const source = pieces
          .map((p) =>
            p === '*'
              ? '.*'
              : p === '?'
                ? '.'
                : p.startsWith('[')
                  ? p.replace('[!', '[^')
                  : p.startsWith('\\')
                    ? (p[1] as string)
                    : p.replace(/[.]/, '\\.'),
          )
          .join('');
        assert.equal(
          tagPattern(glob, 'include').matches(text),
          new RegExp(`^${source}$`, 's').test(text),
          glob,
        );
      }),
      params(0x7a95, 2000),
    );
  });

  it('random patterns compile or give one USAGE error, and match fast (seeded fuzz)', () => {
    for (const seed of [1, 2, 3]) {
      const rng = new Rng(seed);
      for (let i = 0; i < 2000; i++) {
        const input = rng.bool(0.7) ? rng.string(rng.int(20), 'ab1.-_*?[]!^\\/ ') : rng.string(rng.int(12));
        const result = expectResultOrError(
          () => tagPattern(input, 'include'),
          ['USAGE'],
          `seed ${seed} #${i}`,
          input,
        );
        if (!(result instanceof WasmOciError)) {
          const tag = rng.string(1 + rng.int(30), 'ab1.-_');
          if (isValidTag(tag)) assert.equal(typeof result.matches(tag), 'boolean');
        } else assert.ok(!result.message.includes('\n'));
      }
    }
    // Many stars against a long near miss: quadratic at worst, never exponential.
    const pattern = tagPattern(`${'*a'.repeat(60)}b`, 'include');
    assertFast(200, 'many stars', () => assert.equal(pattern.matches('a'.repeat(128)), false));
  });
});
