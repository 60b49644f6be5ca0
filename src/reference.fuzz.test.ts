import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { assertFast, expectResultOrError, HOSTILE_STRINGS, Rng } from '../test/harness/fuzz.js';
import { outcome, params, stringOf } from '../test/harness/properties.js';
import { WasmOciError } from './errors.js';
import { formatTarget, parseTarget } from './ops/target.js';
import {
  formatReference,
  hostName,
  isLoopback,
  isValidTag,
  type ParsedReference,
  parseReference,
  registryApiHost,
} from './reference.js';

/**
 * Seeded fuzzing of reference parsing (user input, but also references read back from files and
 * registries): random and mutated strings give a reference that formats back to itself, or
 * INVALID_REFERENCE; never an internal exception, never a slow match.
 */

const SEEDS = [1, 2, 3, 0x5eed];
const ALPHABET = 'abcz019ABZ.:/@_-[]%+~ \t';
const D = `sha256:${'0123456789abcdef'.repeat(4)}`;
const VALID = [
  'localhost:5000/wasm-to-oci:v1',
  'ghcr.io/owner/app/mod:1.0.0',
  `ghcr.io/owner/mod:v1@${D}`,
  'docker.io/hello',
  '[::1]:5000/x:t',
  '127.0.0.1:5000/a__b.c-d/e',
  'Registry.Example.com/x',
];

function checkParsed(ref: ParsedReference, context: string): void {
  for (const v of [ref.registry, ref.repository])
    assert.equal(typeof v, 'string', `${context}: field not a string`);
  assert.ok(ref.tag === undefined || isValidTag(ref.tag), `${context}: bad tag ${ref.tag}`);
  assert.ok(!/\s/.test(formatReference(ref)), `${context}: white space in a parsed reference`);
  // What was parsed formats to a reference that parses to the same parts.
  const again = parseReference(formatReference(ref));
  assert.deepEqual(
    { r: again.registry, p: again.repository, t: again.tag, d: again.digest },
    { r: ref.registry, p: ref.repository, t: ref.tag, d: ref.digest },
    context,
  );
  assert.equal(typeof registryApiHost(ref.registry), 'string');
  assert.equal(typeof hostName(ref.registry), 'string');
  assert.equal(typeof isLoopback(ref.registry), 'boolean');
}

function mutate(rng: Rng, input: string): string {
  const at = rng.int(input.length + 1);
  switch (rng.int(5)) {
    case 0:
      return input.slice(0, at);
    case 1:
      return input.slice(0, at) + rng.string(1 + rng.int(4), ALPHABET) + input.slice(at);
    case 2:
      return input.slice(0, at) + rng.pick(HOSTILE_STRINGS) + input.slice(at);
    case 3:
      return input.slice(0, at) + input.slice(at + 1 + rng.int(3));
    default:
      return input.slice(0, at) + (input[at] ?? '').repeat(1 + rng.int(300)) + input.slice(at + 1);
  }
}

