/** Patch signatures: the MD5 XOR `signature` (spec 4.4) and RSA verification of a SHA-256 digest for `signature.v2` (4.5). */
import { constants, createHash, publicDecrypt, timingSafeEqual, type KeyObject } from 'node:crypto'

const ALL_ONES = (1n << 128n) - 1n

/** The `signature` member for the MD5 digests of metadata.tar, software.tar[, semantics.tar]. */
export function md5Signature (md5s: Buffer[]): string {
  let sig = ALL_ONES
  for (const d of md5s) sig ^= BigInt(`0x${d.toString('hex')}`)
  // Legacy format: lowercase hex, no leading zeros, no newline.
  return sig.toString(16)
}

/** True when the `signature` member's text matches the MD5 digests (surrounding whitespace tolerated). */
export function verifyMd5Signature (text: string, md5s: Buffer[]): boolean {
  const t = text.trim()
  if (!/^(0x)?[0-9a-fA-F]{1,32}$/.test(t)) return false
  let v = BigInt(t.startsWith('0x') ? t : `0x${t}`)
  for (const d of md5s) v ^= BigInt(`0x${d.toString('hex')}`)
  return v === ALL_ONES
}

// DER DigestInfo prefix for SHA-256 (RFC 8017, 9.2 note 1).
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex')
const HASH_LEN = 32
const PSS_SALT_LEN = 32

export type RsaScheme = 'pss' | 'pkcs1'

/**
 * Verifies an RSA signature over a precomputed SHA-256 digest: RSASSA-PSS (MGF1-SHA256, salt 32)
 * or RSASSA-PKCS1-v1_5 (RFC 8017, 8.1.2 and 8.2.2). Node can only verify from the data itself,
 * and the data (a whole patch payload) is hashed once while streaming, so the encoding check
 * is done here on the raw RSA result. Returns the scheme that verified, or null.
 */
export function verifyRsaDigest (key: KeyObject, digest: Buffer, signature: Buffer): RsaScheme | null {
  if (digest.length !== HASH_LEN) throw new Error('verifyRsaDigest: digest must be SHA-256')
  const type = key.asymmetricKeyType
  if (key.type !== 'public' || (type !== 'rsa' && type !== 'rsa-pss')) return null
  const bits = key.asymmetricKeyDetails?.modulusLength
  if (bits === undefined) return null
  const k = Math.ceil(bits / 8)
  if (signature.length !== k) return null
  let em: Buffer
  try {
    // Raw s^e mod n; OpenSSL refuses s >= n, which is an invalid signature anyway.
    em = publicDecrypt({ key, padding: constants.RSA_NO_PADDING }, signature)
  } catch {
    return null
  }
  if (em.length !== k) return null
  if (type === 'rsa' && pkcs1Matches(em, digest)) return 'pkcs1'
  if (pssMatches(em, digest, bits)) return 'pss'
  return null
}

function pkcs1Matches (em: Buffer, digest: Buffer): boolean {
  const t = Buffer.concat([SHA256_DIGEST_INFO, digest])
  const psLen = em.length - t.length - 3
  if (psLen < 8) return false
  const expected = Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(psLen, 0xff), Buffer.from([0]), t])
  return timingSafeEqual(em, expected)
}

function pssMatches (raw: Buffer, mHash: Buffer, modBits: number): boolean {
  const emBits = modBits - 1
  const emLen = Math.ceil(emBits / 8)
  // When emBits is a multiple of 8, EM is one byte shorter than the modulus and that byte is 0.
  if (raw.length - emLen === 1) {
    if (raw[0] !== 0) return false
  } else if (raw.length !== emLen) {
    return false
  }
  const em = raw.subarray(raw.length - emLen)
  if (emLen < HASH_LEN + PSS_SALT_LEN + 2) return false
  if (em[emLen - 1] !== 0xbc) return false
  const dbLen = emLen - HASH_LEN - 1
  const maskedDb = em.subarray(0, dbLen)
  const h = em.subarray(dbLen, dbLen + HASH_LEN)
  const zeroBits = 8 * emLen - emBits
  const topMask = 0xff >> zeroBits
  if ((maskedDb[0] & ~topMask & 0xff) !== 0) return false
  const db = mgf1(h, dbLen)
  for (let i = 0; i < dbLen; i++) db[i] ^= maskedDb[i]
  db[0] &= topMask
  const psLen = emLen - HASH_LEN - PSS_SALT_LEN - 2
  for (let i = 0; i < psLen; i++) if (db[i] !== 0) return false
  if (db[psLen] !== 0x01) return false
  const salt = db.subarray(dbLen - PSS_SALT_LEN)
  const h2 = createHash('sha256').update(Buffer.alloc(8)).update(mHash).update(salt).digest()
  return timingSafeEqual(h, h2)
}

function mgf1 (seed: Buffer, len: number): Buffer {
  const out = Buffer.alloc(len)
  const counter = Buffer.alloc(4)
  for (let off = 0, i = 0; off < len; i++, off += HASH_LEN) {
    counter.writeUInt32BE(i)
    createHash('sha256').update(seed).update(counter).digest().copy(out, off)
  }
  return out
}
