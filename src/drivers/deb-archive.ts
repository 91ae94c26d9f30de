/** Reads a .deb file's identity: the ar archive, then the control file inside control.tar[.gz|.xz|.zst] (see deb-decompress.ts). */
import { extract as tarExtract } from 'tar-stream'
import { decompressControl } from './deb-decompress.js'
import { PackageFileError, type PackageFileInfo } from './package-info.js'
import type { PackageReader } from './package-reader.js'
import { DebVersionError, parseDebVersion } from './vercmp-deb.js'

// deb: ar archive "!<arch>\n" of debian-binary ("2.0\n"), control.tar[.gz|.xz|.zst], data.tar[.*].
// Each ar member: 60-byte header (name 16, mtime 12, uid 6, gid 6, mode 8, size 10, "`\n"), data
// padded to an even length.

export const AR_MAGIC = Buffer.from('!<arch>\n', 'latin1')
const AR_HEADER_SIZE = 60
const MAX_AR_MEMBERS_BEFORE_CONTROL = 8
const MAX_CONTROL_ARCHIVE = 32 * 1024 * 1024
const MAX_CONTROL_FILE = 1024 * 1024
// The data members dpkg can unpack (bz2 and lzma only in old packages); the data itself is never read here.
const DATA_MEMBERS = new Set(['data.tar', 'data.tar.gz', 'data.tar.xz', 'data.tar.zst', 'data.tar.bz2', 'data.tar.lzma'])

/** One ar member: its name and where its data lies in the file. */
export interface ArMember { name: string, offset: number, size: number }

async function readArMember (file: PackageReader, position: number): Promise<ArMember> {
  const header = await file.readExactly(position, AR_HEADER_SIZE, 'ar member header')
  if (header[58] !== 0x60 || header[59] !== 0x0a) file.fail(`bad ar member header at offset ${position}`)
  // GNU ar ends names with '/', BSD-style tools pad with spaces; dpkg accepts both.
  const name = header.toString('latin1', 0, 16).trimEnd().replace(/\/$/, '')
  const sizeText = header.toString('latin1', 48, 58).trim()
  if (!/^[0-9]{1,10}$/.test(sizeText)) file.fail(`bad ar member size ${JSON.stringify(sizeText)} for ${JSON.stringify(name)}`)
  const size = Number(sizeText)
  const offset = position + AR_HEADER_SIZE
  if (offset + size > file.size) file.fail(`truncated ar member ${JSON.stringify(name)} (needs ${size} bytes at offset ${offset})`)
  return { name, offset, size }
}

/** Finds ./control in a tar image with tar-stream; headers are checksummed, so garbage is caught here. */
async function extractControl (file: PackageReader, what: string, tar: Buffer): Promise<string> {
  // Old V7 headers (no ustar magic) are accepted, as dpkg does: only the checksum is required.
  // tar-stream reads allowUnknownFormat although its bundled types leave it out.
  const extract = tarExtract({ allowUnknownFormat: true } as Parameters<typeof tarExtract>[0])
  const entries = extract[Symbol.asyncIterator]()
  extract.end(tar)
  // Where the next header starts: after the last entry's header and padded data.
  let next = 0
  try {
    for (;;) {
      const item = await entries.next()
      if (item.done === true) break
      const entry = item.value
      const { size, type } = entry.header
      const name = entry.header.name.replace(/^\.\//, '')
      if (entry.offset + 512 + size > tar.length) file.fail(`${what}: truncated tar entry ${JSON.stringify(name)}`)
      next = entry.offset + 512 + Math.ceil(size / 512) * 512
      if (name === 'control' && type === 'file') {
        if (size > MAX_CONTROL_FILE) file.fail(`${what}: control file is larger than ${MAX_CONTROL_FILE} bytes`)
        const chunks: Buffer[] = []
        for await (const chunk of entry) chunks.push(chunk as Buffer)
        return Buffer.concat(chunks).toString('utf8')
      }
      entry.resume()
    }
  } catch (err) {
    if (err instanceof PackageFileError) throw err
    // tar-stream's messages, mapped to the offset of the header it could not read.
    const message = (err as Error).message
    if (message.startsWith('Invalid tar header.')) file.fail(`${what}: bad tar header checksum at offset ${next}`, err)
    if (message === 'Invalid header') file.fail(`${what}: bad tar entry size at offset ${next}`, err)
    if (message === 'Header exceeds max size') file.fail(`${what}: oversized extended tar header at offset ${next}`, err)
    // Entries running past the end are caught above; this is a cut header or padding.
    if (message === 'Unexpected end of data') file.fail(`${what}: truncated tar archive after offset ${next}`, err)
    return file.fail(`${what}: unreadable tar archive: ${message}`, err)
  } finally {
    await entries.return?.()
  }
  return file.fail(`${what} has no control file`)
}

/** Parses the first paragraph of a control file into lower-cased field names → values (continuations joined with '\n'). */
function parseControl (file: PackageReader, text: string): Map<string, string> {
  const fields = new Map<string, string>()
  let current: string | null = null
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (fields.size > 0) break
      continue
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (current === null) file.fail('control file starts with a continuation line')
      fields.set(current, `${fields.get(current) ?? ''}\n${line.trim()}`)
      continue
    }
    const colon = line.indexOf(':')
    if (colon <= 0) file.fail(`control file has a malformed line ${JSON.stringify(line.slice(0, 80))}`)
    current = line.slice(0, colon).trim().toLowerCase()
    fields.set(current, line.slice(colon + 1).trim())
  }
  return fields
}

