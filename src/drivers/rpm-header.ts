/** Reads an .rpm file's identity from its lead, signature header and main header; the payload is never read. */
import type { PackageFileInfo } from './package-info.js'
import type { PackageReader } from './package-reader.js'

export const RPM_LEAD_MAGIC = Buffer.from([0xed, 0xab, 0xee, 0xdb])
const RPM_HEADER_MAGIC = Buffer.from([0x8e, 0xad, 0xe8, 0x01])

// rpm: 96-byte lead, signature header (padded to 8 bytes), main header, then the payload.
// Header = magic(4) reserved(4) nindex(4 BE) hsize(4 BE), nindex 16-byte entries, hsize data bytes.

const RPM_LEAD_SIZE = 96
// rpm itself refuses headers with 0xffff0000 bits set in the tag count or 0xff000000 in the data size.
const MAX_INDEX_ENTRIES = 0xffff
const MAX_HEADER_DATA = 0xffffff

const TAG = {
  NAME: 1000,
  VERSION: 1001,
  RELEASE: 1002,
  EPOCH: 1003,
  SUMMARY: 1004,
  ARCH: 1022,
  SOURCERPM: 1044,
  PROVIDENAME: 1047,
  REQUIREFLAGS: 1048,
  REQUIRENAME: 1049,
  REQUIREVERSION: 1050,
  PROVIDEFLAGS: 1112,
  PROVIDEVERSION: 1113
} as const

// Signature-header tags (their own number space): size of main header + compressed payload, 32 and 64 bit.
const SIG = { SIZE: 1000, LONGSIZE: 270 } as const

const TYPE = { INT32: 4, INT64: 5, STRING: 6, STRING_ARRAY: 8, I18NSTRING: 9 } as const
// Sizes of the fixed-width types CHAR, INT8, INT16, INT32, INT64 (types 1-5); others are variable.
const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8 }
const SENSE_LESS = 1 << 1
const SENSE_GREATER = 1 << 2
const SENSE_EQUAL = 1 << 3
const SENSE_RPMLIB = 1 << 24

interface RpmHeader {
  entries: Map<number, { type: number, offset: number, count: number }>
  data: Buffer
  /** Offset just after this header in the file. */
  end: number
}

async function readRpmHeader (file: PackageReader, position: number, what: string): Promise<RpmHeader> {
  const intro = await file.readExactly(position, 16, what)
  if (!intro.subarray(0, 4).equals(RPM_HEADER_MAGIC)) file.fail(`bad ${what} magic at offset ${position}`)
  const nindex = intro.readUInt32BE(8)
  const hsize = intro.readUInt32BE(12)
  if (nindex === 0 || nindex > MAX_INDEX_ENTRIES) file.fail(`${what} has an impossible entry count ${nindex}`)
  if (hsize > MAX_HEADER_DATA) file.fail(`${what} has an impossible data size ${hsize}`)
  const body = await file.readExactly(position + 16, nindex * 16 + hsize, what)
  const data = body.subarray(nindex * 16)
  const entries: RpmHeader['entries'] = new Map()
  for (let k = 0; k < nindex; k++) {
    const tag = body.readUInt32BE(k * 16)
    const type = body.readUInt32BE(k * 16 + 4)
    const offset = body.readUInt32BE(k * 16 + 8)
    const count = body.readUInt32BE(k * 16 + 12)
    if (type > 9) file.fail(`${what} entry for tag ${tag} has unknown type ${type}`)
    if (offset > hsize || count === 0 || count > hsize + 1) file.fail(`${what} entry for tag ${tag} points outside the header`)
    const width = TYPE_SIZE[type]
    if (width !== undefined && offset + width * count > hsize) file.fail(`${what} entry for tag ${tag} overruns the header`)
    entries.set(tag, { type, offset, count })
  }
  return { entries, data, end: position + 16 + body.length }
}

/** Reads `count` NUL-terminated strings starting at `offset`; all must end inside the header data. */
function rpmStrings (file: PackageReader, header: RpmHeader, tag: number): string[] {
  const entry = header.entries.get(tag)
  if (entry === undefined) return []
  if (entry.type !== TYPE.STRING && entry.type !== TYPE.STRING_ARRAY && entry.type !== TYPE.I18NSTRING) {
    file.fail(`header tag ${tag} has type ${entry.type}, expected a string`)
  }
  if (entry.type === TYPE.STRING && entry.count !== 1) file.fail(`header tag ${tag} is a string with count ${entry.count}`)
  const out: string[] = []
  let at = entry.offset
  for (let k = 0; k < entry.count; k++) {
    const nul = header.data.indexOf(0, at)
    if (nul === -1) file.fail(`header tag ${tag} has an unterminated string`)
    out.push(header.data.toString('utf8', at, nul))
    at = nul + 1
  }
  return out
}

