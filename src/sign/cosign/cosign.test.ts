import assert from 'node:assert/strict';
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  scryptSync,
  sign,
  verify,
} from 'node:crypto';
import { describe, it } from 'node:test';
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js';
import { hasCode } from '../../errors.js';
import { EMPTY_DESCRIPTOR } from '../../oci/descriptor.js';
import {
  bundleReferrer,
  rfc3339,
  SIGNATURE_ANNOTATION,
  signatureConfig,
  signatureLayer,
  signatureManifest,
  signatureTag,
} from './artifacts.js';
import { buildBundle, pae, parseBundle, parseStatement, signStatement } from './bundle.js';
import {
  COSIGN_KEY_PEM,
  decryptKey,
  encryptKey,
  generateKeyPair,
  keyHint,
  parseEncryptedKey,
  parsePrivateKeyFile,
  readPrivateKey,
  readPublicKey,
  SIGSTORE_KEY_PEM,
} from './keys.js';
import { keySigner, keyVerifier } from './signer.js';
import { parseSimpleSigning, simpleSigningPayload } from './simplesigning.js';
import { checkBundle, checkSimpleSigning } from './verify.js';

/**
 * cosign's formats, from their specifications (cosign specs/SIGNATURE_SPEC.md, the DSSE protocol, the
 * Sigstore bundle and in-toto statement protos, go-securesystemslib's encrypted key JSON): golden bytes
 * written here by hand, and every signature and key checked against a second implementation written
 * in this file (node:crypto and @noble/ciphers used directly), not against our own code alone.
 */

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const OTHER = `sha256:${'cd'.repeat(32)}`;
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

function pemOf(type: string, der: Uint8Array): string {
  const lines =
    Buffer.from(der)
      .toString('base64')
      .match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join('\n')}\n-----END ${type}-----\n`;
}

function ecKeys() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKey, publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
}

/** A key file made the way go-securesystemslib makes one, with node's scrypt and noble's secretbox. */
function independentKeyFile(pkcs8: Uint8Array, password: string, type: string, N = 32768): string {
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const key = scryptSync(password, salt, 32, { N, r: 8, p: 1, maxmem: 256 * 1024 * 1024 });
  const sealed = xsalsa20poly1305(key, nonce).encrypt(pkcs8);
  const json = JSON.stringify({
    kdf: { name: 'scrypt', params: { N, r: 8, p: 1 }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(sealed).toString('base64'),
  });
  return pemOf(type, Buffer.from(json));
}

describe('cosign simple-signing payload (SIGNATURE_SPEC.md)', () => {
  it('is the exact bytes Go writes for cosign’s struct', () => {
    const payload = simpleSigningPayload('localhost:5000/hello', DIGEST);
    const expected =
      '{"critical":{"identity":{"docker-reference":"localhost:5000/hello"},' +
      `"image":{"docker-manifest-digest":"${DIGEST}"},` +
      '"type":"cosign container image signature"},"optional":null}';
    assert.equal(Buffer.from(payload).toString(), expected);
    // Go escapes HTML characters in strings.
    assert.match(
      Buffer.from(simpleSigningPayload('a<b>&c', DIGEST)).toString(),
      /"a\\u003cb\\u003e\\u0026c"/,
    );
  });

  it('is stored as a layer of its own digest, the signature in the layer annotation, under sha256-<hex>.sig', () => {
    const payload = simpleSigningPayload('r/x', DIGEST);
    const layer = signatureLayer(payload, Buffer.from([1, 2, 3]));
    assert.deepEqual(layer, {
      mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      digest: `sha256:${sha256(payload)}`,
      size: payload.length,
      annotations: { 'dev.cosignproject.cosign/signature': 'AQID' },
    });
    assert.equal(signatureTag(DIGEST), `sha256-${'ab'.repeat(32)}.sig`);
  });

  it('parses the spec’s example spelling (Docker-manifest-digest) and refuses other types', () => {
    const spec = `{"critical":{"identity":{"docker-reference":"testing/manifest"},"image":{"Docker-manifest-digest":"${DIGEST}"},"type":"cosign container image signature"},"optional":{"creator":"atomic","timestamp":1458239713}}`;
    assert.deepEqual(parseSimpleSigning(Buffer.from(spec)), {
      dockerReference: 'testing/manifest',
      digest: DIGEST,
      type: 'cosign container image signature',
    });
    const atomic = spec.replace('cosign container image signature', 'atomic container signature');
    assert.throws(
      () => parseSimpleSigning(Buffer.from(atomic)),
      (e) => hasCode(e, 'SIGNATURE_INVALID') && /not a cosign signature/.test(e.message),
    );
  });

  it('the .sig manifest appends layers and recomputes go-containerregistry’s config', () => {
    const p1 = simpleSigningPayload('r/x', DIGEST);
    const l1 = signatureLayer(p1, Buffer.from('s1'));
    const first = signatureManifest([], l1, p1);
    const l2 = signatureLayer(p1, Buffer.from('s2'));
    const second = signatureManifest(first.manifest.layers, l2, p1);
    assert.deepEqual(second.manifest.layers, [l1, l2]);
    assert.equal(
      Buffer.from(signatureConfig([l1])).toString(),
      `{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["${l1.digest}"]},"config":{}}`,
    );
    const text = Buffer.from(second.bytes).toString();
    assert.ok(
      text.startsWith(
        '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":',
      ),
    );
    assert.equal(second.descriptor.digest, `sha256:${sha256(second.bytes)}`);
  });
});

describe('Sigstore bundle v0.3 with a DSSE envelope', () => {
  it('PAE is the DSSE spec’s encoding (its own example)', () => {
    assert.equal(
      Buffer.from(pae('http://example.com/HelloWorld', Buffer.from('hello world'))).toString(),
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
  });

  it('the statement names the digest with cosign’s signing predicate', () => {
    assert.equal(
      Buffer.from(signStatement(DIGEST)).toString(),
      `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"${'ab'.repeat(32)}"}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}`,
    );
  });

  it('the bundle JSON is in proto field order, bytes in base64, the key named by its hint', () => {
    const bundle = buildBundle(Buffer.from('{}'), Buffer.from([0xde, 0xad]), { publicKey: { hint: 'H=' } });
    assert.equal(
      Buffer.from(bundle).toString(),
      '{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"H="}},' +
        '"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"3q0="}]}}',
    );
  });

  it('the referrer manifest: subject, artifactType, empty config, one layer, cosign 3’s annotations', () => {
    const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: DIGEST, size: 321 };
    const bundle = Buffer.from('{"b":1}');
    const built = bundleReferrer(subject, bundle, new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678)));
    assert.equal(
      EMPTY_DESCRIPTOR.digest,
      'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
    );
    assert.equal(
      Buffer.from(built.bytes).toString(),
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",' +
        '"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json",' +
        '"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},' +
        `"layers":[{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","digest":"sha256:${sha256(bundle)}","size":7}],` +
        `"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${DIGEST}","size":321},` +
        '"annotations":{"dev.sigstore.bundle.content":"dsse-envelope","dev.sigstore.bundle.predicateType":"https://sigstore.dev/cosign/sign/v1","org.opencontainers.image.created":"2026-01-02T03:04:05Z"}}',
    );
    assert.equal(rfc3339(new Date(0)), '1970-01-01T00:00:00Z');
    assert.equal(built.descriptor.artifactType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
  });
});

