/** `multios-patch hosts list|show|install|drop`: the hosts of /api/v1/hosts; `install --wait` follows the event stream until the host settles. */
import { UnreachableError, UsageError } from './http.js'
import { isAbort, readEvents } from './events.js'
import { cell, printRaw, progress, renderFields, renderTable, type Column } from './output.js'
import { EXIT, PAGE_OPTIONS, pageQuery, printAnswer, printList, seg, type Ctx, type Resource } from './run.js'

type Row = Record<string, unknown>

const HOST_COLUMNS: Array<Column<Row>> = [
  ['HOSTNAME', (h) => h.hostname],
  ['IP', (h) => h.ip],
  ['OS', (h) => { const os = h.os as { id?: string, versionId?: string } | undefined; return os === undefined ? null : `${os.id ?? ''} ${os.versionId ?? ''}`.trim() }],
  ['DRIVER', (h) => h.driver],
  ['RELEASE', (h) => h.swVersion],
  ['STATE', (h) => h.state],
  ['CURRENT', (h) => h.patchCurrent],
  ['REBOOT', (h) => h.requiresReboot],
  ['LAST REPORT', (h) => h.lastReportAt]
]

const PACKAGE_COLUMNS: Array<Column<Row>> = [
  ['NAME', (p) => p.name],
  ['VERSION', (p) => `${p.epoch === null || p.epoch === undefined ? '' : `${String(p.epoch)}:`}${String(p.version)}${p.release === null || p.release === undefined ? '' : `-${String(p.release)}`}`],
  ['ARCH', (p) => p.arch]
]

/** `hosts show` for people: the host's fields, its plan, held packages and reboot reasons, then its packages. */
function renderDetail (d: { host: Row, packages?: Row[], plan?: Row }): string {
  const host = d.host
  let out = renderFields(host, Object.keys(host).filter((k) => !['installed', 'held', 'rebootReasons', 'toRemove', 'missingPkgs'].includes(k)))
  const plan = d.plan ?? {}
  const installs = (plan.install as Row[] | undefined) ?? []
  const removes = (plan.remove as string[] | undefined) ?? []
  out += `\nPlan: ${plan.current === true ? 'current, nothing to do' : `${installs.length} to install, ${removes.length} to remove`}\n`
  if (installs.length > 0) out += renderTable(installs, [['INSTALL', (p) => p.name], ['VERSION', (p) => p.version], ['ARCH', (p) => p.arch], ['FILE', (p) => p.fileName]])
  if (removes.length > 0) out += `Remove: ${removes.join(', ')}\n`
  if (plan.deploy !== undefined) out += `Deploy: ${cell(plan.deploy)}\n`
  if (plan.swupdVersion !== undefined) out += `OS build: ${cell(plan.swupdVersion)}\n`
  const held = (host.held as Row[] | undefined) ?? (plan.held as Row[] | undefined) ?? []
  if (held.length > 0) out += `\nHeld:\n${renderTable(held, [['NAME', (p) => p.name], ['ARCH', (p) => p.arch], ['INSTALLED', (p) => p.installed], ['REASON', (p) => p.reason]])}`
  const reasons = (host.rebootReasons as string[] | undefined) ?? []
  if (reasons.length > 0) out += `\nReboot needed: ${reasons.join('; ')}\n`
  const packages = d.packages ?? []
  out += `\nPackages (${packages.length}):\n${renderTable(packages, PACKAGE_COLUMNS)}`
  return out
}

/** The install id of a 202: the body's id, else the Location's last segment. */
function installIdOf (answer: { json: unknown, headers: Record<string, string | string[] | undefined> }): number {
  const id = (answer.json as Row | undefined)?.id
  if (typeof id === 'number') return id
  const loc = String(answer.headers.location ?? '')
  const m = /\/installs\/(\d+)$/.exec(loc)
  if (m === null) throw new Error(`the controller answered the install request without an install id (Location ${JSON.stringify(loc)})`)
  return Number(m[1])
}

const STAGES = ['requested', 'installing', 'installed, waiting for the host to report', 'current'] as const

/**
 * `hosts install HOST --wait`: the event stream is opened before the request, so no event of the
 * install can slip by; then install events of that id move the bar, and once it succeeded every
 * host.state event of the host (and one look right away) checks whether the host is current.
 */
