/** `multios-patch patches list|show|upload|delete|apply|remove|commit|deps`: the patches of /api/v1/patches. */
import { PAGE_OPTIONS, pageQuery, printAnswer, printList, seg, type Ctx, type Resource, type Values } from './run.js'
import { cell, renderFields, renderTable, type Column } from './output.js'
import { uploadFiles } from './upload.js'

type Row = Record<string, unknown>

const COLUMNS: Array<Column<Row>> = [
  ['ID', (p) => p.id],
  ['STATE', (p) => p.patchstate],
  ['REPO', (p) => p.repostate],
  ['RELEASE', (p) => p.release],
  ['REBOOT', (p) => p.rebootRequired],
  ['SUMMARY', (p) => p.summary]
]

/** The JSON body of apply/remove/commit: dryRun and the legacy flags that were given, as booleans. */
function flags (v: Values, names: Record<string, string>): Record<string, boolean> {
  const body: Record<string, boolean> = {}
  for (const [opt, field] of Object.entries(names)) if (v[opt] === true) body[field] = true
  return body
}

/** What an apply/remove/commit did, for people: its info lines (a dry run's say what would happen), its warnings on stderr. */
function renderAction (ctx: Ctx, out: Row): string {
  for (const w of (out.warnings as string[] | undefined) ?? []) ctx.io.stderr.write(`warning: ${w}\n`)
  const info = (out.info as string[] | undefined) ?? []
  const changed = (out.changed as string[] | undefined) ?? []
  const lines = info.length > 0 ? info : [changed.length > 0 ? `changed: ${changed.join(', ')}` : 'nothing to change']
  return lines.map((l) => `${l}\n`).join('')
}

function lifecycle (action: 'apply' | 'remove' | 'commit', names: Record<string, string>): (ctx: Ctx, v: Values, args: string[]) => Promise<number> {
  return async (ctx, v, [id]) => {
    const answer = await ctx.client.call('POST', `/patches/${seg(id)}/${action}`, { json: flags(v, names) })
    return printAnswer(ctx, answer, ctx.json ? undefined : renderAction(ctx, answer.json as Row))
  }
}

/** `patches show` for people: the fields, then what the patch delivers. */
function renderPatch (p: Row): string {
  let out = renderFields(p, Object.keys(p).filter((k) => k !== 'contents'))
  const contents = (p.contents ?? {}) as Row
  const parts = Object.entries(contents).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0))
  if (parts.length > 0) out += `\nContents:\n${parts.map(([k, v]) => `  ${k}: ${cell(v)}\n`).join('')}`
  return out
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
        const answer = await ctx.client.call('GET', `/patches/${seg(id)}`)
        return printAnswer(ctx, answer, ctx.json ? undefined : renderPatch(answer.json as Row))
      }
    },
    upload: {
      synopsis: 'FILE...',
      args: [1, Infinity],
      async run (ctx, _v, files) {
        const answer = await uploadFiles(ctx, '/patches', files)
        const items = ((answer.json as { items?: Row[] } | undefined)?.items) ?? []
        return printAnswer(ctx, answer, `Uploaded ${items.length} patch${items.length === 1 ? '' : 'es'}:\n${renderTable(items, COLUMNS)}`)
      }
    },
    delete: {
      synopsis: 'ID',
      args: [1, 1],
      async run (ctx, _v, [id]) {
        const answer = await ctx.client.call('DELETE', `/patches/${seg(id)}`)
        return printAnswer(ctx, answer, `Deleted patch ${id}.\n`)
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
        const d = answer.json as { patches?: string[] }
        return printAnswer(ctx, answer, (d.patches ?? []).map((p) => `${p}\n`).join(''))
      }
    }
  }
}
