/**
 * `multios-patch token list|create|revoke` against a controller (/api/v1/tokens, admin only): used
 * when --url or MPATCH_URL names one; without, `token` edits the local tokens file (src/cli/token.ts),
 * which is how the first admin token is made.
 */
import { UsageError } from './http.js'
import { renderTable } from './output.js'
import { PAGE_OPTIONS, pageQuery, printAnswer, printList, seg, type Resource } from './run.js'

type Row = Record<string, unknown>

const ROLES = ['admin', 'reader', 'agent']

export const tokens: Resource = {
  name: 'token',
  commands: {
    list: {
      synopsis: '[--limit N] [--cursor C]',
      args: [0, 0],
      options: { ...PAGE_OPTIONS },
      async run (ctx, v) {
        const answer = await ctx.client.call('GET', '/tokens', { query: pageQuery(v) })
        return printList<Row>(ctx, answer, (items) => renderTable(items, [['NAME', (r) => r.name], ['ROLE', (r) => r.role], ['HOST', (r) => r.hostname], ['CREATED', (r) => r.createdAt]]))
      }
    },
    create: {
      synopsis: '--name NAME --role admin|reader|agent [--host HOSTNAME] [--replace]   (prints the new token once)',
      args: [0, 0],
      options: { name: { type: 'string' }, role: { type: 'string' }, host: { type: 'string' }, replace: { type: 'boolean' } },
      async run (ctx, v) {
        if (typeof v.name !== 'string') throw new UsageError('--name is required')
        if (typeof v.role !== 'string') throw new UsageError('--role is required')
        if (!ROLES.includes(v.role)) throw new UsageError(`--role must be admin, reader or agent, not ${JSON.stringify(v.role)}`)
        const body: Row = { name: v.name, role: v.role }
        if (typeof v.host === 'string') body.hostname = v.host
        if (v.replace === true) body.replace = true
        const answer = await ctx.client.call('POST', '/tokens', { json: body })
        const out = answer.json as Row
        if (!ctx.json) {
          const forHost = typeof out.hostname === 'string' ? ` for host ${out.hostname}` : ''
          ctx.io.stderr.write(`Created ${String(out.role ?? v.role)} token ${String(out.name ?? v.name)}${forHost} on ${ctx.client.url}; it is shown only this once.\n`)
        }
        return printAnswer(ctx, answer, `${String(out.token)}\n`)
      }
    },
    revoke: {
      synopsis: '--name NAME',
      args: [0, 0],
      options: { name: { type: 'string' } },
      async run (ctx, v) {
        if (typeof v.name !== 'string') throw new UsageError('--name is required')
        const answer = await ctx.client.call('DELETE', `/tokens/${seg(v.name)}`)
        return printAnswer(ctx, answer, `Revoked token ${v.name}.\n`)
      }
    }
  }
}
