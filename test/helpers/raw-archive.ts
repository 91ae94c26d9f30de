/** A low-level tar writer for hostile test input: any name, type, declared size or broken field, written independently of src/. */
import { constants, createHash, sign, type KeyObject } from 'node:crypto'
import { gzipSync } from 'node:zlib'

export interface RawEntry {
  name: string
  /** Type flag character; default '0' (regular file). */
  type?: string
  data?: Buffer | string
  /** Declared size; default the data length. A different value makes a lying header. */
  size?: number
  linkName?: string
  /** ustar prefix field. */
  prefix?: string
  mode?: number
  /** Header format; default 'ustar'. */
  magic?: 'ustar' | 'gnu' | 'v7'
  /** Write a wrong header checksum. */
  badChecksum?: boolean
  /** Skip the zero padding after the data (to build truncated archives). */
  noPadding?: boolean
}

function octal (value: number, len: number): string {
  return value.toString(8).padStart(len - 1, '0') + '\0'
}

/** One 512-byte header block. */
export function rawHeader (e: RawEntry, size: number): Buffer {
  const b = Buffer.alloc(512)
  b.write(e.name, 0, 100, 'utf8')
  b.write(octal(e.mode ?? 0o644, 8), 100, 'latin1')
  b.write(octal(0, 8), 108, 'latin1')
  b.write(octal(0, 8), 116, 'latin1')
  b.write(octal(size, 12), 124, 'latin1')
  b.write(octal(1700000000, 12), 136, 'latin1')
  b.write(e.type ?? '0', 156, 'latin1')
  b.write(e.linkName ?? '', 157, 100, 'utf8')
  const magic = e.magic ?? 'ustar'
  if (magic === 'ustar') b.write('ustar\x0000', 257, 'latin1')
  if (magic === 'gnu') b.write('ustar  \0', 257, 'latin1')
  if (e.prefix !== undefined) b.write(e.prefix, 345, 155, 'utf8')
  b.fill(' ', 148, 156)
  let sum = 0
  for (const byte of b) sum += byte
  if (e.badChecksum === true) sum += 1
  b.write(octal(sum, 7) + ' ', 148, 'latin1')
  return b
}

/** An archive of the given entries, with the end-of-archive marker unless `end` is false. */
export function rawTar (entries: RawEntry[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = []
  for (const e of entries) {
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : e.data ?? Buffer.alloc(0)
    parts.push(rawHeader(e, e.size ?? data.length), data)
    const pad = (512 - (data.length % 512)) % 512
    if (e.noPadding !== true) parts.push(Buffer.alloc(pad))
  }
  if (opts.end !== false) parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}

/** A pax extended header entry carrying the given records. */
export function paxEntry (records: Record<string, string>, type = 'x'): RawEntry {
  let body = ''
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`
    let len = Buffer.byteLength(rest) + 1
    while (String(len).length + Buffer.byteLength(rest) !== len) len++
    body += `${len}${rest}`
  }
  return { name: 'PaxHeader', type, data: body }
}

/** A GNU long-name ('L') entry for the next member. */
export function gnuLongName (name: string): RawEntry {
  return { name: '././@LongLink', type: 'L', data: Buffer.concat([Buffer.from(name), Buffer.alloc(1)]), magic: 'gnu' }
}

/** The legacy MD5 `signature` text, computed here independently of src/. */
export function md5SignatureOf (members: Buffer[]): string {
  let v = (1n << 128n) - 1n
  for (const m of members) v ^= BigInt('0x' + createHash('md5').update(m).digest('hex'))
  return v.toString(16)
}

export interface RawPatch {
  metadataTar?: Buffer
  softwareTar?: Buffer
  semanticsTar?: Buffer
  /** Extra outer entries, written after the canonical members. */
  extra?: RawEntry[]
  /** Signature text; default the right one; null leaves it out. */
  signature?: string | null
  /** Key to sign signature.v2 with (PSS salt 32 unless `pkcs1`); none → no signature.v2. */
  key?: KeyObject
  pkcs1?: boolean
  /** Outer entries put first, before the canonical members. */
  before?: RawEntry[]
}

/** A gzipped patch from raw parts; signatures are computed over whatever canonical tars are given. */
export function rawPatch (p: RawPatch): Buffer {
  const canonical: Array<[string, Buffer]> = []
  if (p.metadataTar !== undefined) canonical.push(['metadata.tar', p.metadataTar])
  if (p.softwareTar !== undefined) canonical.push(['software.tar', p.softwareTar])
  if (p.semanticsTar !== undefined) canonical.push(['semantics.tar', p.semanticsTar])
  const entries: RawEntry[] = [...(p.before ?? []), ...canonical.map(([name, data]) => ({ name, data })), ...(p.extra ?? [])]
  const sig = p.signature === undefined ? md5SignatureOf(canonical.map(c => c[1])) : p.signature
  if (sig !== null) entries.push({ name: 'signature', data: sig })
  if (p.key !== undefined) {
    const data = Buffer.concat(canonical.map(c => c[1]))
    const v2 = p.pkcs1 === true
      ? sign('sha256', data, p.key)
      : sign('sha256', data, { key: p.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
    entries.push({ name: 'signature.v2', data: v2 })
  }
  return gzipSync(rawTar(entries), { level: 1 })
}

/** metadata.xml text for a patch id with the given rpm/deb file names (hand-written, independent of src/). */
export function metadataXmlFor (id: string, files: string[], extra = ''): string {
  const rpms = files.filter(f => f.endsWith('.rpm')).map(f => `    <rpm>${f}</rpm>\n`).join('')
  const debs = files.filter(f => f.endsWith('.deb')).map(f => `    <deb>${f}</deb>\n`).join('')
  return `<?xml version="1.0" ?>\n<patch>\n  <id>${id}</id>\n  <sw_version>22.12</sw_version>\n${extra}  <contents>\n${rpms}${debs}  </contents>\n  <requires/>\n  <semantics/>\n</patch>\n`
}
