/** A self-signed certificate for 127.0.0.1 made with the real openssl CLI, for HTTPS test servers and the agent's --ca. */
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'

export interface TestCert {
  certFile: string
  keyFile: string
  cert: string
  key: string
}

/** Writes `<dir>/<name>.crt` and `<dir>/<name>.key` (P-256, one day, SAN IP:127.0.0.1 and localhost). */
export async function makeSelfSignedCert (dir: string, name = 'controller'): Promise<TestCert> {
  const certFile = path.join(dir, `${name}.crt`)
  const keyFile = path.join(dir, `${name}.key`)
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', `/CN=${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'])
  return { certFile, keyFile, cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') }
}
