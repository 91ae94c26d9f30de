/** metadata.xml: legacy defaults, D10 content, refusals, the legacy writer format and the spec 2.4 patch object. */
import { describe, expect, it } from 'vitest'
import { PatchReadError } from '../../src/patchfile/errors.js'
import {
  PATCH_ID_PATTERN, isValidDebFileName, isValidPatchId, isValidRpmFileName, parseDebFileName, parseRpmFileName, splitMemberName
} from '../../src/patchfile/ids.js'
import { parseMetadataXml } from '../../src/patchfile/metadata.js'
import { toLegacyContents, toLegacyPatchObject } from '../../src/patchfile/metadata-legacy.js'
import { writeMetadataXml } from '../../src/patchfile/metadata-write.js'
import type { PatchMetadata } from '../../src/patchfile/types.js'

const C1 = 'a'.repeat(64)
const C2 = 'b'.repeat(64)
const C3 = 'c'.repeat(64)
const C4 = 'd'.repeat(64)

function validation (message: string): PatchReadError {
  return new PatchReadError('validation', message)
}

describe('parseMetadataXml', () => {
  it('applies the legacy defaults to a minimal document', () => {
    const m = parseMetadataXml('<patch><id>P1</id></patch>')

    expect(m).toEqual({
      id: 'P1', swVersion: 'unknown', rebootRequired: 'Y', requires: [], personalities: {}, contents: { rpm: [], deb: [] }, semantics: []
    })
    expect(Object.keys(m)).not.toContain('summary')
  })

  it('reads every field of a CentOS-style document, empty elements as ""', () => {
    const xml = `<?xml version="1.0" ?>
<patch>
  <id>TS_15.12_PATCH_0001</id>
  <sw_version>15.12</sw_version>
  <summary>Fix &amp; more</summary>
  <description/>
  <install_instructions>Reboot</install_instructions>
  <warnings></warnings>
  <status>REL</status>
  <unremovable>N</unremovable>
  <reboot_required>N</reboot_required>
  <apply_active_release_only>Y</apply_active_release_only>
  <personality type="controller">
    <package>new-pkg</package>
    <package>other_pkg</package>
  </personality>
  <personality type="worker"/>
  <contents>
    <rpm>foo-1.2-3.el7.x86_64.rpm</rpm>
    <rpm>1:bar-lib-2.0-1.noarch.rpm</rpm>
  </contents>
  <requires>
    <req_patch_id>TS_15.12_PATCH_0000</req_patch_id>
  </requires>
  <semantics>
    <action>pre-apply</action>
  </semantics>
  <unknown_future_element>ignored</unknown_future_element>
</patch>`

    expect(parseMetadataXml(xml)).toEqual({
      id: 'TS_15.12_PATCH_0001',
      swVersion: '15.12',
      summary: 'Fix & more',
      description: '',
      installInstructions: 'Reboot',
      warnings: '',
      status: 'REL',
      unremovable: 'N',
      rebootRequired: 'N',
      applyActiveReleaseOnly: 'Y',
      personalities: { controller: ['new-pkg', 'other_pkg'], worker: [] },
      contents: { rpm: ['foo-1.2-3.el7.x86_64.rpm', '1:bar-lib-2.0-1.noarch.rpm'], deb: [] },
      requires: ['TS_15.12_PATCH_0000'],
      semantics: ['pre-apply']
    })
  })

  it.each([['N', 'N'], ['Y', 'Y'], ['n', 'Y'], [' N', 'Y'], ['', 'Y'], ['No', 'Y']])('reads reboot_required %j as %s', (text, expected) => {
    expect(parseMetadataXml(`<patch><id>P</id><reboot_required>${text}</reboot_required></patch>`).rebootRequired).toBe(expected)
  })

  it('reads D10 content: rpm and deb side by side, a Debian OSTree block, a swupd block and a restart script', () => {
    const xml = `<patch><id>MIX</id><sw_version>22.12</sw_version><restart_script>MIX_restart</restart_script>
<contents>
  <deb>hello-lab_1.1-1_all.deb</deb><rpm>hello-lab-1.1-1.noarch.rpm</rpm>
  <ostree><number_of_commits>2</number_of_commits>
    <base><commit>${C1}</commit><checksum>${C2}</checksum></base>
    <commit2><commit>${C4}</commit><checksum>${C1}</checksum></commit2>
    <commit1><commit>${C3}</commit><checksum>${C4}</checksum></commit1>
  </ostree>
  <swupd><version>38000</version><bundle>os-core</bundle><bundle>editors</bundle></swupd>
</contents><requires/><semantics/></patch>`

    const m = parseMetadataXml(xml)

    expect(m.restartScript).toBe('MIX_restart')
    expect(m.contents).toEqual({
      rpm: ['hello-lab-1.1-1.noarch.rpm'],
      deb: ['hello-lab_1.1-1_all.deb'],
      ostree: { numberOfCommits: '2', base: { commit: C1, checksum: C2 }, commits: [{ commit: C3, checksum: C4 }, { commit: C4, checksum: C1 }] },
      swupd: { version: '38000', bundles: ['os-core', 'editors'] }
    })
  })

  it.each([
    ['no id', '<patch><sw_version>1</sw_version></patch>', validation('Patch metadata contains no id tag')],
    ['a bad id', '<patch><id>../evil</id></patch>', validation(`Invalid patch id "../evil": it must match ${PATCH_ID_PATTERN.source}`)],
    ['an empty id', '<patch><id/></patch>', validation(`Invalid patch id "": it must match ${PATCH_ID_PATTERN.source}`)],
    ['an id with spaces around it', '<patch><id> P1 </id></patch>', validation(`Invalid patch id " P1 ": it must match ${PATCH_ID_PATTERN.source}`)],
    ['a bad required id', '<patch><id>P</id><requires><req_patch_id>--all</req_patch_id></requires></patch>', validation('Invalid required patch id "--all" in <requires>')],
    ['a bad rpm name', '<patch><id>P</id><contents><rpm>../x.rpm</rpm></contents></patch>', validation('Invalid RPM file name "../x.rpm" in <contents>')],
    ['a bad deb name', '<patch><id>P</id><contents><deb>-x_1_all.deb</deb></contents></patch>', validation('Invalid deb file name "-x_1_all.deb" in <contents>')],
    ['a bad release', '<patch><id>P</id><sw_version>../1</sw_version></patch>', validation('Invalid software release "../1" in <sw_version>')],
    ['a bad personality package', '<patch><id>P</id><personality type="worker"><package>-rf</package></personality></patch>', validation('Invalid package name "-rf" in <personality type="worker">')],
    ['a bad restart script', '<patch><id>P</id><restart_script>../x</restart_script></patch>', validation('Invalid restart script name "../x" in <restart_script>')],
    ['a bad OSTree commit', `<patch><id>P</id><contents><ostree><number_of_commits>0</number_of_commits><base><commit>HEAD</commit><checksum>${C1}</checksum></base></ostree></contents></patch>`, validation('Invalid OSTree checksum "HEAD" in <base>')],
    ['a bad swupd version', '<patch><id>P</id><contents><swupd><version>latest</version></swupd></contents></patch>', validation('Invalid swupd version "latest"')],
    ['a DOCTYPE', '<?xml version="1.0"?>\n<!DOCTYPE patch SYSTEM "http://x/">\n<patch><id>P</id></patch>', validation('Failed during patch extraction: metadata.xml: DOCTYPE is not allowed (line 2)')],
    ['an entity', '<patch><id>&xxe;</id></patch>', validation('Failed during patch extraction: metadata.xml: entity reference &xxe; is not allowed (line 1)')],
    ['another root', '<root><id>P</id></root>', validation('Failed during patch extraction: metadata.xml: root element is <root>, expected <patch>')],
    ['two ids', '<patch><id>A</id>\n<id>B</id></patch>', validation('Failed during patch extraction: metadata.xml: duplicate <id> element (line 2)')],
    ['markup in a text field', '<patch><id>A<b/></id></patch>', validation('Failed during patch extraction: metadata.xml: <id> must contain only text (line 1)')],
    ['unknown content', '<patch><id>P</id><contents><srpm>x</srpm></contents></patch>', validation('Failed during patch extraction: metadata.xml: unsupported content <srpm> in <contents> (line 1)')],
    ['a file listed twice', '<patch><id>P</id><contents><rpm>a-1-1.x86_64.rpm</rpm><rpm>a-1-1.x86_64.rpm</rpm></contents></patch>', validation('Failed during patch extraction: metadata.xml: a-1-1.x86_64.rpm is listed twice in <contents>')],
    ['an unknown semantic action', '<patch><id>P</id><semantics><action>post-apply</action></semantics></patch>', validation('Failed during patch extraction: metadata.xml: unknown semantic action "post-apply"')],
    ['a stray element in requires', '<patch><id>P</id><requires><id>X</id></requires></patch>', validation('Failed during patch extraction: metadata.xml: unexpected <id> in <requires> (line 1)')],
    ['a commit count mismatch', `<patch><id>P</id><contents><ostree><number_of_commits>2</number_of_commits><base><commit>${C1}</commit><checksum>${C1}</checksum></base><commit1><commit>${C1}</commit><checksum>${C1}</checksum></commit1></ostree></contents></patch>`, validation('Failed during patch extraction: metadata.xml: <number_of_commits> is 2 but <ostree> lists 1 commits')],
    ['a personality without type', '<patch><id>P</id><personality><package>x</package></personality></patch>', validation('Failed during patch extraction: metadata.xml: <personality> without a type attribute (line 1)')],
    ['an oversize document', `<patch><id>P</id><summary>${'x'.repeat(2000)}</summary></patch>`, validation('Failed during patch extraction: metadata.xml: document too large (2044 bytes, limit 1000)')]
  ])('refuses %s', (_what, xml, err) => {
    let thrown: unknown
    try { parseMetadataXml(xml, { maxBytes: 1000 }) } catch (e) { thrown = e }

    expect(thrown).toBeInstanceOf(PatchReadError)
    expect(thrown).toMatchObject({ kind: err.kind, message: err.message })
  })
})

