/** `multios-patch installs list|show`: install requests and their outcomes (/api/v1/installs). */
import { renderFields, renderTable, type Column } from './output.js'
import { PAGE_OPTIONS, pageQuery, printAnswer, printList, seg, type Resource } from './run.js'
import { UsageError } from './http.js'

type Row = Record<string, unknown>

const COLUMNS: Array<Column<Row>> = [
  ['ID', (i) => i.id],
  ['HOST', (i) => i.hostname],
  ['STATUS', (i) => i.status],
  ['FORCE', (i) => i.force],
  ['REQUESTED', (i) => i.requestedAt],
  ['FINISHED', (i) => i.finishedAt],
  ['REASON', (i) => i.reason]
]

/** `installs show` for people: the fields, then the package changes and the output tail. */
function renderInstall (rec: Row): string {
  let out = renderFields(rec, Object.keys(rec).filter((k) => k !== 'changed' && k !== 'outputTail'))
  const changed = (rec.changed as Row[] | undefined) ?? []
  if (changed.length > 0) out += `\nChanged (${changed.length}):\n${renderTable(changed, [['NAME', (c) => c.name], ['ARCH', (c) => c.arch], ['FROM', (c) => c.from], ['TO', (c) => c.to]])}`
  if (typeof rec.outputTail === 'string' && rec.outputTail !== '') out += `\nOutput (tail):\n${rec.outputTail.endsWith('\n') ? rec.outputTail : rec.outputTail + '\n'}`
  return out
}

export const installs: Resource = {
  name: 'installs',
  commands: {
    list: {
      synopsis: '[--host H] [--status S] [--limit N] [--cursor C]',
      args: [0, 0],
      options: { host: { type: 'string' }, status: { type: 'string' }, ...PAGE_OPTIONS },
      async run (ctx, v) {
        const answer = await ctx.client.call('GET', '/installs', { query: pageQuery(v, { hostname: v.host as string | undefined, status: v.status as string | undefined }) })
        return printList<Row>(ctx, answer, (items) => renderTable(items, COLUMNS))
      }
    },
    show: {
      synopsis: 'ID',
      args: [1, 1],
      async run (ctx, _v, [id]) {
        if (!/^\d+$/.test(id)) throw new UsageError(`an install id is a number, not ${JSON.stringify(id)}`)
        const answer = await ctx.client.call('GET', `/installs/${seg(id)}`)
        return printAnswer(ctx, answer, ctx.json ? undefined : renderInstall(answer.json as Row))
      }
    }
  }
}