/** Splits a relationship field on commas into trimmed entries, whitespace runs folded to one space. */
function relations (value: string | undefined): string[] {
  if (value === undefined) return []
  return value.split(',').map((e) => e.replace(/\s+/g, ' ').trim()).filter((e) => e !== '')
}
/** Reads the ar members in dpkg's order and the control file's identity fields; the data archive's content is never read. */
export async function readDeb (file: PackageReader): Promise<PackageFileInfo> {
  const magic = await file.readExactly(0, AR_MAGIC.length, 'ar magic')
  if (!magic.equals(AR_MAGIC)) file.fail('not a deb (bad ar magic)')

  const first = await readArMember(file, AR_MAGIC.length)
  if (first.name !== 'debian-binary') file.fail(`not a deb (first ar member is ${JSON.stringify(first.name)}, expected "debian-binary")`)
  const formatVersion = (await file.readExactly(first.offset, Math.min(first.size, 16), 'debian-binary')).toString('latin1')
  if (!/^2\.[0-9]+\n/.test(formatVersion)) file.fail(`unsupported deb format version ${JSON.stringify(formatVersion.trim())}`)

  // dpkg puts control.tar* second; members named with a leading '_' may be added and are skipped.
  let position = first.offset + first.size + (first.size % 2)
  let control: ArMember | null = null
  for (let k = 0; k < MAX_AR_MEMBERS_BEFORE_CONTROL && control === null; k++) {
    if (position >= file.size) file.fail('truncated deb: no control archive')
    const member = await readArMember(file, position)
    if (member.name.startsWith('control.tar')) control = member
    else if (!member.name.startsWith('_')) file.fail(`unexpected ar member ${JSON.stringify(member.name)} before the control archive`)
    position = member.offset + member.size + (member.size % 2)
  }
  if (control === null) return file.fail('no control archive among the first ar members')
  if (control.size > MAX_CONTROL_ARCHIVE) file.fail(`${control.name} is larger than ${MAX_CONTROL_ARCHIVE} bytes`)

  // The data archive must follow and fit in the file; its header is read, its content is not.
  if (position >= file.size) file.fail('truncated deb: no data archive')
  const data = await readArMember(file, position)
  if (!DATA_MEMBERS.has(data.name)) {
    if (data.name.startsWith('data.tar')) file.fail(`unsupported data member ${JSON.stringify(data.name)}`)
    file.fail(`unexpected ar member ${JSON.stringify(data.name)} after the control archive`)
  }

  const raw = await file.readExactly(control.offset, control.size, control.name)
  const tar = await decompressControl(file, control, raw)
  const fields = parseControl(file, await extractControl(file, control.name, tar))

  const need = (field: string): string => {
    const value = fields.get(field)
    if (value === undefined || value === '') file.fail(`control file has no ${field[0].toUpperCase()}${field.slice(1)} field`)
    return value
  }
  const name = need('package')
  const versionText = need('version')
  const arch = need('architecture')
  let version
  try {
    version = parseDebVersion(versionText)
  } catch (err) {
    return file.fail(`control file has a bad Version: ${(err as DebVersionError).reason}`, err)
  }
  return {
    family: 'deb',
    name,
    // dpkg reads whatever precedes the first ':' as the epoch, so a colon means one was written.
    epoch: versionText.includes(':') ? version.epoch : null,
    version: version.upstream,
    release: version.revision,
    arch,
    requires: [...relations(fields.get('pre-depends')), ...relations(fields.get('depends'))],
    provides: relations(fields.get('provides')),
    summary: (fields.get('description') ?? '').split('\n')[0],
    source: false
  }
}
