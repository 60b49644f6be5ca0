import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { goMap, goString, goStruct } from './gojson.js';

describe('Go-compatible JSON', () => {
  const cases: Array<[string, string]> = [
    ['plain', '"plain"'],
    ['a"b\\c', '"a\\"b\\\\c"'],
    ['<>&', '"\\u003c\\u003e\\u0026"'],
    ['line\nfeed\r\ttab', '"line\\nfeed\\r\\ttab"'],
    ['\b\f\u0001\u001f', '"\\u0008\\u000c\\u0001\\u001f"'],
    ['\u2028\u2029', '"\\u2028\\u2029"'],
    ['héllo ✓ 😀', '"héllo ✓ 😀"'],
    ['lone \ud800 surrogate \udc00', '"lone \ufffd surrogate \ufffd"'],
  ];
  for (const [input, expected] of cases) {
    it(`encodes ${JSON.stringify(input)}`, () => assert.equal(goString(input), expected));
  }

  it('sorts map keys by UTF-8 bytes, integer-like keys included', () => {
    assert.equal(goMap({ b: '1', a: '2', '10': 'x', '9': 'y' }).json, '{"10":"x","9":"y","a":"2","b":"1"}');
    // U+FF5E sorts before U+1F600 in UTF-8 although its UTF-16 code unit is larger.
    assert.equal(goMap({ '😀': '1', '～': '2' }).json, '{"～":"2","😀":"1"}');
  });

  it('keeps struct field order and omits undefined fields', () => {
    assert.equal(
      goStruct([
        ['z', 1],
        ['skip', undefined],
        ['a', 'x'],
        ['n', null],
      ]).json,
      '{"z":1,"a":"x","n":null}',
    );
  });
});
