/** Runs one client command (`multios-patch patches|hosts|... SUB ...`): global options, the controller's URL and token, exit codes from the answer. */
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { ApiError, createClient, UnreachableError, UsageError, type Client } from './http.js'
import { printRaw, renderFields, type Io } from './output.js'

export type OptionSpec = Record<string, { type: 'string' | 'boolean' }>
export type Values = Record<string, string | boolean | undefined>

export interface Ctx {
  client: Client
  io: Io
  json: boolean
}

export interface Command {
  /** Arguments and options as the usage text shows them, e.g. `ID [--dry-run]`. */
  synopsis: string
  /** Positional arguments: how many at least and at most. */
  args: [min: number, max: number]
  options?: OptionSpec
  run: (ctx: Ctx, values: Values, args: string[]) => Promise<number>
}

/** A resource's commands; `''` is the command of a resource that has no subcommands (audit, events). */
export interface Resource {
  name: string
  commands: Record<string, Command>
}

export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const

const GLOBAL: OptionSpec = {
  url: { type: 'string' },
  'token-file': { type: 'string' },
  ca: { type: 'string' },
  json: { type: 'boolean' }
}

const GLOBAL_USAGE = `Options of every command:
  --url URL          the controller (default MPATCH_URL, else the local listener http://127.0.0.1:<MPATCH_PORT>)
  --token-file FILE  a file holding the token to send as X-Auth-Token (default: MPATCH_TOKEN)
  --ca FILE          PEM CA certificate(s) to trust for an https:// controller
  --json             print the API's JSON answer as it came (events: one JSON object per line)
Exit codes: 0 success, 1 the API refused (its detail and code on stderr), 2 usage error, 3 cannot reach the controller.
`

export function usageOf (r: Resource): string {
  const lines = Object.entries(r.commands).map(([sub, c]) => `  multios-patch ${r.name}${sub === '' ? '' : ` ${sub}`}${c.synopsis === '' ? '' : ` ${c.synopsis}`}`)
  return `Usage:\n${lines.join('\n')}\n${GLOBAL_USAGE}`
}

/**
 * The local listener's URL: the same MPATCH_PORT the service would listen on, its default from the
 * configuration schema (imported only here: it brings the schema tooling, a third of a second).
 */
export async function defaultUrl (env: Record<string, string | undefined>): Promise<string> {
  const { ConfigSchema } = await import('../../config.js')
  const fallback = (ConfigSchema.properties.MPATCH_PORT as { default?: number }).default ?? 5487
  const raw = env.MPATCH_PORT ?? ''
  if (raw !== '' && !/^\d{1,5}$/.test(raw)) throw new UsageError(`MPATCH_PORT must be a port number, not ${JSON.stringify(raw)}`)
  return `http://127.0.0.1:${raw === '' ? fallback : Number(raw)}`
}

/** Whether the command line or the environment names a controller (the `token` command's switch to the API). */
export function namesController (argv: string[], env: Record<string, string | undefined>): boolean {
  return (env.MPATCH_URL ?? '') !== '' || argv.some((a) => a === '--url' || a.startsWith('--url='))
}

async function tokenOf (v: Values, env: Record<string, string | undefined>): Promise<string | null> {
  if (typeof v['token-file'] === 'string') {
    const file = v['token-file']
    const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => { throw new UsageError(`cannot read --token-file ${file}: ${err.code ?? err.message}`) })
    const token = text.trim()
    if (token === '') throw new UsageError(`--token-file ${file} is empty`)
    return token
  }
  return (env.MPATCH_TOKEN ?? '') === '' ? null : (env.MPATCH_TOKEN as string)
}

