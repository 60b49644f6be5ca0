import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errnoError, isErrnoError } from './errors.js';

const errno = (code: string, syscall = 'write'): NodeJS.ErrnoException =>
  Object.assign(new Error(`${code}: raw text, ${syscall}`), { code, syscall });

describe('errnoError', () => {
  it('puts every write failure a user can cause in words, with a hint where one helps', () => {
    const cases: Array<[string, string, RegExp | undefined]> = [
      ['ENOSPC', 'no space left on device', /free some space/],
      ['EDQUOT', 'disk quota exceeded', /free some space/],
      ['EFBIG', 'file too large for the file size limit', /ulimit -f/],
      ['EACCES', 'permission denied', /permissions/],
      ['EPERM', 'permission denied', /permissions/],
      ['EROFS', 'read-only file system', /write somewhere/],
      ['EISDIR', 'is a directory', undefined],
      ['ENOTDIR', 'a part of the path is not a directory', undefined],
    ];
    for (const [code, reason, hint] of cases) {
      const err = errnoError(errno(code), 'out.wasm');
      assert.equal(err.code, 'FILE');
      assert.equal(err.message, `out.wasm: ${reason}`);
      assert.doesNotMatch(err.message, /raw text|write$/);
      if (hint) assert.match(err.hint ?? '', hint);
      else assert.equal(err.hint, undefined);
    }
  });

  it('an unknown code keeps the first line of the system message; the code can be overridden (uvwasi)', () => {
    assert.equal(errnoError(errno('EWEIRD'), 'x').message, 'x: EWEIRD: raw text, write');
    assert.equal(
      errnoError(errno('UVWASI_ENOENT', 'uvwasi_init'), 'WASI set-up', 'ENOENT').message,
      'WASI set-up: no such file or directory',
    );
  });

  it('isErrnoError wants an E code and a syscall', () => {
    assert.equal(isErrnoError(errno('ENOSPC')), true);
    assert.equal(isErrnoError(Object.assign(new Error('x'), { code: 'ENOSPC' })), false);
    assert.equal(
      isErrnoError(Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG_TYPE', syscall: 'x' })),
      false,
    );
    assert.equal(isErrnoError(undefined), false);
  });
});
