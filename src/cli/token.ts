/** `multios-patch token create|list|revoke`: manage the tokens file of the authenticated listener without restarting it. */
import path from 'node:path'
import { parseArgs } from 'node:util'
import { createTokenStore, TOKEN_ROLES, TokenStoreError, type TokenRole } from '../auth/tokens.js'
import { ConfigSchema } from '../config.js'
import { table } from './client/output.js'

export interface TokenCommandIo {
  stdout: { write: (s: string) => unknown }
  stderr: { write: (s: string) => unknown }
}

const USAGE = `Usage:
  multios-patch token create --name NAME --role admin|reader|agent [--host HOSTNAME] [--replace] [--json]
      prints the new token once on stdout; only its sha256 is stored
      --host       the host an agent token acts for (required for --role agent, refused otherwise)
      --replace    re-issue: replaces the token of that name and, for an agent, the host's agent token
  multios-patch token list [--json]
  multios-patch token revoke --name NAME [--json]
The file is MPATCH_TOKENS_FILE (default <MPATCH_DATA_DIR>/tokens.json, MPATCH_DATA_DIR default ./var);
a running service sees every change within a second.
With --url URL (or MPATCH_URL set) the same three commands go to that controller's /api/v1/tokens
instead (an admin token needed: MPATCH_TOKEN or --token-file; multios-patch token --url URL --help).
Exit codes: 0 success, 1 failure (the file is unusable, the name or host is taken, no such token), 2 usage error.
`

class UsageError extends Error {}

const OPTIONS = {
  create: { name: { type: 'string' }, role: { type: 'string' }, host: { type: 'string' }, replace: { type: 'boolean' }, json: { type: 'boolean' } },
  list: { json: { type: 'boolean' } },
  revoke: { name: { type: 'string' }, json: { type: 'boolean' } }
} as const

/** The tokens file from the environment; config.ts has no key for it yet, so it is read here. */
export function tokensFile (env: Record<string, string | undefined> = process.env): string {
  const file = env.MPATCH_TOKENS_FILE ?? ''
  if (file !== '') return path.resolve(file)
  const dataDir = env.MPATCH_DATA_DIR ?? ''
  // The data folder's default comes from the configuration schema, so the two cannot drift apart.
  const fallback = (ConfigSchema.properties.MPATCH_DATA_DIR as { default?: string }).default ?? './var'
  return path.resolve(dataDir === '' ? fallback : dataDir, 'tokens.json')
}

/** Parses a subcommand's options strictly: no positionals, no option given twice. */
function parse<K extends keyof typeof OPTIONS> (sub: K, argv: string[]): Record<string, string | boolean | undefined> {
  const { values, positionals, tokens } = parseArgs({ args: argv, allowPositionals: true, strict: true, tokens: true, options: OPTIONS[sub] })
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`)
  const seen = new Set<string>()
  for (const t of tokens) {
    if (t.kind !== 'option') continue
    if (seen.has(t.name)) throw new UsageError(`--${t.name} is given twice`)
    seen.add(t.name)
  }
  return values as Record<string, string | boolean | undefined>
}

function required (value: string | boolean | undefined, flag: string): string {
  if (typeof value !== 'string' || value === '') throw new UsageError(`${flag} is required`)
  return value
}

/**
 * Runs `multios-patch token <subcommand> ...` (argv after `token`) and returns the exit code:
 * 0 success, 1 failure, 2 usage error (one line on stderr).
 */
export async function runTokenCommand (argv: string[], io: TokenCommandIo = { stdout: process.stdout, stderr: process.stderr }, env: Record<string, string | undefined> = process.env): Promise<number> {
  const [sub, ...rest] = argv
  if ((sub !== undefined && ['--help', '-h', 'help'].includes(sub)) || rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(USAGE)
    return 0
  }
  try {
    const store = createTokenStore(tokensFile(env))
    switch (sub) {
      case 'create': {
        const v = parse('create', rest)
        const name = required(v.name, '--name')
        const role = required(v.role, '--role')
        if (!TOKEN_ROLES.includes(role as TokenRole)) throw new UsageError(`--role must be admin, reader or agent, not ${JSON.stringify(role)}`)
        if (v.host === '') throw new UsageError('--host needs a hostname')
        const { token, entry } = await store.create({ name, role: role as TokenRole, hostname: v.host as string | undefined, replace: v.replace === true })
        io.stdout.write(v.json === true ? JSON.stringify({ token, name: entry.name, role: entry.role, hostname: entry.hostname, createdAt: entry.createdAt }) + '\n' : token + '\n')
        const forHost = entry.hostname === null ? '' : ` for host ${entry.hostname}`
        io.stderr.write(`Created ${entry.role} token ${entry.name}${forHost} in ${store.file}; it is shown only this once, only its sha256 is stored.\n`)
        return 0
      }
      case 'list': {
        const v = parse('list', rest)
        const rows = store.list()
        if (v.json === true) {
          io.stdout.write(JSON.stringify(rows) + '\n')
        } else {
          io.stdout.write(table([['NAME', 'ROLE', 'HOST', 'CREATED'], ...rows.map((r) => [r.name, r.role, r.hostname ?? '-', r.createdAt])]))
          if (rows.length === 0) io.stderr.write(`No tokens in ${store.file}.\n`)
        }
        return 0
      }
      case 'revoke': {
        const v = parse('revoke', rest)
        const name = required(v.name, '--name')
        const revoked = await store.revoke(name)
        if (!revoked) {
          io.stderr.write(`multios-patch token: no token named ${name} in ${store.file}\n`)
          return 1
        }
        io.stdout.write(v.json === true ? JSON.stringify({ revoked: name }) + '\n' : `Revoked token ${name}.\n`)
        return 0
      }
      default:
        throw new UsageError(sub === undefined ? 'missing subcommand (create, list or revoke)' : `unknown subcommand ${sub}`)
    }
  } catch (err) {
    const usage = err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS') === true ||
      (err instanceof TokenStoreError && err.code === 'MPATCH_TOKEN_INVALID')
    io.stderr.write(`multios-patch token: ${err instanceof Error ? err.message : String(err)}${usage ? ' (multios-patch token --help)' : ''}\n`)
    return usage ? 2 : 1
  }
}