function parse (cmd: Command, argv: string[]): { values: Values, args: string[] } {
  const { values, positionals, tokens } = parseArgs({ args: argv, allowPositionals: true, strict: true, tokens: true, options: { ...GLOBAL, ...cmd.options } })
  const seen = new Set<string>()
  for (const t of tokens) {
    if (t.kind !== 'option') continue
    if (seen.has(t.name)) throw new UsageError(`--${t.name} is given twice`)
    seen.add(t.name)
    if (t.value === '') throw new UsageError(`--${t.name} needs a value`)
  }
  const [min, max] = cmd.args
  if (positionals.length < min) throw new UsageError(`missing argument (${cmd.synopsis})`)
  if (positionals.length > max) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[max])}`)
  return { values: values as Values, args: positionals }
}

/**
 * Runs `multios-patch <resource> ...` (argv after the resource) and returns the exit code; errors
 * are one line on stderr.
 */
export async function runClient (r: Resource, argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr }, env: Record<string, string | undefined> = process.env): Promise<number> {
  const prefix = `multios-patch ${r.name}`
  if (argv.includes('--help') || argv.includes('-h') || argv[0] === 'help') {
    io.stdout.write(usageOf(r))
    return EXIT.ok
  }
  let client: Client | null = null
  try {
    const single = Object.keys(r.commands).length === 1 && '' in r.commands
    const sub = single ? '' : argv[0]
    const cmd = sub === undefined ? undefined : r.commands[sub]
    if (cmd === undefined || (!single && sub === '')) {
      throw new UsageError(sub === undefined ? `missing subcommand (${Object.keys(r.commands).join(', ')})` : `unknown subcommand ${sub}`)
    }
    const { values, args } = parse(cmd, single ? argv : argv.slice(1))
    const url = typeof values.url === 'string' ? values.url : (env.MPATCH_URL ?? '') !== '' ? env.MPATCH_URL as string : await defaultUrl(env)
    const token = await tokenOf(values, env)
    let ca: Buffer | null = null
    if (typeof values.ca === 'string') {
      const file = values.ca
      ca = await readFile(file).catch((err: NodeJS.ErrnoException) => { throw new UsageError(`cannot read --ca ${file}: ${err.code ?? err.message}`) })
    }
    client = createClient({ url, token, ca })
    return await cmd.run({ client, io, json: values.json === true }, values, args)
  } catch (err) {
    if (err instanceof ApiError) {
      io.stderr.write(`${prefix}: ${err.detail} (${err.code})\n`)
      return EXIT.refused
    }
    if (err instanceof UnreachableError) {
      io.stderr.write(`${prefix}: ${err.message}\n`)
      return EXIT.unreachable
    }
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS') === true) {
      io.stderr.write(`${prefix}: ${(err as Error).message} (${prefix} --help)\n`)
      return EXIT.usage
    }
    throw err
  } finally {
    await client?.close()
  }
}

/** Pagination options of every list. */
export const PAGE_OPTIONS: OptionSpec = { limit: { type: 'string' }, cursor: { type: 'string' } }

/** `--limit N` as an integer 1..1000 (the API's range), or undefined. */
export function limitOf (v: Values): number | undefined {
  if (v.limit === undefined) return undefined
  const s = String(v.limit)
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 1000) throw new UsageError(`--limit must be an integer from 1 to 1000, not ${JSON.stringify(s)}`)
  return Number(s)
}

/** The query of a paginated list: limit and cursor plus the command's filters. */
export function pageQuery (v: Values, filters: Record<string, string | boolean | undefined> = {}): Record<string, string | number | boolean | undefined> {
  return { ...filters, limit: limitOf(v), cursor: v.cursor as string | undefined }
}

/** Prints a list answer: the JSON as sent, or a table and, when there is more, the cursor of the next page on stderr. */
export function printList<T> (ctx: Ctx, answer: { text: string, json: unknown }, render: (items: T[]) => string): number {
  if (ctx.json) {
    printRaw(ctx.io, answer.text)
    return EXIT.ok
  }
  const body = answer.json as { items?: T[], nextCursor?: string | null }
  ctx.io.stdout.write(render(body.items ?? []))
  if (typeof body.nextCursor === 'string') ctx.io.stderr.write(`More: --cursor ${body.nextCursor}\n`)
  return EXIT.ok
}

/** A path segment from a command-line argument. */
export const seg = (s: string): string => encodeURIComponent(s)

/** An answer whose shape is the API's: the JSON as sent with --json, else `human` or the object's fields. */
export function printAnswer (ctx: Ctx, answer: { text: string, json: unknown }, human?: string): number {
  if (ctx.json) printRaw(ctx.io, answer.text)
  else if (human !== undefined) ctx.io.stdout.write(human)
  else if (answer.json !== null && typeof answer.json === 'object' && !Array.isArray(answer.json)) ctx.io.stdout.write(renderFields(answer.json as Record<string, unknown>))
  else printRaw(ctx.io, answer.text)
  return EXIT.ok
}
