/** `multios-patch patches list|show|upload|delete|apply|remove|commit|deps`: the patches of /api/v1/patches. */
import { PAGE_OPTIONS, pageQuery, printAnswer, printList, seg, type Ctx, type Resource, type Values } from './run.js'
import { renderTable, type Column } from './output.js'
import { uploadFiles } from './upload.js'

type Row = Record<string, unknown>

/** The first of `keys` the object has: the table reads a field under its native name or an older one. */
export const pick = (o: Row, ...keys: string[]): unknown => o[keys.find((k) => o[k] !== undefined) ?? keys[0]]

const COLUMNS: Array<Column<Row>> = [
  ['ID', (p) => p.id],
  ['STATE', (p) => pick(p, 'state', 'patchState', 'patchstate')],
  ['REPO', (p) => pick(p, 'repoState', 'repostate')],
  ['RELEASE', (p) => pick(p, 'release', 'swVersion', 'sw_version')],
  ['REBOOT', (p) => pick(p, 'rebootRequired', 'reboot_required')],
  ['SUMMARY', (p) => p.summary]
]

/** The JSON body of apply/remove/commit: dryRun and the legacy flags that were given, as booleans. */
function flags (v: Values, names: Record<string, string>): Record<string, boolean> {
  const body: Record<string, boolean> = {}
  for (const [opt, field] of Object.entries(names)) if (v[opt] === true) body[field] = true
  return body
}

function lifecycle (action: 'apply' | 'remove' | 'commit', names: Record<string, string>): (ctx: Ctx, v: Values, args: string[]) => Promise<number> {
  return async (ctx, v, [id]) => {
    const answer = await ctx.client.call('POST', `/patches/${seg(id)}/${action}`, { json: flags(v, names) })
    return printAnswer(ctx, answer)
  }
}

const boolean = { type: 'boolean' } as const

export const patches: Resource = {
  name: 'patches',
  commands: {
    list: {
      synopsis: '[--state S] [--release R] [--limit N] [--cursor C]',
      args: [0, 0],
      options: { state: { type: 'string' }, release: { type: 'string' }, ...PAGE_OPTIONS },
      async run (ctx, v) {
        const answer = await ctx.client.call('GET', '/patches', { query: pageQuery(v, { state: v.state as string | undefined, release: v.release as string | undefined }) })
        return printList<Row>(ctx, answer, (items) => renderTable(items, COLUMNS))
      }
    },
    show: {
      synopsis: 'ID',
      args: [1, 1],
      async run (ctx, _v, [id]) {
        return printAnswer(ctx, await ctx.client.call('GET', `/patches/${seg(id)}`))
      }
    },
    upload: {
      synopsis: 'FILE...',
      args: [1, Infinity],
      async run (ctx, _v, files) {
        return printAnswer(ctx, await uploadFiles(ctx, '/patches', files))
      }
    },
    delete: {
      synopsis: 'ID',
      args: [1, 1],
      async run (ctx, _v, [id]) {
        const answer = await ctx.client.call('DELETE', `/patches/${seg(id)}`)
        return printAnswer(ctx, answer, answer.text === '' ? `Deleted patch ${id}.\n` : undefined)
      }
    },
    apply: {
      synopsis: 'ID [--dry-run] [--skip-semantic]',
      args: [1, 1],
      options: { 'dry-run': boolean, 'skip-semantic': boolean },
      run: lifecycle('apply', { 'dry-run': 'dryRun', 'skip-semantic': 'skipSemantic' })
    },
    remove: {
      synopsis: 'ID [--dry-run] [--remove-unremovable] [--skip-app-check] [--skip-semantic]',
      args: [1, 1],
      options: { 'dry-run': boolean, 'remove-unremovable': boolean, 'skip-app-check': boolean, 'skip-semantic': boolean },
      run: lifecycle('remove', { 'dry-run': 'dryRun', 'remove-unremovable': 'removeUnremovable', 'skip-app-check': 'skipAppCheck', 'skip-semantic': 'skipSemantic' })
    },
    commit: {
      synopsis: 'ID [--dry-run]',
      args: [1, 1],
      options: { 'dry-run': boolean },
      run: lifecycle('commit', { 'dry-run': 'dryRun' })
    },
    deps: {
      synopsis: 'ID [--recursive]',
      args: [1, 1],
      options: { recursive: boolean },
      async run (ctx, v, [id]) {
        const answer = await ctx.client.call('GET', `/patches/${seg(id)}/dependencies`, { query: { recursive: v.recursive === true ? 'true' : undefined } })
        return printAnswer(ctx, answer)
      }
    }
  }
}
