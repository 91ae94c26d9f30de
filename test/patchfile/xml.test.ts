/** The strict XML parser: what it accepts, what it refuses (DTDs, entities), and the legacy pretty-printer. */
import { describe, expect, it } from 'vitest'
import { XmlError, el, parseXml, serializeXml } from '../../src/patchfile/xml.js'

describe('parseXml', () => {
  it('parses elements, attributes, text, comments, CDATA, predefined entities and character references', () => {
    const doc = `<?xml version="1.0" encoding="UTF-8"?>
<!-- leading comment -->
<root a="1" b='two &amp; &#x33;'>
  <t>&lt;&gt;&amp;&apos;&quot; &#65;&#x42;&#x1F600;</t>
  <c><![CDATA[<not> &markup;]]></c><!-- inner -->
  <e/>
  <m>x<!-- c -->y</m>
</root>
<!-- trailing -->
`

    const root = parseXml(doc)

    expect(root.name).toBe('root')
    expect(root.attrs).toEqual({ a: '1', b: 'two & 3' })
    const kids = root.children.filter(c => typeof c !== 'string')
    expect(kids.map(k => [k.name, k.children])).toEqual([
      ['t', ['<>&\'" AB😀']],
      ['c', ['<not> &markup;']],
      ['e', []],
      ['m', ['xy']]
    ])
    expect(kids[0].line).toBe(4)
  })

  it('normalizes line ends and attribute whitespace, and skips a byte order mark', () => {
    const root = parseXml(Buffer.from('\ufeff<r a="x\ty\nz">l1\r\nl2\rl3</r>'))

    expect(root.attrs.a).toBe('x y z')
    expect(root.children).toEqual(['l1\nl2\nl3'])
  })

  it.each([
    ['a DOCTYPE', '<?xml version="1.0"?>\n<!DOCTYPE patch [<!ENTITY x "y">]>\n<patch/>', 'DOCTYPE is not allowed (line 2)'],
    ['a lowercase doctype', '<!doctype patch><patch/>', 'DOCTYPE is not allowed (line 1)'],
    ['an ENTITY declaration', '<!ENTITY x "y"><patch/>', 'ENTITY declarations are not allowed (line 1)'],
    ['an external entity reference', '<patch>&xxe;</patch>', 'entity reference &xxe; is not allowed (line 1)'],
    ['an entity reference in an attribute', '<patch a="&lol;"/>', 'entity reference &lol; is not allowed (line 1)'],
    ['a parameter-style reference', '<patch>\n&%x;</patch>', 'entity reference &%x; is not allowed (line 2)'],
    ['an object key as entity name', '<patch>&constructor;</patch>', 'entity reference &constructor; is not allowed (line 1)'],
    ['a bare ampersand', '<patch>a & b</patch>', "unescaped '&' (line 1)"],
    ['a character reference to NUL', '<patch>&#0;</patch>', 'character reference &#0; is not a valid XML character (line 1)'],
    ['a bad character reference', '<patch>&#xZZ;</patch>', 'bad character reference &#xZZ; (line 1)'],
    ['a control character', '<patch>\u0001</patch>', 'invalid character U+0001 (line 1)'],
    ['a processing instruction', '<patch><?php evil() ?></patch>', 'processing instructions are not allowed (line 1)'],
    ['a late XML declaration', ' <?xml version="1.0"?><patch/>', 'processing instructions are not allowed (line 1)'],
    ['another encoding', '<?xml version="1.0" encoding="UTF-16"?><patch/>', 'unsupported encoding UTF-16 (line 1)'],
    ['mismatched tags', '<a><b></a></b>', 'end tag </a> does not match <b> (line 1)'],
    ['an unclosed element', '<a><b></b>', 'unclosed element <a> (line 1)'],
    ['two roots', '<a/><b/>', 'content after the root element (line 1)'],
    ['text outside the root', 'hello <a/>', 'no root element (line 1)'],
    ['no root', '<?xml version="1.0"?>', 'no root element (line 1)'],
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
    expect(() => parseXml(doc)).toThrow(new XmlError(message))
  })

  it('refuses a billion-laughs document before expanding anything', () => {
    const doc = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
]>
<lolz>&lol2;</lolz>`

    expect(() => parseXml(doc)).toThrow('DOCTYPE is not allowed (line 2)')
  })

  it('refuses documents over the size cap and invalid UTF-8', () => {
    const big = `<a>${'x'.repeat(1024 * 1024)}</a>`

    expect(() => parseXml(big)).toThrow(`document too large (${1024 * 1024 + 7} bytes, limit 1048576)`)
    expect(() => parseXml('<a>1234</a>', { maxBytes: 10 })).toThrow('document too large (11 bytes, limit 10)')
    expect(() => parseXml(Buffer.from([0x3c, 0x61, 0x3e, 0xff, 0x3c, 0x2f, 0x61, 0x3e]))).toThrow('document is not valid UTF-8')
  })

  it('parses a 1 MiB document with many elements quickly', () => {
    const doc = '<r>\n' + '<p>x</p>\n'.repeat(100_000) + '</r>'
    const start = performance.now()

    const root = parseXml(doc)

    expect(root.children.filter(c => typeof c !== 'string')).toHaveLength(100_000)
    expect(performance.now() - start).toBeLessThan(2000)
  })
})

describe('serializeXml', () => {
  it('pretty-prints with two-space indent, the legacy declaration and empty elements', () => {
    const doc = el('patch', [el('id', ['A & <B>']), el('warnings'), el('personality', { type: 'a"b' }, [el('package', ['p'])])])

    expect(serializeXml(doc)).toBe(`<?xml version="1.0" ?>
<patch>
  <id>A &amp; &lt;B&gt;</id>
  <warnings/>
  <personality type="a&quot;b">
    <package>p</package>
  </personality>
</patch>
`)
    expect(parseXml(serializeXml(doc)).children.filter(c => typeof c !== 'string')[0].children).toEqual(['A & <B>'])
  })

  it('refuses mixed content', () => {
    expect(() => serializeXml(el('a', ['t', el('b')]))).toThrow('serializeXml: mixed content in <a>')
  })
})
