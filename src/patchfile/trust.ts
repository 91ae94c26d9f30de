/** The trust store for signature.v2: PEM certificates and public keys from one folder (spec D9). */
import { X509Certificate, createPublicKey, type KeyObject } from 'node:crypto'
import { readFile, readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import type { TrustStore } from './types.js'

const TRUST_FILE = /\.(pem|crt|pub)$/
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g
const MAX_TRUST_FILE_BYTES = 1024 * 1024

/**
 * Reads every `*.pem`, `*.crt` and `*.pub` file of `dir` (a missing folder gives an empty store).
 * Each file may hold several PEM blocks: X.509 certificates and/or RSA public keys. A file that
 * cannot be parsed, holds no PEM block, a private key or a non-RSA key is an error naming it.
 * Keys are named after their file, with `#n` appended when a file holds more than one.
 */
export async function loadTrustStore (dir: string): Promise<TrustStore> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { keys: [] }
    throw err
  }
  const keys: TrustStore['keys'] = []
  for (const file of names.filter(n => TRUST_FILE.test(n)).sort()) {
    const full = path.join(dir, file)
    let text: string
    try {
      const st = await stat(full)
      if (!st.isFile()) throw new Error('not a regular file')
      if (st.size > MAX_TRUST_FILE_BYTES) throw new Error(`larger than ${MAX_TRUST_FILE_BYTES} bytes`)
      text = await readFile(full, 'utf8')
    } catch (err) {
      throw new Error(`Trust store file ${full} cannot be read: ${(err as Error).message}`)
    }
    const blocks = [...text.matchAll(PEM_BLOCK)]
    if (blocks.length === 0) throw new Error(`Trust store file ${full} holds no PEM certificate or public key`)
    blocks.forEach((m, i) => {
      const name = blocks.length === 1 ? file : `${file}#${i + 1}`
      keys.push({ name, key: parseBlock(m[1], m[0], `${full}${blocks.length === 1 ? '' : ` (block ${i + 1})`}`) })
    })
  }
  return { keys }
}

function parseBlock (label: string, pem: string, where: string): KeyObject {
  let key: KeyObject
  try {
    if (label === 'CERTIFICATE') key = new X509Certificate(pem).publicKey
    else if (label === 'PUBLIC KEY' || label === 'RSA PUBLIC KEY') key = createPublicKey(pem)
    else throw new Error(`unsupported PEM block "${label}" (expected CERTIFICATE or PUBLIC KEY)`)
  } catch (err) {
    throw new Error(`Trust store file ${where} cannot be parsed: ${(err as Error).message}`)
  }
  // signature.v2 is RSA (spec 4.5); another key type could never verify and is a configuration mistake.
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'rsa-pss') {
    throw new Error(`Trust store file ${where} holds a ${key.asymmetricKeyType ?? 'unknown'} key; only RSA keys can verify patches`)
  }
  return key
}
