/** `multios-patch releases list|create|delete` and `multios-patch feed list|add`: releases and their base-package feeds. */
import { bytes, renderTable, type Column } from './output.js'
import { PAGE_OPTIONS, pageQuery, printAnswer, printList, seg, type Resource } from './run.js'
import { uploadFiles } from './upload.js'

type Row = Record<string, unknown>

/** Every scalar field the rows have, release first: the release object is small and its fields are all worth a column. */
function releaseColumns (items: Row[]): Array<Column<Row>> {
  const keys = [...new Set(items.flatMap((r) => Object.keys(r)))].filter((k) => items.every((r) => r[k] === null || typeof r[k] !== 'object' || Array.isArray(r[k])))
  keys.sort((a, b) => Number(b === 'release') - Number(a === 'release'))
  return (keys.length === 0 ? ['release'] : keys).map((k) => [k.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase(), (r: Row) => r[k]])
}

const FEED_COLUMNS: Array<Column<Row>> = [
  ['NAME', (p) => p.name],
  ['VERSION', (p) => `${p.epoch === null || p.epoch === undefined ? '' : `${String(p.epoch)}:`}${String(p.version)}${p.release === null || p.release === undefined ? '' : `-${String(p.release)}`}`],
  ['ARCH', (p) => p.arch],
  ['FAMILY', (p) => p.family],
  ['SIZE', (p) => typeof p.size === 'number' ? bytes(p.size) : p.size],
  ['FILE', (p) => p.fileName]
]

export const releases: Resource = {
  name: 'releases',
  commands: {
    list: {
      synopsis: '[--limit N] [--cursor C]',
      args: [0, 0],
      options: { ...PAGE_OPTIONS },
      async run (ctx, v) {
        const answer = await ctx.client.call('GET', '/releases', { query: pageQuery(v) })
        return printList<Row>(ctx, answer, (items) => renderTable(items, releaseColumns(items)))
      }
    },
    create: {
      synopsis: 'RELEASE',
      args: [1, 1],
      async run (ctx, _v, [release]) {
        const answer = await ctx.client.call('POST', '/releases', { json: { release } })
        return printAnswer(ctx, answer, `Created release ${release}.\n`)
      }
    },
    delete: {
      synopsis: 'RELEASE   (with its patches and its feed)',
      args: [1, 1],
      async run (ctx, _v, [release]) {
        const answer = await ctx.client.call('DELETE', `/releases/${seg(release)}`)
        return printAnswer(ctx, answer, `Deleted release ${release}.\n`)
      }
    }
  }
}

export const feed: Resource = {
  name: 'feed',
  commands: {
    list: {
      synopsis: 'RELEASE',
      args: [1, 1],
      async run (ctx, _v, [release]) {
        const answer = await ctx.client.call('GET', `/releases/${seg(release)}/feed`)
        return printList<Row>(ctx, answer, (items) => renderTable(items, FEED_COLUMNS))
      }
    },
    add: {
      synopsis: 'RELEASE FILE...   (rpm or deb files; a progress bar on a terminal)',
      args: [2, Infinity],
      async run (ctx, _v, [release, ...files]) {
        const answer = await uploadFiles(ctx, `/releases/${seg(release)}/feed`, files)
        const out = answer.json as { added?: Row[], present?: Row[] }
        const added = out.added ?? []
        const present = out.present ?? []
        let human = `Added ${added.length} package${added.length === 1 ? '' : 's'} to the ${release} feed${present.length > 0 ? `; ${present.length} already there` : ''}.\n`
        if (added.length > 0) human += renderTable(added, FEED_COLUMNS)
        return printAnswer(ctx, answer, human)
      }
    }
  }
}
