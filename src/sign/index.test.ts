import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { hasCode } from '../errors.js';
import { targetWitness, trustCollection } from './index.js';

const module = Buffer.from('\0asm\x01\0\0\0 some module bytes');
const b64 = (alg: string, data: Buffer) => createHash(alg).update(data).digest('base64');
const hex = (alg: string, data: Buffer) => createHash(alg).update(data).digest('hex');
const layer = {
  mediaType: 'application/wasm',
  digest: `sha256:${hex('sha256', module)}`,
  size: module.length,
};
const target = (hashes: Record<string, string>, length = module.length) => ({
  role: 'targets',
  name: 'v1',
  meta: { length, hashes },
});

test('the collection of a reference keeps the registry port', () => {
  assert.equal(trustCollection({ registry: 'localhost:5000', repository: 'a/b' }), 'localhost:5000/a/b');
});

test('a signed target matching the layer passes, its SHA-512 checked on the bytes', () => {
  const w = targetWitness(
    target({ sha256: b64('sha256', module), sha512: b64('sha512', module) }),
    layer,
    'g',
  );
  w.update(module.subarray(0, 5));
  w.update(module.subarray(5));
  w.finish();
});

test('length or SHA-256 differences are refused before any byte is read', () => {
  assert.throws(
    () => targetWitness(target({ sha256: b64('sha256', module) }, module.length + 1), layer, 'g'),
    (err) => hasCode(err, 'TRUST') && /has \d+ bytes, the signed target "v1" of g has/.test(err.message),
  );
  const other = Buffer.from('other');
  assert.throws(
    () => targetWitness(target({ sha256: b64('sha256', other) }), layer, 'g'),
    (err) => hasCode(err, 'TRUST') && err.message.includes(`sha256:${hex('sha256', other)}`),
  );
});

test('a SHA-512 that does not match the bytes written refuses the file', () => {
  const w = targetWitness(
    target({ sha256: b64('sha256', module), sha512: b64('sha512', Buffer.from('x')) }),
    layer,
    'g',
  );
  w.update(module);
  assert.throws(() => w.finish(), /does not match the sha512 hash of the signed target "v1" of g/);
});

test('a short stream is refused even when no other hash is left to check', () => {
  const w = targetWitness(target({ sha256: b64('sha256', module) }), layer, 'g');
  w.update(module.subarray(1));
  assert.throws(() => w.finish(), /the module has \d+ bytes/);
});

test('a target with no hash this version knows is refused', () => {
  assert.throws(
    () => targetWitness(target({ md5: 'xxx' }), layer, 'g'),
    (err) => hasCode(err, 'TRUST') && /lists no hash/.test(err.message),
  );
});