describe('parseReference fuzzing', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: random and mutated strings parse or fail with INVALID_REFERENCE`, () => {
      const rng = new Rng(seed);
      let parsed = 0;
      for (let i = 0; i < 500; i++) {
        const input =
          i % 3 === 0
            ? rng.string(rng.int(60), ALPHABET)
            : mutate(rng, i % 3 === 1 ? rng.pick(VALID) : mutate(rng, rng.pick(VALID)));
        const context = `seed ${seed} case ${i}`;
        expectResultOrError(
          () => parseReference(input),
          ['INVALID_REFERENCE'],
          context,
          input,
          (ref) => {
            checkParsed(ref, context);
            parsed++;
          },
        );
        expectResultOrError(
          () => parseTarget(input, { layout: rng.bool(0.3) }),
          ['INVALID_REFERENCE'],
          context,
          input,
          (spec) => assert.equal(typeof formatTarget(spec), 'string'),
        );
      }
      // The mutations keep enough references valid for the round trip to be exercised.
      assert.ok(parsed > 50, `only ${parsed} of 500 inputs parsed`);
    });
  }

  it('long and repetitive inputs are answered quickly', () => {
    const long = [
      `${'a.'.repeat(5000)}a/x`,
      `${'a-'.repeat(5000)}/x`,
      `localhost/${'a-'.repeat(5000)}`,
      `localhost/${'a__'.repeat(3000)}!`,
      `localhost/${'a/'.repeat(5000)}`,
      `localhost/x@${'a+'.repeat(5000)}:`,
      `localhost/x@sha256:${'a'.repeat(10_000)}!`,
      `[${':'.repeat(10_000)}/x`,
      `localhost/x:${'t'.repeat(10_000)}`,
      `${'@'.repeat(10_000)}`,
      `${'/'.repeat(10_000)}`,
    ];
    for (const input of long) {
      assertFast(100, input.slice(0, 20), () =>
        expectResultOrError(() => parseReference(input), ['INVALID_REFERENCE'], input.slice(0, 20), input),
      );
    }
  });
});

describe('parseReference properties (fast-check)', () => {
  const known = fc.constantFrom(
    'localhost:5000',
    'ghcr.io',
    'docker.io',
    '[::1]:5000',
    '127.0.0.1',
    'Registry.Example.com',
  );
  // Known registries twice as often as random text.
  const registry = fc.oneof(
    known,
    known,
    stringOf(['a', 'z', '0', '9', '.', '-', ':', '5000', '[', ']', '::1', 'A']),
  );
  const component = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('a', 'wasm-to-oci', 'a__b.c-d', 'owner', 'x0') },
    { weight: 1, arbitrary: stringOf(['a', 'b0', '_', '__', '.', '-', 'x', 'Z', '%2e']) },
  );
  const tag = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('v1', 'latest', '1.0.0', '_x', 't'.repeat(128)) },
    { weight: 1, arbitrary: stringOf(['v1', 'latest', '1.0.0', '_', '-', '.', 'A', 't'.repeat(128)]) },
  );
  const digest = fc.oneof(
    fc.constant(D),
    fc.constant(D),
    fc
      .constantFrom('sha256', 'sha512', 'SHA256', 'a+b', 'a.b', '')
      .chain((alg) =>
        stringOf(['0', 'f', 'a', 'F', '0123456789abcdef'.repeat(4), ':', '=']).map((hex) => `${alg}:${hex}`),
      ),
  );
  /** Registry, path, tag and digest joined, each valid, odd, or hostile, with the separators varied. */
  const structured = fc
    .record({
      registry: fc.option(registry, { freq: 4 }),
      path: fc.array(component, { minLength: 1, maxLength: 4 }),
      tag: fc.option(tag),
      digest: fc.option(digest),
      slash: fc.constantFrom('/', '/', '/', '//', '\\'),
    })
    .map(
      ({ registry: r, path, tag: t, digest: dg, slash }) =>
        `${r === null ? '' : `${r}${slash}`}${path.join('/')}${t === null ? '' : `:${t}`}${dg === null ? '' : `@${dg}`}`,
    );
  const input = fc.oneof(
    { weight: 4, arbitrary: structured },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
    { weight: 1, arbitrary: stringOf([...ALPHABET], 60) },
  );

  it('any string parses to a reference that round-trips, or fails with INVALID_REFERENCE (one line)', () => {
    let parsed = 0;
    fc.assert(
      fc.property(input, fc.boolean(), (text, layout) => {
        outcome(
          () => parseReference(text),
          ['INVALID_REFERENCE'],
          text,
          (ref) => {
            checkParsed(ref, JSON.stringify(text));
            parsed++;
          },
        );
        outcome(
          () => parseTarget(text, { layout }),
          ['INVALID_REFERENCE'],
          text,
          (spec) => assert.equal(typeof formatTarget(spec), 'string'),
        );
      }),
      params(0x5eed01, 1500),
    );
    assert.ok(parsed > 100, `only ${parsed} references parsed`);
  });

  it('a reference holding line breaks fails with a one-line message (regression)', () => {
    // The message quoted the input raw: "a\r\nb" made a two-line error for every caller but the CLI.
    for (const text of ['\r\n/', 'a\nb', 'localhost/x:\n', 'x@sha256:\r']) {
      const err = outcome(() => parseReference(text), ['INVALID_REFERENCE'], text);
      assert.ok(err instanceof WasmOciError, JSON.stringify(text));
      assert.ok(err.message.includes(JSON.stringify(text).slice(1, -1)), err.message);
    }
  });

  it('a repeated piece is answered quickly at any length', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('localhost/', 'a.', 'a-', 'a__', '@', '/', ':', '[', 'x@sha256:'),
        fc.constantFrom(...ALPHABET, 'a/', 'a+', '!'),
        fc.integer({ min: 1000, max: 20_000 }),
        (head, piece, n) => {
          const text = `${head}${piece.repeat(n)}!`;
          outcome(() => parseReference(text), ['INVALID_REFERENCE'], text, undefined, 100);
        },
      ),
      params(0x5eed02, 100),
    );
  });
});
