import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson } from './canonical.js';

test('canonical JSON: sorted keys, no whitespace, integers', () => {
  assert.equal(
    canonicalJson({ b: 1, a: [true, null, 'x'], c: { z: 0, y: -2 } }).toString(),
    '{"a":[true,null,"x"],"b":1,"c":{"y":-2,"z":0}}',
  );
});

test('canonical JSON escapes only quote and backslash, writes everything else as itself', () => {
  const s = 'a"b\\c/<>&\u00e9\u2028\n\t\u{1f600}';
  assert.equal(canonicalJson(s).toString('utf8'), `"a\\"b\\\\c/<>&\u00e9\u2028\n\t\u{1f600}"`);
});

test('canonical JSON sorts keys by UTF-8 bytes, not UTF-16 units', () => {
  // U+FF61 is one UTF-16 unit above the surrogates, but its UTF-8 bytes sort before U+1F600's.
  const obj = { '\u{1f600}': 1, '\uff61': 2, Z: 3, a: 4 };
  assert.equal(canonicalJson(obj).toString('utf8'), '{"Z":3,"a":4,"\uff61":2,"\u{1f600}":1}');
});

test('canonical JSON leaves out undefined members and refuses non-integers', () => {
  assert.equal(canonicalJson({ a: undefined, b: 'x' }).toString(), '{"b":"x"}');
  assert.throws(() => canonicalJson({ a: 1.5 }), /no number 1.5/);
  assert.throws(() => canonicalJson({ a: 2 ** 60 }), /no number/);
});

test('canonical JSON of a Notary key matches its published key ID', async () => {
  const { createHash } = await import('node:crypto');
  // A timestamp key as notary-server published it, with the ID notary computed for it.
  const key = {
    keytype: 'ed25519',
    keyval: { private: null, public: 'OZfN50Xg8Il29IePUkH9TpG7Nuw0bVSVwKMfdlfChWk=' },
  };
  assert.equal(
    createHash('sha256').update(canonicalJson(key)).digest('hex'),
    '221e545cb203b01d9c04a5c2fca382627b9d92c74c383d3fcf26b0229fde5051',
  );
});
