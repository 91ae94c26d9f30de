/** The MD5 `signature` rule (spec 4.4 test vector), streaming RSA verification of signature.v2, and the trust store. */
import { execFileSync } from 'node:child_process'
import { constants, createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSignatureVerifier, md5Signature, verifyMd5Signature, type RsaScheme } from '../../src/patchfile/signature.js'
import { loadTrustStore } from '../../src/patchfile/trust.js'

const md5 = (s: string | Buffer): Buffer => createHash('md5').update(s).digest()

let root: string
beforeAll(async () => { root = await mkdtemp(path.join(tmpdir(), 'sig-test-')) })
afterAll(async () => { await rm(root, { recursive: true, force: true }) })

describe('MD5 signature', () => {
  it('matches the spec test vector for files "a" and "b"', () => {
    expect(md5Signature([md5('a'), md5('b')])).toBe('61d5d5b8d9a066bbf4eb7a6ae3b98e11')
  })

  it('verifies with surrounding whitespace and a 0x prefix, and refuses anything else', () => {
    const sums = [md5('a'), md5('b')]

    expect(verifyMd5Signature('61d5d5b8d9a066bbf4eb7a6ae3b98e11', sums)).toBe(true)
    expect(verifyMd5Signature(' \n61D5D5B8D9A066BBF4EB7A6AE3B98E11\n', sums)).toBe(true)
    expect(verifyMd5Signature('0x61d5d5b8d9a066bbf4eb7a6ae3b98e11', sums)).toBe(true)
    expect(verifyMd5Signature('61d5d5b8d9a066bbf4eb7a6ae3b98e10', sums)).toBe(false)
    expect(verifyMd5Signature('61d5d5b8d9a066bbf4eb7a6ae3b98e11', [md5('a'), md5('c')])).toBe(false)
    expect(verifyMd5Signature('', sums)).toBe(false)
    expect(verifyMd5Signature('xyz', sums)).toBe(false)
    expect(verifyMd5Signature('161d5d5b8d9a066bbf4eb7a6ae3b98e11', sums)).toBe(false)
  })

  it('writes no leading zeros (the value may be shorter than 32 digits)', () => {
    // Three members whose XOR leaves leading zero nibbles: pick the third so the top byte is all ones.
    const a = md5('x')
    const b = md5('y')
    let third = 0
    let sig = ''
    for (; third < 100_000; third++) {
      sig = md5Signature([a, b, md5(String(third))])
      if (sig.length < 32) break
    }

    expect(sig.length).toBeLessThan(32)
    expect(sig).not.toMatch(/^0/)
    expect(verifyMd5Signature(sig, [a, b, md5(String(third))])).toBe(true)
  })
})

/** Streams `data` through a verifier for one key (in two uneven parts) and returns the scheme that verified. */
function verifyRsa (key: KeyObject, data: Buffer, signature: Buffer): RsaScheme | null {
  const v = createSignatureVerifier([{ name: 'k', key }])
  v.update(data.subarray(0, 7))
  v.update(data.subarray(7))
  return v.verify(signature)?.scheme ?? null
}

/** The same RSA public key under the id-RSASSA-PSS algorithm (an `rsa-pss` KeyObject), built as DER. */
function rsaPssPublicKey (rsa: KeyObject): KeyObject {
  const der = (tag: number, body: Buffer): Buffer => {
    const n = body.length
    const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff])
    return Buffer.concat([Buffer.from([tag]), len, body])
  }
  const algorithm = der(0x30, Buffer.from('06092a864886f70d01010a', 'hex'))
  const spki = der(0x30, Buffer.concat([algorithm, der(0x03, Buffer.concat([Buffer.from([0]), rsa.export({ type: 'pkcs1', format: 'der' })]))]))
  return createPublicKey({ key: spki, format: 'der', type: 'spki' })
}