function rpmInts (file: PackageReader, header: RpmHeader, tag: number): number[] {
  const entry = header.entries.get(tag)
  if (entry === undefined) return []
  if (entry.type !== TYPE.INT32) file.fail(`header tag ${tag} has type ${entry.type}, expected INT32`)
  return Array.from({ length: entry.count }, (_, k) => header.data.readUInt32BE(entry.offset + 4 * k))
}

function rpmSize (file: PackageReader, signature: RpmHeader): number | null {
  const long = signature.entries.get(SIG.LONGSIZE)
  if (long !== undefined) {
    if (long.type !== TYPE.INT64) file.fail(`signature tag ${SIG.LONGSIZE} has type ${long.type}, expected INT64`)
    return Number(signature.data.readBigUInt64BE(long.offset))
  }
  return rpmInts(file, signature, SIG.SIZE)[0] ?? null
}

function rpmString (file: PackageReader, header: RpmHeader, tag: number, what: string): string {
  const value = rpmStrings(file, header, tag)[0]
  if (value === undefined || value === '') file.fail(`header has no ${what}`)
  return value
}

/** Joins parallel name/flags/version arrays into 'name [op version]' strings. */
function rpmDeps (file: PackageReader, header: RpmHeader, names: number, flags: number, versions: number, skipRpmlib: boolean): string[] {
  const n = rpmStrings(file, header, names)
  const f = rpmInts(file, header, flags)
  const v = rpmStrings(file, header, versions)
  if ((f.length !== 0 && f.length !== n.length) || (v.length !== 0 && v.length !== n.length)) {
    file.fail(`header dependency arrays for tag ${names} differ in length`)
  }
  const out: string[] = []
  n.forEach((name, k) => {
    const sense = f[k] ?? 0
    if (skipRpmlib && (sense & SENSE_RPMLIB) !== 0) return
    const op = ((sense & SENSE_LESS) !== 0 ? '<' : '') + ((sense & SENSE_GREATER) !== 0 ? '>' : '') +
      ((sense & SENSE_EQUAL) !== 0 ? '=' : '')
    const version = v[k] ?? ''
    out.push(op !== '' && version !== '' ? `${name} ${op} ${version}` : name)
  })
  return out
}

/** Reads the lead and both headers; checks the declared payload size against the file size. */
export async function readRpm (file: PackageReader): Promise<PackageFileInfo> {
  const lead = await file.readExactly(0, RPM_LEAD_SIZE, 'rpm lead')
  if (!lead.subarray(0, 4).equals(RPM_LEAD_MAGIC)) file.fail('not an rpm (bad lead magic)')
  if (lead[4] < 3 || lead[4] > 4) file.fail(`unsupported rpm lead version ${lead[4]}.${lead[5]}`)
  // signature_type 5 = "header-style signature follows"; rpm refuses anything else.
  if (lead.readUInt16BE(78) !== 5) file.fail(`unsupported rpm signature type ${lead.readUInt16BE(78)}`)
  const leadSaysSource = lead.readUInt16BE(6) === 1

  const signature = await readRpmHeader(file, RPM_LEAD_SIZE, 'signature header')
  // The main header starts at the next 8-byte boundary after the signature header.
  const mainStart = Math.ceil(signature.end / 8) * 8
  const main = await readRpmHeader(file, mainStart, 'main header')
  // The signature records the size of main header + payload: a short file is caught without reading the payload.
  const declared = rpmSize(file, signature)
  if (declared !== null && mainStart + declared > file.size) {
    file.fail(`truncated rpm payload (header and payload need ${declared} bytes after offset ${mainStart}, file has ${file.size})`)
  }

  const epochs = rpmInts(file, main, TAG.EPOCH)
  return {
    family: 'rpm',
    name: rpmString(file, main, TAG.NAME, 'NAME'),
    epoch: epochs.length > 0 ? epochs[0] : null,
    version: rpmString(file, main, TAG.VERSION, 'VERSION'),
    release: rpmString(file, main, TAG.RELEASE, 'RELEASE'),
    arch: rpmString(file, main, TAG.ARCH, 'ARCH'),
    requires: rpmDeps(file, main, TAG.REQUIRENAME, TAG.REQUIREFLAGS, TAG.REQUIREVERSION, true),
    provides: rpmDeps(file, main, TAG.PROVIDENAME, TAG.PROVIDEFLAGS, TAG.PROVIDEVERSION, false),
    summary: rpmStrings(file, main, TAG.SUMMARY)[0] ?? '',
    // rpm's headerIsSource(): a binary package always records the source rpm it came from.
    source: leadSaysSource || !main.entries.has(TAG.SOURCERPM)
  }
}