describe('cosign key files', () => {
  it('generate, encrypt, decrypt: an ENCRYPTED SIGSTORE PRIVATE KEY in go-securesystemslib’s JSON', async () => {
    const pair = await generateKeyPair('pw');
    assert.match(pair.privateKey, /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
    assert.match(pair.publicKey, /^-----BEGIN PUBLIC KEY-----\n/);
    const body = pair.privateKey.split('\n').slice(1, -2).join('');
    const json = Buffer.from(body, 'base64').toString();
    assert.match(
      json,
      /^\{"kdf":\{"name":"scrypt","params":\{"N":32768,"r":8,"p":1\},"salt":"[A-Za-z0-9+/]{43}="\},"cipher":\{"name":"nacl\/secretbox","nonce":"[A-Za-z0-9+/]{32}"\},"ciphertext":"[A-Za-z0-9+/=]+"\}$/,
    );
    const key = await readPrivateKey(pair.privateKey, 'pw');
    const data = Buffer.from('message');
    const signature = sign('sha256', data, { key, dsaEncoding: 'der' });
    assert.ok(verify('sha256', data, { key: readPublicKey(pair.publicKey), dsaEncoding: 'der' }, signature));
  });

  it('a wrong password is one line with PASSPHRASE', async () => {
    const pair = await generateKeyPair('right');
    await assert.rejects(
      readPrivateKey(pair.privateKey, 'wrong'),
      (e) => hasCode(e, 'PASSPHRASE') && !/\n/.test(e.message) && /wrong password/.test(e.message),
    );
  });

  it('reads a key encrypted by a second implementation, under both PEM types and each accepted N', async () => {
    const { privateKey } = ecKeys();
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    for (const [type, N] of [
      [SIGSTORE_KEY_PEM, 32768],
      [COSIGN_KEY_PEM, 32768],
      [SIGSTORE_KEY_PEM, 65536],
    ] as const) {
      const read = await readPrivateKey(independentKeyFile(der, 'p@ss', type, N), 'p@ss');
      assert.deepEqual(read.export({ format: 'der', type: 'pkcs8' }), der, `${type} N=${N}`);
    }
  });

  it('a key we encrypt opens with the second implementation', async () => {
    const plaintext = randomBytes(100);
    const parsed = JSON.parse(Buffer.from(await encryptKey(plaintext, 'x')).toString());
    const key = scryptSync('x', Buffer.from(parsed.kdf.salt, 'base64'), 32, {
      N: 32768,
      r: 8,
      p: 1,
      maxmem: 2 ** 28,
    });
    const opened = xsalsa20poly1305(key, Buffer.from(parsed.cipher.nonce, 'base64')).decrypt(
      Buffer.from(parsed.ciphertext, 'base64'),
    );
    assert.deepEqual(Buffer.from(opened), plaintext);
    // NaCl's layout: the 16-byte tag, then the ciphertext.
    assert.equal(Buffer.from(parsed.ciphertext, 'base64').length, plaintext.length + 16);
  });

  it('refuses scrypt parameters outside go-securesystemslib’s sets, and other PEM types, before deriving', async () => {
    const json = (N: number) =>
      Buffer.from(
        JSON.stringify({
          kdf: { name: 'scrypt', params: { N, r: 8, p: 1 }, salt: 'AAAA' },
          cipher: { name: 'nacl/secretbox', nonce: Buffer.alloc(24).toString('base64') },
          ciphertext: Buffer.alloc(16).toString('base64'),
        }),
      );
    assert.equal(parseEncryptedKey(json(131072)).params.N, 131072);
    assert.throws(
      () => parseEncryptedKey(json(1 << 24)),
      (e) => hasCode(e, 'SIGNING_KEY') && /scrypt parameters/.test(e.message),
    );
    const { publicPem } = ecKeys();
    assert.throws(
      () => parsePrivateKeyFile(publicPem),
      (e) => hasCode(e, 'SIGNING_KEY') && /public key/.test(e.hint ?? ''),
    );
    await assert.rejects(decryptKey(parseEncryptedKey(json(32768)), 'x'), (e) => hasCode(e, 'PASSPHRASE'));
  });

  it('the public key hint is base64 of the SHA-256 of the SPKI DER', () => {
    const { publicKey, publicPem } = ecKeys();
    const der = publicKey.export({ format: 'der', type: 'spki' });
    assert.equal(keyHint(readPublicKey(publicPem)), createHash('sha256').update(der).digest('base64'));
  });

  it('refuses a non-ECDSA public key', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const text = publicKey.export({ format: 'pem', type: 'spki' }).toString();
    assert.throws(
      () => readPublicKey(text),
      (e) => hasCode(e, 'UNSUPPORTED'),
    );
  });
});