describe('createSignatureVerifier', () => {
  const keys = [2048, 1025, 1032].map(bits => ({ bits, ...generateKeyPairSync('rsa', { modulusLength: bits }) }))
  const data = randomBytes(1000)
  const pssSign = (key: KeyObject, saltLength: number, what = data): Buffer => sign('sha256', what, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength })

  it.each(keys)('accepts PSS (salt 32) and PKCS#1 v1.5 signatures from node:crypto with a $bits-bit key', ({ privateKey, publicKey }) => {
    const pss = pssSign(privateKey, 32)
    const pkcs1 = sign('sha256', data, privateKey)

    expect(verifyRsa(publicKey, data, pss)).toBe('pss')
    expect(verifyRsa(publicKey, data, pkcs1)).toBe('pkcs1')
  })

  it.each(keys)('refuses tampered, foreign and malformed signatures with a $bits-bit key', ({ privateKey, publicKey }) => {
    const pss = pssSign(privateKey, 32)
    const flipped = Buffer.from(pss)
    flipped[10] ^= 1
    const other = keys.find(k => k.publicKey !== publicKey)?.publicKey as KeyObject
    const salt20 = pssSign(privateKey, 20)
    const sha1 = sign('sha1', data, privateKey)

    expect(verifyRsa(publicKey, data, flipped)).toBeNull()
    expect(verifyRsa(publicKey, Buffer.from('other'), pss)).toBeNull()
    expect(verifyRsa(other, data, pss)).toBeNull()
    expect(verifyRsa(publicKey, data, salt20)).toBeNull()
    expect(verifyRsa(publicKey, data, sha1)).toBeNull()
    expect(verifyRsa(publicKey, data, pss.subarray(1))).toBeNull()
    expect(verifyRsa(publicKey, data, Buffer.alloc(pss.length, 0xff))).toBeNull()
    expect(verifyRsa(publicKey, data, Buffer.alloc(pss.length))).toBeNull()
  })

  it('refuses a signature whose leading zero octet is dropped (RFC 8017: exactly k octets)', () => {
    const { privateKey, publicKey } = keys[1]
    let pss = pssSign(privateKey, 32)
    while (pss[0] !== 0) pss = pssSign(privateKey, 32)

    expect(verifyRsa(publicKey, data, pss)).toBe('pss')
    expect(verifyRsa(publicKey, data, pss.subarray(1))).toBeNull()
  })

  it('refuses tampered data: one flipped bit anywhere in the stream', () => {
    const { privateKey, publicKey } = keys[0]
    const tampered = Buffer.from(data)
    tampered[999] ^= 0x80

    expect(verifyRsa(publicKey, tampered, pssSign(privateKey, 32))).toBeNull()
    expect(verifyRsa(publicKey, tampered, sign('sha256', data, privateKey))).toBeNull()
  })

  it('accepts signatures made by openssl dgst: PSS salt 32 and -1 (the digest length), PKCS#1 v1.5; refuses PSS with the maximum salt', async () => {
    const dir = path.join(root, 'openssl')
    await mkdir(dir)
    const key = path.join(dir, 'key.pem')
    const file = path.join(dir, 'data')
    await writeFile(file, data)
    execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key], { stdio: 'pipe' })
    const publicKey = createPublicKey(execFileSync('openssl', ['pkey', '-in', key, '-pubout']))
    const pssWith = (saltlen: string): Buffer => execFileSync('openssl', ['dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', `rsa_pss_saltlen:${saltlen}`, '-sign', key, file])
    const pkcs1 = execFileSync('openssl', ['dgst', '-sha256', '-sign', key, file])

    expect(verifyRsa(publicKey, data, pssWith('32'))).toBe('pss')
    expect(verifyRsa(publicKey, data, pssWith('-1'))).toBe('pss')
    expect(verifyRsa(publicKey, data, pkcs1)).toBe('pkcs1')
    expect(verifyRsa(publicKey, data, pssWith('max'))).toBeNull()
  })

  it('verifies PSS but never PKCS#1 v1.5 with an rsa-pss key', () => {
    const { privateKey, publicKey } = keys[0]
    const pssOnly = rsaPssPublicKey(publicKey)
    const restricted = generateKeyPairSync('rsa-pss', { modulusLength: 2048, hashAlgorithm: 'sha256', mgf1HashAlgorithm: 'sha256' })

    expect(pssOnly.asymmetricKeyType).toBe('rsa-pss')
    expect(verifyRsa(pssOnly, data, pssSign(privateKey, 32))).toBe('pss')
    expect(verifyRsa(restricted.publicKey, data, pssSign(restricted.privateKey, 32))).toBe('pss')
    expect(verifyRsa(pssOnly, data, sign('sha256', data, privateKey))).toBeNull()
    expect(verifyRsa(pssOnly, data, pssSign(privateKey, 20))).toBeNull()
  })

  it('never verifies with a key that is not an RSA public key, and says which trusted key did', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const ecSig = sign('sha256', data, ec.privateKey)
    const { privateKey, publicKey } = keys[0]
    const v = createSignatureVerifier([
      { name: 'ec', key: ec.publicKey }, { name: 'private', key: privateKey }, { name: 'other', key: keys[1].publicKey }, { name: 'good', key: publicKey }
    ])
    v.update(data)

    expect(verifyRsa(ec.publicKey, data, ecSig)).toBeNull()
    expect(verifyRsa(privateKey, data, pssSign(privateKey, 32))).toBeNull()
    expect(v.verify(pssSign(privateKey, 32))).toEqual({ signer: 'good', scheme: 'pss' })
  })
})

describe('loadTrustStore', () => {
  it('reads certificates and public keys, several blocks per file, named by file', async () => {
    const dir = path.join(root, 'trust-ok')
    await mkdir(dir)
    const cert = path.join(dir, 'formal.crt')
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(root, 'formal-key.pem'), '-out', cert, '-subj', '/CN=formal', '-days', '2'], { stdio: 'pipe' })
    const a = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' })
    const b = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'pkcs1', format: 'pem' })
    await writeFile(path.join(dir, 'dev.pem'), `comment line\n${a}\n${b}`)
    await writeFile(path.join(dir, 'README.txt'), 'not a key, ignored')
    await mkdir(path.join(dir, 'sub.d'))

    const store = await loadTrustStore(dir)

    expect(store.keys.map(k => [k.name, k.key.type, k.key.asymmetricKeyType])).toEqual([
      ['dev.pem#1', 'public', 'rsa'], ['dev.pem#2', 'public', 'rsa'], ['formal.crt', 'public', 'rsa']
    ])
  })

  it('gives an empty store for a missing folder', async () => {
    expect(await loadTrustStore(path.join(root, 'nope'))).toEqual({ keys: [] })
  })

  it.each([
    ['garbage.pem', 'hello', 'holds no PEM certificate or public key'],
    ['broken.crt', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'cannot be parsed:'],
    ['private.pem', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 'unsupported PEM block "PRIVATE KEY"'],
    ['ec.pub', generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string, 'holds a ec key; only RSA keys can verify patches']
  ])('refuses %s with an error naming it', async (name, content, message) => {
    const dir = path.join(root, `trust-${name}`)
    await mkdir(dir)
    await writeFile(path.join(dir, name), content)

    const err = await loadTrustStore(dir).catch((e: Error) => e)

    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).toContain(path.join(dir, name))
    expect((err as Error).message).toContain(message)
  })
})