describe('writeMetadataXml', () => {
  const full: PatchMetadata = {
    id: 'DEMO_PATCH_0002',
    swVersion: '22.12',
    summary: 'Demo <fix>',
    description: 'Fixes X',
    installInstructions: '',
    warnings: '',
    status: 'REL',
    unremovable: 'N',
    rebootRequired: 'N',
    applyActiveReleaseOnly: '',
    restartScript: 'DEMO_PATCH_0002_restart',
    requires: ['DEMO_PATCH_0001'],
    personalities: { controller: ['a'] },
    contents: { rpm: ['a-1-1.noarch.rpm'], deb: ['a_1-1_all.deb'], swupd: { version: '10', bundles: [] } },
    semantics: ['pre-remove']
  }

  it('writes the legacy element order, two-space indent and empty elements', () => {
    expect(writeMetadataXml(full)).toBe(`<?xml version="1.0" ?>
<patch>
  <id>DEMO_PATCH_0002</id>
  <sw_version>22.12</sw_version>
  <summary>Demo &lt;fix&gt;</summary>
  <description>Fixes X</description>
  <install_instructions/>
  <warnings/>
  <status>REL</status>
  <unremovable>N</unremovable>
  <reboot_required>N</reboot_required>
  <apply_active_release_only/>
  <personality type="controller">
    <package>a</package>
  </personality>
  <restart_script>DEMO_PATCH_0002_restart</restart_script>
  <contents>
    <rpm>a-1-1.noarch.rpm</rpm>
    <deb>a_1-1_all.deb</deb>
    <swupd>
      <version>10</version>
    </swupd>
  </contents>
  <requires>
    <req_patch_id>DEMO_PATCH_0001</req_patch_id>
  </requires>
  <semantics>
    <action>pre-remove</action>
  </semantics>
</patch>
`)
  })

  it('round-trips through the parser, OSTree content included', () => {
    const m: PatchMetadata = {
      ...full,
      contents: { rpm: [], deb: [], ostree: { numberOfCommits: '1', base: { commit: C1, checksum: C2 }, commits: [{ commit: C3, checksum: C4 }] } }
    }

    expect(parseMetadataXml(writeMetadataXml(m))).toEqual(m)
  })

  it('gives the spec 2.4 patch object and the show contents', () => {
    expect(toLegacyPatchObject(full)).toEqual({
      sw_version: '22.12',
      status: 'REL',
      unremovable: 'N',
      summary: 'Demo <fix>',
      description: 'Fixes X',
      install_instructions: '',
      warnings: '',
      apply_active_release_only: '',
      restart_script: 'DEMO_PATCH_0002_restart',
      reboot_required: 'N',
      'personality-controller': ['a'],
      requires: ['DEMO_PATCH_0001']
    })
    expect(toLegacyPatchObject(parseMetadataXml('<patch><id>P</id></patch>'))).toEqual({ sw_version: 'unknown', reboot_required: 'Y', requires: [] })
    expect(toLegacyContents(full.contents)).toEqual(['a-1-1.noarch.rpm', 'a_1-1_all.deb'])
    expect(toLegacyContents({ rpm: [], deb: [], swupd: { version: '10', bundles: ['b'] } })).toEqual({ swupd: { version: '10', bundles: ['b'] } })
    expect(toLegacyContents({ rpm: [], deb: [], ostree: { numberOfCommits: '1', base: { commit: C1, checksum: C2 }, commits: [{ commit: C3, checksum: C4 }] } })).toEqual({
      number_of_commits: '1', base: { commit: C1, checksum: C2 }, commit1: { commit: C3, checksum: C4 }
    })
  })
})