async function installAndWait (ctx: Ctx, hostname: string, force: boolean, timeoutS: number): Promise<number> {
  const ac = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; ac.abort() }, timeoutS * 1000)
  const bar = progress(ctx.io, ctx.json, STAGES.length, 'steps', { stage: `${hostname}: ${STAGES[0]}` })
  let id: number | null = null
  let outcome: 'current' | 'failed' | null = null
  let why = ''
  try {
    const stream = await ctx.client.open('/events', { signal: ac.signal, query: { types: 'install,host.state,host.dropped' } })
    const answer = await ctx.client.call('POST', `/hosts/${seg(hostname)}/installs`, { json: force ? { force: true } : {} })
    id = installIdOf(answer)
    let installed = false
    const stage = (i: number): void => { bar.update(i + 1, { stage: `${hostname}: install ${String(id)} ${STAGES[i]}` }) }
    stage(0)

    const hostSettled = async (): Promise<boolean> => {
      const h = (await ctx.client.call('GET', `/hosts/${seg(hostname)}`)).json as { host: Row }
      if (h.host.state === 'install-failed') {
        outcome = 'failed'
        why = `${hostname} reports install-failed`
        return true
      }
      if (h.host.patchCurrent === true) {
        outcome = 'current'
        stage(3)
        return true
      }
      return false
    }

    // The install may have finished before the stream delivered anything: look once.
    const first = (await ctx.client.call('GET', `/installs/${id}`)).json as Row
    if (first.status === 'success') {
      installed = true
      stage(2)
    } else if (first.status === 'failed' || first.status === 'rejected') {
      outcome = 'failed'
    }
    if (outcome === null && !(installed && await hostSettled())) {
      for await (const { event } of readEvents(stream, ctx.client.url)) {
        const e = event.data
        if (event.type === 'install' && e.installId === id) {
          if (e.status === 'installing') stage(1)
          if (e.status === 'failed' || e.status === 'rejected') {
            outcome = 'failed'
            break
          }
          if (e.status === 'success') {
            installed = true
            stage(2)
            if (await hostSettled()) break
          }
        } else if (event.type === 'host.state' && e.hostname === hostname && installed) {
          if (await hostSettled()) break
        } else if (event.type === 'host.dropped' && e.hostname === hostname) {
          outcome = 'failed'
          why = `${hostname} was dropped (${cell(e.reason)})`
          break
        }
      }
    }
  } catch (err) {
    if (!isAbort(err)) throw err
  } finally {
    clearTimeout(timer)
    ac.abort()
    bar.stop()
  }
  if (id === null) throw new Error('the install request was not sent')
  const final = await ctx.client.call('GET', `/installs/${id}`)
  const rec = final.json as Row
  if (outcome === null) {
    if (ctx.json) printRaw(ctx.io, final.text)
    if (!timedOut) throw new UnreachableError(ctx.client.url, `the event stream ended before install ${id} finished (install ${cell(rec.status)})`)
    ctx.io.stderr.write(`multios-patch hosts: timed out after ${timeoutS} s waiting for install ${id} on ${hostname} (install ${cell(rec.status)})\n`)
    return EXIT.refused
  }
  if (ctx.json) printRaw(ctx.io, final.text)
  if (outcome === 'failed') {
    if (why === '') why = `install ${id} ${cell(rec.status)}: ${cell(rec.message)} (${cell(rec.reason)})`
    ctx.io.stderr.write(`multios-patch hosts: ${why}\n`)
    return EXIT.refused
  }
  if (!ctx.json) ctx.io.stdout.write(`Install ${id} on ${hostname}: ${cell(rec.status)}; ${hostname} is current.\n`)
  return EXIT.ok
}

const boolean = { type: 'boolean' } as const

export const hosts: Resource = {
  name: 'hosts',
  commands: {
    list: {
      synopsis: '[--state S] [--current true|false] [--driver D] [--os OS] [--release R] [--limit N] [--cursor C]',
      args: [0, 0],
      options: { state: { type: 'string' }, current: { type: 'string' }, driver: { type: 'string' }, os: { type: 'string' }, release: { type: 'string' }, ...PAGE_OPTIONS },
      async run (ctx, v) {
        if (v.current !== undefined && v.current !== 'true' && v.current !== 'false') throw new UsageError(`--current must be true or false, not ${JSON.stringify(v.current)}`)
        const filters = { state: v.state, current: v.current, driver: v.driver, os: v.os, release: v.release } as Record<string, string | undefined>
        const answer = await ctx.client.call('GET', '/hosts', { query: pageQuery(v, filters) })
        return printList<Row>(ctx, answer, (items) => renderTable(items, HOST_COLUMNS))
      }
    },
    show: {
      synopsis: 'HOST',
      args: [1, 1],
      async run (ctx, _v, [hostname]) {
        const answer = await ctx.client.call('GET', `/hosts/${seg(hostname)}`)
        return printAnswer(ctx, answer, ctx.json ? undefined : renderDetail(answer.json as { host: Row }))
      }
    },
    install: {
      synopsis: 'HOST [--force] [--wait [--timeout SECONDS]]',
      args: [1, 1],
      options: { force: boolean, wait: boolean, timeout: { type: 'string' } },
      async run (ctx, v, [hostname]) {
        if (v.timeout !== undefined && v.wait !== true) throw new UsageError('--timeout goes with --wait')
        const timeout = v.timeout === undefined ? 3600 : Number(v.timeout)
        if (!Number.isInteger(timeout) || timeout < 1) throw new UsageError(`--timeout must be a whole number of seconds, not ${JSON.stringify(v.timeout)}`)
        if (v.wait === true) return await installAndWait(ctx, hostname, v.force === true, timeout)
        const answer = await ctx.client.call('POST', `/hosts/${seg(hostname)}/installs`, { json: v.force === true ? { force: true } : {} })
        return printAnswer(ctx, answer, `Install ${installIdOf(answer)} requested for ${hostname}; follow it with multios-patch installs show ${installIdOf(answer)}.\n`)
      }
    },
    drop: {
      synopsis: 'HOST',
      args: [1, 1],
      async run (ctx, _v, [hostname]) {
        const answer = await ctx.client.call('DELETE', `/hosts/${seg(hostname)}`)
        return printAnswer(ctx, answer, `Dropped host ${hostname}.\n`)
      }
    }
  }
}
