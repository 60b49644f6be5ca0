import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WasmOciError } from '../errors.js';
import { EMPTY_DESCRIPTOR } from '../oci/descriptor.js';
import { digestOf } from '../oci/digest.js';
import { parseAttachFile } from './attach.js';

describe('parseAttachFile', () => {
  it('splits a media type after the last colon, as oras does', () => {
    assert.deepEqual(parseAttachFile('sbom.json'), { path: 'sbom.json' });
    assert.deepEqual(parseAttachFile('sbom.json:application/spdx+json'), {
      path: 'sbom.json',
      mediaType: 'application/spdx+json',
    });
    assert.deepEqual(parseAttachFile('dir/a:b.txt:text/plain'), {
      path: 'dir/a:b.txt',
      mediaType: 'text/plain',
    });
    // A colon not followed by a media type is part of the path.
    assert.deepEqual(parseAttachFile('C:notes.txt'), { path: 'C:notes.txt' });
    // As with oras, what looks like a media type after the last colon is one.
    assert.deepEqual(parseAttachFile('dir:x/file'), { path: 'dir', mediaType: 'x/file' });
  });

  it('refuses a malformed media type with a usage error', () => {
    assert.throws(
      () => parseAttachFile('sbom.json:application/spdx json'),
      (err: unknown) =>
        err instanceof WasmOciError && err.code === 'USAGE' && /not a media type/.test(err.message),
    );
  });

  it('the empty descriptor is the two bytes {}', () => {
    assert.equal(EMPTY_DESCRIPTOR.digest, digestOf('{}'));
    assert.equal(EMPTY_DESCRIPTOR.size, 2);
    assert.equal(EMPTY_DESCRIPTOR.mediaType, 'application/vnd.oci.empty.v1+json');
  });
});