describe('signature checks', () => {
  const signer = ecKeys();
  const other = ecKeys();
  const verifier = keyVerifier(readPublicKey(signer.publicPem));

  /** A simple-signing payload typed from the spec and signed with node:crypto directly. */
  function specSignature(digest: string) {
    const payload = Buffer.from(
      `{"critical":{"identity":{"docker-reference":"example.com/app"},"image":{"docker-manifest-digest":"${digest}"},"type":"cosign container image signature"},"optional":null}`,
    );
    const signature = sign('sha256', payload, { key: signer.privateKey, dsaEncoding: 'der' }).toString(
      'base64',
    );
    return { payload, signature };
  }

  it('a .sig signature made from the spec with node:crypto verifies; tampered, other key, other digest fail', () => {
    const { payload, signature } = specSignature(DIGEST);
    assert.deepEqual(checkSimpleSigning(payload, signature, DIGEST, verifier), { ok: true });
    const tampered = Buffer.from(payload.toString().replace('example.com', 'evil.example'));
    assert.match(checkSimpleSigning(tampered, signature, DIGEST, verifier).reason ?? '', /does not verify/);
    const wrongKey = keyVerifier(readPublicKey(other.publicPem));
    assert.equal(checkSimpleSigning(payload, signature, DIGEST, wrongKey).ok, false);
    assert.match(checkSimpleSigning(payload, signature, OTHER, verifier).reason ?? '', /names sha256:abab/);
    assert.equal(checkSimpleSigning(payload, undefined, DIGEST, verifier).ok, false);
    assert.equal(checkSimpleSigning(payload, '!!', DIGEST, verifier).ok, false);
  });

  it('a bundle typed from the spec and signed with node:crypto verifies; tampered, other key, other digest fail', () => {
    const bundleFor = (
      digest: string,
      predicateType = 'https://sigstore.dev/cosign/sign/v1',
      key = signer.privateKey,
    ) => {
      const statement = Buffer.from(
        JSON.stringify({
          _type: 'https://in-toto.io/Statement/v1',
          subject: [{ name: 'x', digest: { sha256: digest.slice(7) } }],
          predicateType,
          predicate: {},
        }),
      );
      const type = 'application/vnd.in-toto+json';
      const signed = Buffer.concat([
        Buffer.from(`DSSEv1 ${type.length} ${type} ${statement.length} `),
        statement,
      ]);
      const sig = sign('sha256', signed, { key, dsaEncoding: 'der' });
      return {
        statement,
        sig,
        json: {
          mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
          verificationMaterial: { publicKey: { hint: 'x' } },
          dsseEnvelope: {
            payload: statement.toString('base64'),
            payloadType: type,
            signatures: [{ sig: sig.toString('base64url') }],
          },
        },
      };
    };
    const good = bundleFor(DIGEST);
    assert.deepEqual(checkBundle(Buffer.from(JSON.stringify(good.json)), DIGEST, verifier), { ok: true });
    const tampered = structuredClone(good.json);
    tampered.dsseEnvelope.payload = Buffer.from(good.statement.toString().replace('"x"', '"y"')).toString(
      'base64',
    );
    assert.match(
      checkBundle(Buffer.from(JSON.stringify(tampered)), DIGEST, verifier).reason ?? '',
      /not signed by this key|does not verify/,
    );
    const byOther = bundleFor(DIGEST, undefined, other.privateKey);
    assert.equal(checkBundle(Buffer.from(JSON.stringify(byOther.json)), DIGEST, verifier).ok, false);
    assert.match(
      checkBundle(Buffer.from(JSON.stringify(good.json)), OTHER, verifier).reason ?? '',
      /another digest/,
    );
    const attestation = bundleFor(DIGEST, 'https://slsa.dev/provenance/v1');
    assert.match(
      checkBundle(Buffer.from(JSON.stringify(attestation.json)), DIGEST, verifier).reason ?? '',
      /attestation/,
    );
    assert.equal(checkBundle(Buffer.from('not json'), DIGEST, verifier).ok, false);
  });

  it('our signatures pass a check written here from the specs (PAE, DSSE, simple signing)', async () => {
    const pair = await generateKeyPair('p');
    const ours = keySigner(await readPrivateKey(pair.privateKey, 'p'));
    const publicKey = createPublicKey(pair.publicKey);
    // A bundle: the envelope's signature over DSSEv1 <len> <type> <len> <payload>, a statement naming DIGEST.
    const statement = signStatement(DIGEST);
    const bundle = JSON.parse(
      Buffer.from(
        buildBundle(
          statement,
          await ours.sign(pae('application/vnd.in-toto+json', statement)),
          ours.material(),
        ),
      ).toString(),
    );
    const payload = Buffer.from(bundle.dsseEnvelope.payload, 'base64');
    const type = bundle.dsseEnvelope.payloadType;
    const signed = Buffer.from(
      `DSSEv1 ${Buffer.byteLength(type)} ${type} ${payload.length} ${payload.toString('latin1')}`,
      'latin1',
    );
    const sig = Buffer.from(bundle.dsseEnvelope.signatures[0].sig, 'base64');
    assert.ok(verify('sha256', signed, { key: publicKey, dsaEncoding: 'der' }, sig));
    const parsed = JSON.parse(payload.toString());
    assert.equal(parsed.subject[0].digest.sha256, 'ab'.repeat(32));
    assert.equal(parsed.predicateType, 'https://sigstore.dev/cosign/sign/v1');
    const der = publicKey.export({ format: 'der', type: 'spki' });
    assert.equal(
      bundle.verificationMaterial.publicKey.hint,
      createHash('sha256').update(der).digest('base64'),
    );
    // A simple-signing signature: ASN.1 ECDSA-SHA256 over the payload bytes themselves.
    const simple = simpleSigningPayload('example.com/app', DIGEST);
    const simpleSig = await ours.sign(simple);
    assert.ok(verify('sha256', simple, { key: publicKey, dsaEncoding: 'der' }, simpleSig));
    assert.equal(JSON.parse(Buffer.from(simple).toString()).critical.image['docker-manifest-digest'], DIGEST);
    // And our own parsers agree.
    assert.equal(parseBundle(Buffer.from(JSON.stringify(bundle))).signatures.length, 1);
    assert.deepEqual(parseStatement(payload).digests, [DIGEST]);
    assert.equal(layerAnnotation(simpleSig), Buffer.from(simpleSig).toString('base64'));
  });
});

function layerAnnotation(signature: Uint8Array): string | undefined {
  return signatureLayer(Buffer.from('p'), signature).annotations?.[SIGNATURE_ANNOTATION];
}
