/** Patch signatures: the MD5 XOR `signature` (spec 4.4) and streaming RSA verification of `signature.v2` (4.5) with node:crypto. */
import { constants, createVerify, type KeyObject, type Verify } from 'node:crypto'

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

export type RsaScheme = 'pss' | 'pkcs1'

/** The salt length of the legacy signer and of PyCryptodome's PSS verifier (the digest length). */
const PSS_SALT_LEN = 32

export interface SignatureVerifier {
  /** Feeds the next bytes of the signed data (metadata.tar, software.tar[, semantics.tar] in order). */
  update: (chunk: Buffer) => void
  /** The first trusted key (in store order) and the scheme that verify `signature`, or null. Call once. */
  verify: (signature: Buffer) => { signer: string, scheme: RsaScheme } | null
}

interface Check { signer: string, scheme: RsaScheme, verifier: Verify, key: KeyObject, bytes: number }

/**
 * Verifies `signature.v2` while the signed bytes stream past: RSASSA-PSS (MGF1-SHA256, salt 32) or
 * RSASSA-PKCS1-v1_5, both over SHA-256. node:crypto verifies only from the data itself, and a
 * Verify object serves one verify() call, so every trusted RSA key gets one SHA-256 stream per
 * scheme: two for an `rsa` key, one for an `rsa-pss` key (it cannot do PKCS#1 v1.5). PSS is checked
 * with salt length 32 rather than RSA_PSS_SALTLEN_AUTO because AUTO also accepts other salt lengths
 * (20, the maximum), which the legacy verifier refuses. Keys of other types can never verify.
 */
export function createSignatureVerifier (keys: ReadonlyArray<{ name: string, key: KeyObject }>): SignatureVerifier {
  const checks: Check[] = []
  for (const { name, key } of keys) {
    const type = key.asymmetricKeyType
    const bits = key.asymmetricKeyDetails?.modulusLength
    if (key.type !== 'public' || (type !== 'rsa' && type !== 'rsa-pss') || bits === undefined) continue
    const bytes = Math.ceil(bits / 8)
    checks.push({ signer: name, scheme: 'pss', verifier: createVerify('sha256'), key, bytes })
    if (type === 'rsa') checks.push({ signer: name, scheme: 'pkcs1', verifier: createVerify('sha256'), key, bytes })
  }
  return {
    update: (chunk) => { for (const c of checks) c.verifier.update(chunk) },
    verify: (signature) => {
      for (const c of checks) {
        // RFC 8017 8.1.2 step 1: a signature is exactly k octets. OpenSSL's PSS check also takes one
        // with its leading zero octets dropped; the legacy verifier does not.
        if (signature.length !== c.bytes) continue
        const options = c.scheme === 'pss'
          ? { key: c.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_LEN }
          : { key: c.key, padding: constants.RSA_PKCS1_PADDING }
        if (verifies(c.verifier, options, signature)) return { signer: c.signer, scheme: c.scheme }
      }
      return null
    }
  }
}

function verifies (v: Verify, options: Parameters<Verify['verify']>[0], signature: Buffer): boolean {
  try {
    return v.verify(options, signature)
  } catch {
    // OpenSSL raises instead of returning false for some malformed input (e.g. a value >= the modulus).
    return false
  }
}
