/** The XML layer of metadata.xml (saxes plus our refusals): what it accepts, what it refuses (DTDs, entities), and the legacy pretty-printer. */
import { describe, expect, it } from 'vitest'
import { PatchReadError } from '../../src/patchfile/errors.js'
import { parseMetadataXml } from '../../src/patchfile/metadata.js'
import { writeMetadataXml } from '../../src/patchfile/metadata-write.js'
import type { PatchMetadata } from '../../src/patchfile/types.js'

const X = 'Failed during patch extraction: metadata.xml: '

function refusal (doc: string | Buffer, opts: { maxBytes?: number } = {}): unknown {
  try {
    parseMetadataXml(doc, opts)
  } catch (err) {
    return err
  }
  return undefined
}

describe('parseMetadataXml: XML syntax', () => {
  it('reads elements, attributes, text, comments, CDATA, predefined entities and character references', () => {
    const doc = `<?xml version="1.0" encoding="UTF-8"?>
<!-- leading comment -->
<patch>
  <id>P1</id>
  <summary>&lt;&gt;&amp;&apos;&quot; &#65;&#x42;&#x1F600;</summary>
  <description><![CDATA[<not> &markup;]]></description><!-- inner -->
  <warnings/>
  <install_instructions>x<!-- c -->y</install_instructions>
  <personality type="work&#x65;r"><package>a&#x62;c</package></personality>
  <personality type='controller'/>
</patch>
<!-- trailing -->
`

    const m = parseMetadataXml(doc)

    expect(m).toMatchObject({
      id: 'P1',
      summary: '<>&\'" AB😀',
      description: '<not> &markup;',
      warnings: '',
      installInstructions: 'xy',
      personalities: { worker: ['abc'], controller: [] }
    })
    expect(refusal(doc.replace('<warnings/>', '<warnings/>\n<summary/>'))).toMatchObject({ message: `${X}duplicate <summary> element (line 8)` })
  })

  it('normalizes line ends and attribute whitespace, and skips a byte order mark', () => {
    const m = parseMetadataXml(Buffer.from('\ufeff<patch><id>P</id><summary>l1\r\nl2\rl3</summary></patch>'))
    const err = refusal(Buffer.from('<patch><id>P</id><personality type="x\ty\nz"/></patch>'))

    expect(m.summary).toBe('l1\nl2\nl3')
    expect(err).toMatchObject({ message: 'Invalid personality type "x y z"' })
  })

  it.each([
    ['a DOCTYPE', '<?xml version="1.0"?>\n<!DOCTYPE patch [<!ENTITY x "y">]>\n<patch/>', 'DOCTYPE is not allowed (line 2)'],
    ['a lowercase doctype', '<!doctype patch><patch/>', 'DOCTYPE is not allowed (line 1)'],
    ['an unterminated DOCTYPE', '<!DOCTYPE patch [\n<!ENTITY x "y">', 'DOCTYPE is not allowed (line 1)'],
    ['an ENTITY declaration', '<!ENTITY x "y"><patch/>', 'ENTITY declarations are not allowed (line 1)'],
    ['an external entity reference', '<patch>&xxe;</patch>', 'entity reference &xxe; is not allowed (line 1)'],
    ['an entity reference in an attribute', '<patch a="&lol;"/>', 'entity reference &lol; is not allowed (line 1)'],
    ['a parameter-style reference', '<patch>\n&%x;</patch>', 'entity reference &%x; is not allowed (line 2)'],
    ['an object key as entity name', '<patch>&constructor;</patch>', 'entity reference &constructor; is not allowed (line 1)'],
    ['a bare ampersand', '<patch>a & b</patch>', "unescaped '&' (line 1)"],
    ['a bare ampersand before a later reference', '<patch>\na & b &amp; c</patch>', "unescaped '&' (line 2)"],
    ['a bare ampersand before a later semicolon', '<patch><id>a & b</id>\n<summary>;</summary></patch>', "unescaped '&' (line 1)"],
    ['a bare ampersand in an attribute', '<patch>\n<personality type="a & b"/></patch>', "unescaped '&' (line 2)"],
    ['a reference without semicolon', '<patch>x &amp y</patch>', "unescaped '&' (line 1)"],
    ['a character reference to NUL', '<patch>&#0;</patch>', 'character reference &#0; is not a valid XML character (line 1)'],
    ['an XML 1.1 control character reference', '<?xml version="1.1"?><patch>&#1;</patch>', 'character reference &#1; is not a valid XML character (line 1)'],
    ['a bad character reference', '<patch>&#xZZ;</patch>', 'bad character reference &#xZZ; (line 1)'],
    ['a control character', '<patch>\u0001</patch>', 'invalid character U+0001 (line 1)'],
    ['a non-character', '<patch>\n\uffff</patch>', 'invalid character U+ffff (line 2)'],
    ['a lone surrogate', '<patch>\ud800a</patch>', 'invalid character U+d800'],
    ['a processing instruction', '<patch><?php evil() ?></patch>', 'processing instructions are not allowed (line 1)'],
    ['a processing instruction before the root', '\n<?php evil() ?><patch/>', 'processing instructions are not allowed (line 2)'],
    ['a late XML declaration', ' <?xml version="1.0"?><patch/>', 'processing instructions are not allowed (line 1)'],
    ['an unterminated XML declaration', '<?xml version="1.0"', 'unterminated XML declaration (line 1)'],
    ['another XML version', '<?xml version="1.2"?><patch/>', 'XML declaration needs version="1.0" (line 1)'],
    ['another encoding', '<?xml version="1.0" encoding="UTF-16"?><patch/>', 'unsupported encoding UTF-16 (line 1)'],
    ['mismatched tags', '<a><b></a></b>', 'end tag </a> does not match <b> (line 1)'],
    ['an unclosed element', '<a><b></b>', 'unclosed element <a> (line 1)'],
    ['an unterminated start tag', '<a>\n<b x="1"', 'unterminated start tag <b> (line 2)'],
    ['an unterminated comment', '<a><!-- a & b', 'unterminated comment (line 1)'],
    ['two roots', '<a/><b/>', 'content after the root element (line 1)'],
    ['text after the root', '<a/>x', 'content after the root element (line 1)'],
    ['text outside the root', 'hello <a/>', 'no root element (line 1)'],
    ['no root', '<?xml version="1.0"?>', 'no root element (line 1)'],
    ['an empty document', '', 'no root element (line 1)'],
    ['a duplicate attribute', '<a x="1" x="2"/>', 'duplicate attribute x (line 1)'],
    ['an unquoted attribute', '<a x=1/>', 'expected a quoted value (line 1)'],
    ['< in an attribute', '<a x="<"/>', "'<' in an attribute value (line 1)"],
    ['attributes without space', '<a x="1"y="2"/>', 'malformed start tag <a> (line 1)'],
    [']]> in text', '<a>]]></a>', "']]>' in text (line 1)"],
    ['-- in a comment', '<a><!-- a -- b --></a>', "'--' inside a comment (line 1)"],
    ['an unterminated CDATA section', '<a><![CDATA[x</a>', 'unterminated CDATA section (line 1)'],
    ['a conditional section', '<a><![IGNORE[x]]></a>', 'unexpected markup declaration (line 1)'],
    ['deep nesting', '<a>'.repeat(100) + '</a>'.repeat(100), 'elements nested deeper than 64 (line 1)']
  ])('refuses %s', (_what, doc, message) => {
    const err = refusal(doc)

    expect(err).toBeInstanceOf(PatchReadError)
    expect(err).toMatchObject({ kind: 'validation', message: X + message })
  })

  it('accepts 64 levels of nesting and an empty element on the 65th', () => {
    const inner = '<x><y/></x>'
    const doc = `<patch><id>P</id>${'<a>'.repeat(62)}${inner}${'</a>'.repeat(62)}</patch>`

    expect(parseMetadataXml(doc).id).toBe('P')
    expect(refusal(doc.replace('<y/>', '<y></y>'))).toMatchObject({ message: `${X}elements nested deeper than 64 (line 1)` })
  })

  it('refuses a billion-laughs document before expanding anything', () => {
    const doc = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
]>
<lolz>&lol2;</lolz>`

    expect(refusal(doc)).toMatchObject({ message: `${X}DOCTYPE is not allowed (line 2)` })
  })

  it('refuses documents over the size cap and invalid UTF-8', () => {
    const big = `<a>${'x'.repeat(1024 * 1024)}</a>`

    expect(refusal(big)).toMatchObject({ message: `${X}document too large (${1024 * 1024 + 7} bytes, limit 1048576)` })
    expect(refusal('<a>1234</a>', { maxBytes: 10 })).toMatchObject({ message: `${X}document too large (11 bytes, limit 10)` })
    expect(refusal(Buffer.from([0x3c, 0x61, 0x3e, 0xff, 0x3c, 0x2f, 0x61, 0x3e]))).toMatchObject({ message: `${X}document is not valid UTF-8` })
  })

  it('parses a 1 MiB document with many elements quickly', () => {
    const doc = '<patch><id>P</id>\n' + '<p>x</p>\n'.repeat(100_000) + '<summary>end</summary></patch>'
    const start = performance.now()

    const m = parseMetadataXml(doc)

    expect(m.summary).toBe('end')
    expect(performance.now() - start).toBeLessThan(2000)
  })
})

describe('writeMetadataXml: XML format', () => {
  const m: PatchMetadata = {
    id: 'P',
    swVersion: '1',
    summary: 'A & <B> "q" \'a\'',
    warnings: '',
    rebootRequired: 'Y',
    requires: [],
    personalities: { 'a"b': ['p'] },
    contents: { rpm: [], deb: [] },
    semantics: []
  }

  it('pretty-prints with two-space indent, the legacy declaration and empty elements', () => {
    const xml = writeMetadataXml(m)

    expect(xml).toBe(`<?xml version="1.0" ?>
<patch>
  <id>P</id>
  <sw_version>1</sw_version>
  <summary>A &amp; &lt;B&gt; "q" 'a'</summary>
  <warnings/>
  <reboot_required>Y</reboot_required>
  <personality type="a&quot;b">
    <package>p</package>
  </personality>
  <contents/>
  <requires/>
  <semantics/>
</patch>
`)
    expect(refusal(xml)).toMatchObject({ message: 'Invalid personality type "a\\"b"' })
    expect(parseMetadataXml(writeMetadataXml({ ...m, personalities: {} })).summary).toBe('A & <B> "q" \'a\'')
  })
})
