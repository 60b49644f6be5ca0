import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPublicKey, verify, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  bitString,
  boolean,
  explicit,
  integer,
  objectIdentifier,
  octetString,
  printableString,
  readTlv,
  sequence,
  set,
  time,
  tlv,
  utf8String,
} from './der.js';
import { generateEcdsaKey, rootCertificate } from './keys.js';

const OPENSSL = '/usr/bin/openssl';
const hasOpenssl = existsSync(OPENSSL);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

interface Node {
  tag: number;
  content: Buffer;
  /** The whole TLV, header included. */
  bytes: Buffer;
}

/** The TLVs one after the other in `content`. */
function children(content: Buffer): Node[] {
  const out: Node[] = [];
  let offset = 0;
  while (offset < content.length) {
    const t = readTlv(content, offset);
    out.push({ tag: t.tag, content: t.content, bytes: content.subarray(offset, t.end) });
    offset = t.end;
  }
  return out;
}

function at<T>(list: readonly T[], i: number): T {
  const v = list[i];
  assert.ok(v !== undefined, `no item ${i}`);
  return v;
}

describe('DER lengths', () => {
  it('uses the short form below 128 and the 0x81 / 0x82 / 0x83 long forms above', () => {
    const header = (n: number) => hex(tlv(0x04, Buffer.alloc(n)).subarray(0, n < 0x80 ? 2 : 5));
    assert.equal(hex(tlv(0x04, Buffer.alloc(0))), '0400');
    assert.equal(header(1).slice(0, 4), '0401');
    assert.equal(header(127).slice(0, 4), '047f');
    assert.equal(header(128).slice(0, 6), '048180');
    assert.equal(header(255).slice(0, 6), '0481ff');
    assert.equal(header(256).slice(0, 8), '04820100');
    assert.equal(header(65535).slice(0, 8), '0482ffff');
    assert.equal(header(65536), '0483010000');
  });

  it('writes the content right after the header, whole', () => {
    for (const n of [0, 5, 127, 128, 300, 70000]) {
      const content = Buffer.alloc(n, 0x5a);
      const out = tlv(0x30, content);
      const headerLength = n < 0x80 ? 2 : n < 0x100 ? 3 : n < 0x10000 ? 4 : 5;
      assert.equal(out.length, headerLength + n, `length ${n}`);
      assert.equal(out[0], 0x30);
      assert.ok(out.subarray(headerLength).equals(content));
    }
  });
});

describe('DER primitive types', () => {
  it('tags each helper with its universal type', () => {
    assert.equal(hex(sequence()), '3000');
    assert.equal(hex(sequence(integer(1), integer(2))), '3006020101020102');
    assert.equal(hex(set(integer(1))), '3103020101');
    assert.equal(hex(octetString(Buffer.from([1, 2]))), '04020102');
    assert.equal(hex(printableString('Ab 1')), '130441622031');
    assert.equal(hex(boolean(true)), '0101ff');
    assert.equal(hex(boolean(false)), '010100');
    assert.equal(hex(explicit(0, integer(2))), 'a003020102');
    assert.equal(hex(explicit(3, sequence())), 'a3023000');
  });

  it('measures UTF8String contents in bytes, not characters', () => {
    assert.equal(hex(utf8String('é')), '0c02c3a9');
    assert.equal(hex(utf8String('a😀')), `0c0561${Buffer.from('😀').toString('hex')}`);
  });

  it('puts the unused-bit count before a BIT STRING', () => {
    assert.equal(hex(bitString(Buffer.from([0xa0]), 5)), '030205a0');
    assert.equal(hex(bitString(Buffer.from([0xff, 0x00]))), '030300ff00');
  });
});

