/** `multios-patch audit [--limit N]`: the audit trail of mutating calls, newest first (/api/v1/audit). */
import { renderTable, type Column } from './output.js'
import { PAGE_OPTIONS, pageQuery, printList, type Resource } from './run.js'

type Row = Record<string, unknown>

const COLUMNS: Array<Column<Row>> = [
  ['ID', (a) => a.id],
  ['AT', (a) => a.at],
  ['ACTOR', (a) => a.actor],
  ['ACTION', (a) => a.action],
  ['TARGET', (a) => a.target],
  ['RESULT', (a) => a.result],
  ['DETAIL', (a) => a.detail]
]

export const audit: Resource = {
  name: 'audit',
  commands: {
    '': {
      synopsis: '[--limit N] [--cursor C]',
      args: [0, 0],
      options: { ...PAGE_OPTIONS },
      async run (ctx, v) {
        const answer = await ctx.client.call('GET', '/audit', { query: pageQuery(v) })
        return printList<Row>(ctx, answer, (items) => renderTable(items, COLUMNS))
      }
    }
  }
}