describe('ids and names', () => {
  it.each([
    ['P1', true], ['TS_15.12_PATCH_0001', true], ['a'.repeat(100), true], ['a'.repeat(101), false],
    ['', false], ['-x', false], ['.x', false], ['_x', false], ['a/b', false], ['a b', false], ['--all', false], ['ä', false], ['a\n', false]
  ])('isValidPatchId(%j) is %s', (id, ok) => {
    expect(isValidPatchId(id)).toBe(ok)
  })

  it('splits rpm and deb file names and refuses unsafe ones', () => {
    expect(parseRpmFileName('1:bar-lib-2.0-1.el8.x86_64.rpm')).toEqual({ epoch: '1', name: 'bar-lib', version: '2.0', release: '1.el8', arch: 'x86_64' })
    expect(parseRpmFileName('foo-1.2-3.noarch.rpm')).toEqual({ name: 'foo', version: '1.2', release: '3', arch: 'noarch' })
    expect(parseDebFileName('libfoo1_2.0~rc1-1+b1_amd64.deb')).toEqual({ name: 'libfoo1', version: '2.0~rc1-1+b1', arch: 'amd64' })
    expect(parseDebFileName('foo_1%3a2.0-1_all.deb')).toEqual({ name: 'foo', version: '1%3a2.0-1', arch: 'all' })
    for (const bad of ['foo.rpm', 'foo-1.noarch.rpm', '-foo-1-1.noarch.rpm', '.foo-1-1.noarch.rpm', 'a/b-1-1.noarch.rpm', 'foo-1-1.noarch.rpm ', 'foo-1-1.rpm']) {
      expect(isValidRpmFileName(bad), bad).toBe(false)
    }
    for (const bad of ['foo_1_all', 'Foo_1_all.deb', '-foo_1_all.deb', '.foo_1_all.deb', 'foo_1_all_x.deb', 'a/b_1_all.deb', 'foo_v1_all.deb', 'f_1_all.deb']) {
      expect(isValidDebFileName(bad), bad).toBe(false)
    }
  })

  it.each([
    ['a/b', false, { parts: ['a', 'b'] }],
    ['./a', false, { parts: ['a'] }],
    ['./', true, { parts: [] }],
    ['dir/', true, { parts: ['dir'] }],
    ['.lock', false, { parts: ['.lock'] }],
    ['', false, { error: 'empty member name' }],
    ['/etc/passwd', false, { error: 'absolute member name "/etc/passwd"' }],
    ['a/../../b', false, { error: 'member name "a/../../b" has a ".." component' }],
    ['..', true, { error: 'member name ".." has a ".." component' }],
    ['a//b', false, { error: 'member name "a//b" has an empty or "." component' }],
    ['file/', false, { error: 'member name "file/" has an empty or "." component' }],
    ['-rf', false, { error: 'member name "-rf" has an unsafe component "-rf"' }],
    ['a b', false, { error: 'member name "a b" has an unsafe component "a b"' }],
    ['a\\b', false, { error: 'member name "a\\\\b" has an unsafe component "a\\\\b"' }]
  ])('splitMemberName(%j)', (name, isDir, expected) => {
    expect(splitMemberName(name, isDir)).toEqual(expected)
  })
})
