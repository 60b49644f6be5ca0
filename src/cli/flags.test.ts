import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withFlags } from './flags.js';

describe('withFlags', () => {
  it('shows the flag for each option a library text names, and leaves the rest', () => {
    assert.equal(
      withFlags('pick one with the `layer` option (a digest or a title)'),
      'pick one with --layer (a digest or a title)',
    );
    assert.equal(withFlags('use the `cert` option and the `key` option'), 'use --cert <pem> and --key <pem>');
    assert.equal(withFlags('drop the `plainHttp` option'), 'drop --plain-http');
    assert.equal(withFlags('the `preopens` option /x: not a directory'), '--dir /x: not a directory');
    assert.equal(withFlags("the `engine` option is the library's"), "the `engine` option is the library's");
    assert.equal(withFlags('the `__proto__` option'), 'the `__proto__` option');
    assert.equal(withFlags('no option here'), 'no option here');
  });
});