describe('DER integers', () => {
  it('encodes small and large numbers minimally, with a zero byte before a set high bit', () => {
    const cases: [number, string][] = [
      [0, '020100'],
      [1, '020101'],
      [127, '02017f'],
      [128, '02020080'],
      [255, '020200ff'],
      [256, '02020100'],
      [32767, '02027fff'],
      [32768, '0203008000'],
      [65535, '020300ffff'],
      [100_000, '02030186a0'],
      [2 ** 32, '02050100000000'],
      [Number.MAX_SAFE_INTEGER, '02071fffffffffffff'],
    ];
    for (const [n, expected] of cases) assert.equal(hex(integer(n)), expected, String(n));
  });

  it('refuses negative, fractional and unsafe numbers', () => {
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      assert.throws(() => integer(bad), RangeError, String(bad));
    }
  });

  it('encodes magnitude bytes with leading zeros stripped (but one kept for a set high bit)', () => {
    assert.equal(hex(integer(Buffer.from([0, 0, 0x12]))), '020112');
    assert.equal(hex(integer(Buffer.from([0x80]))), '02020080');
    assert.equal(hex(integer(Buffer.from([0, 0, 0x80, 1]))), '0203008001');
    assert.equal(hex(integer(Buffer.from([0x7f, 0xff]))), '02027fff');
    assert.equal(hex(integer(Buffer.from([0, 0, 0]))), '020100');
    assert.equal(hex(integer(Buffer.alloc(0))), '020100');
    // A big (32-byte) magnitude with leading zeros: the zeros go, the rest is kept as is.
    const big = Buffer.concat([Buffer.alloc(3), Buffer.alloc(29, 0x41)]);
    assert.equal(hex(integer(big)), `021d${'41'.repeat(29)}`);
    const bigHigh = Buffer.concat([Buffer.alloc(2), Buffer.alloc(30, 0xc3)]);
    assert.equal(hex(integer(bigHigh)), `021f00${'c3'.repeat(30)}`);
  });

  it('takes a plain Uint8Array view (with an offset) and leaves it unchanged', () => {
    const backing = new Uint8Array([9, 9, 0, 0, 0x85, 0x01, 9]);
    const view = backing.subarray(2, 6);
    assert.equal(hex(integer(view)), '0203008501');
    assert.deepEqual([...backing], [9, 9, 0, 0, 0x85, 0x01, 9]);
  });

  it('agrees with the number form for the same value', () => {
    for (const n of [0, 1, 127, 128, 255, 65536, 1_000_000_007]) {
      const bytes = Buffer.alloc(8);
      bytes.writeBigUInt64BE(BigInt(n));
      assert.equal(hex(integer(bytes)), hex(integer(n)), String(n));
    }
  });
});

describe('DER object identifiers', () => {
  it('encodes the OIDs Notary needs', () => {
    const cases: [string, string][] = [
      ['1.2.840.10045.4.3.2', '06082a8648ce3d040302'], // ecdsa-with-SHA256
      ['2.5.4.3', '0603550403'], // commonName
      ['2.5.29.15', '0603551d0f'], // keyUsage
      ['2.5.29.19', '0603551d13'], // basicConstraints
      ['1.3.6.1.5.5.7.3.3', '06082b06010505070303'], // codeSigning
      ['1.2.840.113549.1.5.13', '06092a864886f70d01050d'], // PBES2
      ['1.2.840.113549.1.5.12', '06092a864886f70d01050c'], // PBKDF2
      ['2.16.840.1.101.3.4.1.42', '060960864801650304012a'], // AES-256-CBC
    ];
    for (const [oid, expected] of cases) assert.equal(hex(objectIdentifier(oid)), expected, oid);
  });

  it('writes arcs in base 128 with continuation bits, big arcs included', () => {
    assert.equal(hex(objectIdentifier('1.2.127')), '06022a7f');
    assert.equal(hex(objectIdentifier('1.2.128')), '06032a8100');
    assert.equal(hex(objectIdentifier('1.2.16383')), '06032aff7f');
    assert.equal(hex(objectIdentifier('1.2.16384')), '06042a818000');
    assert.equal(hex(objectIdentifier('1.2.4294967296')), '06062a9080808000');
    assert.equal(hex(objectIdentifier('0.0')), '060100');
  });

  it('refuses what is not a dotted list of at least two non-negative integers', () => {
    for (const bad of ['', '1', 'a.b', '1.-2', '1.2.x', '1.2.1e300', '1.2.3.4.5.0.5.x']) {
      assert.throws(() => objectIdentifier(bad), RangeError, JSON.stringify(bad));
    }
    assert.equal(hex(objectIdentifier('1.2.0.5')), '06032a0005');
  });

  it('matches what openssl encodes', { skip: !hasOpenssl && 'no openssl' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasm-to-oci-der-'));
    try {
      const out = join(dir, 'oid.der');
      for (const oid of [
        '1.2.840.10045.4.3.2',
        '2.5.4.3',
        '1.3.6.1.4.1.311.21.20',
        '1.2.840.113549.1.1.11',
      ]) {
        execFileSync(OPENSSL, ['asn1parse', '-genstr', `OID:${oid}`, '-noout', '-out', out]);
        assert.equal(hex(objectIdentifier(oid)), hex(readFileSync(out)), oid);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('encodes a first subidentifier above 127 in base 128 (2.999.3 -> 06 03 88 37 03)', () => {
    assert.equal(hex(objectIdentifier('2.999.3')), '0603883703');
  });

  it('refuses a second arc of 40 or more under arcs 0 and 1, and empty arcs', () => {
    assert.throws(() => objectIdentifier('1.40'), RangeError);
    assert.throws(() => objectIdentifier('1.2.'), RangeError);
    assert.throws(() => objectIdentifier('3.1'), RangeError);
  });
});

describe('DER times', () => {
  const ascii = (b: Buffer) => b.subarray(2).toString('latin1');

  it('writes UTCTime (YYMMDDHHMMSSZ, to the second) before 2050', () => {
    const t = time(new Date('2036-01-02T03:04:05.678Z'));
    assert.equal(t[0], 0x17);
    assert.equal(t[1], 13);
    assert.equal(ascii(t), '360102030405Z');
    assert.equal(ascii(time(new Date('1999-12-31T23:59:59Z'))), '991231235959Z');
    const last = time(new Date('2049-12-31T23:59:59.999Z'));
    assert.equal(last[0], 0x17);
    assert.equal(ascii(last), '491231235959Z');
  });

  it('writes GeneralizedTime (YYYYMMDDHHMMSSZ) from 2050 on', () => {
    const t = time(new Date('2050-01-01T00:00:00Z'));
    assert.equal(t[0], 0x18);
    assert.equal(t[1], 15);
    assert.equal(ascii(t), '20500101000000Z');
    assert.equal(ascii(time(new Date('9999-12-31T23:59:59Z'))), '99991231235959Z');
  });

  it('writes the UTC time of a date given with an offset', () => {
    assert.equal(ascii(time(new Date('2030-06-01T01:00:00+02:00'))), '300531230000Z');
  });

  it('writes GeneralizedTime before 1950 (RFC 5280 4.1.2.5: UTCTime only covers 1950-2049)', () => {
    const t = time(new Date('1949-12-31T00:00:00Z'));
    assert.equal(t[0], 0x18);
    assert.equal(ascii(t), '19491231000000Z');
  });
});

describe('readTlv', () => {
  it('reads back nested structures and consecutive items with their end offsets', () => {
    const der = sequence(integer(5), objectIdentifier('2.5.4.3'), octetString(Buffer.from('hi')));
    const outer = readTlv(der);
    assert.equal(outer.tag, 0x30);
    assert.equal(outer.end, der.length);
    const first = readTlv(outer.content);
    assert.deepEqual([first.tag, hex(first.content), first.end], [0x02, '05', 3]);
    const second = readTlv(outer.content, first.end);
    assert.deepEqual([second.tag, hex(second.content), second.end], [0x06, '550403', 8]);
    const third = readTlv(outer.content, second.end);
    assert.equal(third.content.toString(), 'hi');
    assert.equal(third.end, outer.content.length);
  });

  it('reads the long length forms', () => {
    for (const n of [127, 128, 255, 256, 300, 65535, 65536]) {
      const content = Buffer.alloc(n, 7);
      const t = readTlv(Buffer.concat([tlv(0x04, content), Buffer.from([0xee])]));
      assert.equal(t.tag, 0x04);
      assert.equal(t.content.length, n);
      assert.ok(t.content.equals(content));
      assert.equal(t.end, (n < 0x80 ? 2 : n < 0x100 ? 3 : n < 0x10000 ? 4 : 5) + n, `length ${n}`);
    }
  });

  it('reads from a Uint8Array view that does not start at the beginning of its buffer', () => {
    const backing = Buffer.concat([Buffer.from([0xff, 0xff]), integer(300), Buffer.from([0xff])]);
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 2, 4);
    const t = readTlv(view);
    assert.equal(t.tag, 0x02);
    assert.equal(hex(t.content), '012c');
    assert.equal(t.end, 4);
  });

  it('refuses truncated input and lengths DER does not allow', () => {
    const der = sequence(integer(5), objectIdentifier('2.5.4.3'));
    assert.throws(() => readTlv(Buffer.alloc(0)), /DER: truncated/);
    assert.throws(() => readTlv(Buffer.from([0x30])), /DER: truncated/);
    assert.throws(() => readTlv(der.subarray(0, der.length - 1)), /DER: truncated/);
    assert.throws(() => readTlv(der, der.length), /DER: truncated/);
    assert.throws(() => readTlv(der, der.length - 1), /DER: truncated/);
    // A long form whose length bytes are cut off.
    assert.throws(() => readTlv(Buffer.from([0x04, 0x82, 0x01])), /DER: bad length/);
    // The indefinite form (BER only) and lengths of more than four bytes.
    assert.throws(() => readTlv(Buffer.from([0x30, 0x80, 0x00, 0x00])), /DER: bad length/);
    assert.throws(() => readTlv(Buffer.from([0x04, 0x85, 0, 0, 0, 0, 1, 0])), /DER: bad length/);
    // A long-form length that says more than is there.
    assert.throws(
      () => readTlv(Buffer.concat([Buffer.from([0x04, 0x81, 0x90]), Buffer.alloc(10)])),
      /truncated/,
    );
    for (const fn of [() => readTlv(Buffer.alloc(0)), () => readTlv(Buffer.from([0x30, 0x80]))]) {
      assert.throws(fn, RangeError);
    }
  });
});

describe('the root certificate, taken apart', () => {
  const GUN = 'localhost:5000/hello';
  const NOW = new Date('2026-11-28T10:20:30.456Z');
  const key = generateEcdsaKey();
  const pem = rootCertificate(GUN, key, { now: NOW });
  const cert = new X509Certificate(pem);

  it('is a PEM certificate with 64-character lines that node:crypto parses', () => {
    const lines = pem.trimEnd().split('\n');
    assert.equal(lines[0], '-----BEGIN CERTIFICATE-----');
    assert.equal(lines.at(-1), '-----END CERTIFICATE-----');
    for (const line of lines.slice(1, -1)) assert.ok(line.length <= 64 && line.length > 0, line);
    assert.ok(cert.raw.equals(Buffer.from(lines.slice(1, -1).join(''), 'base64')));
  });

  it('names the GUN as subject and issuer, is not a CA and verifies with its own key', () => {
    assert.equal(cert.subject, `CN=${GUN}`);
    assert.equal(cert.issuer, `CN=${GUN}`);
    assert.equal(cert.ca, false);
    assert.ok(cert.verify(cert.publicKey));
    // Self-signed, yet it cannot issue certificates: its key usage has no keyCertSign.
    assert.equal(cert.checkIssued(cert), false);
    // (node:crypto's `keyUsage` is the extended key usage: code signing only.)
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.3']);
    assert.ok(cert.publicKey.equals(createPublicKey(key)));
    assert.equal(cert.verify(createPublicKey(generateEcdsaKey())), false);
  });

  it('is valid from now (to the second) for ten years', () => {
    const from = new Date(cert.validFrom);
    const to = new Date(cert.validTo);
    assert.equal(from.toISOString(), '2026-11-28T10:20:30.000Z');
    assert.equal(to.toISOString(), '2036-11-28T10:20:30.000Z');
    const days = (to.getTime() - from.getTime()) / 86_400_000;
    assert.ok(days >= 3652 && days <= 3653, String(days));
    const oneYear = new X509Certificate(rootCertificate(GUN, key, { now: NOW, years: 1 }));
    assert.equal(new Date(oneYear.validTo).toISOString(), '2027-11-28T10:20:30.000Z');
  });

  it('has the structure of an X.509 v3 certificate, with a signature over its TBS bytes', () => {
    const [outer] = children(cert.raw);
    assert.ok(outer);
    assert.equal(outer.tag, 0x30);
    const [tbs, algorithm, signature] = children(outer.content);
    assert.ok(tbs && algorithm && signature);
    assert.equal(hex(algorithm.bytes), '300a06082a8648ce3d040302');
    assert.equal(signature.tag, 0x03);
    assert.equal(signature.content[0], 0, 'no unused bits');
    assert.ok(verify('sha256', tbs.bytes, createPublicKey(key), signature.content.subarray(1)));

    const fields = children(tbs.content);
    assert.equal(fields.length, 8);
    assert.equal(hex(at(fields, 0).bytes), 'a003020102', 'version 3');
    const serial = at(fields, 1);
    assert.equal(serial.tag, 0x02);
    assert.ok(serial.content.length >= 1 && serial.content.length <= 17);
    assert.ok((at([...serial.content], 0) & 0x80) === 0, 'a positive serial');
    assert.ok(at(fields, 2).bytes.equals(algorithm.bytes));
    assert.ok(at(fields, 3).bytes.equals(at(fields, 5).bytes), 'issuer = subject');
    const validity = children(at(fields, 4).content);
    assert.deepEqual(
      validity.map((t) => [t.tag, t.content.toString('latin1')]),
      [
        [0x17, '261128102030Z'],
        [0x17, '361128102030Z'],
      ],
    );
    assert.ok(at(fields, 6).bytes.equals(createPublicKey(key).export({ type: 'spki', format: 'der' })));
    assert.equal(at(fields, 7).tag, 0xa3);
  });

  it('writes a GUN PrintableString cannot hold as a UTF8String', () => {
    const subjectValue = (gun: string) => {
      const raw = new X509Certificate(rootCertificate(gun, key, { now: NOW })).raw;
      const tbs = at(children(at(children(raw), 0).content), 0);
      const subject = at(children(tbs.content), 5);
      const atv = at(children(at(children(subject.content), 0).content), 0);
      const [oid, value] = children(atv.content);
      assert.equal(hex(oid?.bytes ?? Buffer.alloc(0)), '0603550403');
      assert.ok(value);
      return [value.tag, value.content.toString('utf8')];
    };
    assert.deepEqual(subjectValue(GUN), [0x13, GUN]);
    assert.deepEqual(subjectValue('localhost:5000/my_app'), [0x0c, 'localhost:5000/my_app']);
    assert.deepEqual(subjectValue('localhost:5000/*'), [0x0c, 'localhost:5000/*']);
  });

  it('switches to GeneralizedTime when it ends in or after 2050', () => {
    const late = new X509Certificate(rootCertificate(GUN, key, { now: new Date('2045-03-04T05:06:07Z') }));
    assert.equal(new Date(late.validFrom).toISOString(), '2045-03-04T05:06:07.000Z');
    assert.equal(new Date(late.validTo).toISOString(), '2055-03-04T05:06:07.000Z');
    const tbs = at(children(at(children(late.raw), 0).content), 0);
    const validity = children(at(children(tbs.content), 4).content);
    assert.deepEqual(
      validity.map((t) => t.tag),
      [0x17, 0x18],
    );
  });

  it('reads in openssl as Notary writes it', { skip: !hasOpenssl && 'no openssl' }, () => {
    const text = execFileSync(OPENSSL, ['x509', '-noout', '-text'], { input: pem }).toString();
    assert.match(text, /Version: 3 \(0x2\)/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(text, /Subject: CN ?= ?localhost:5000\/hello/);
    assert.match(text, /Not After : Nov 28 10:20:30 2036 GMT/);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\n/);
    assert.match(text, /X509v3 Extended Key Usage:\s+Code Signing\n/);
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /ASN1 OID: prime256v1/);
  });
});
