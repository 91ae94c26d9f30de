/** Process entry of `multios-patch serve`: config → data folder → app → listen, closing gracefully on signals. */
import closeWithGrace from 'close-with-grace'
import { ConfigSchema, loadConfig, type Config } from './config.js'
import { buildApp } from './app.js'
import { createLocalRunner } from './drivers/runner.js'

/** The service cannot start; the message is one line naming what, where and why. */
export class StartupError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StartupError'
  }
}

const LISTEN_REASONS: Record<string, string> = {
  EADDRINUSE: 'the address is already in use by another process',
  EADDRNOTAVAIL: 'the address is not assigned to this machine',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve (temporary failure)',
  EINVAL: 'invalid address'
}

function listenError (config: Config, err: unknown): StartupError {
  const code = (err as NodeJS.ErrnoException).code ?? ''
  const why = LISTEN_REASONS[code] ?? (err instanceof Error ? err.message : String(err))
  return new StartupError(`cannot listen on ${config.MPATCH_HOST}:${config.MPATCH_PORT}: ${why}${code !== '' ? ` (${code})` : ''}`, { cause: err })
}

/** Help for `serve`: the variables, their defaults and meaning, from the configuration schema. */
export function serveUsage (): string {
  const rows = Object.entries(ConfigSchema.properties).map(([name, s]) => {
    const schema = s as { default?: unknown, description?: string }
    const def = schema.default === '' ? '(derived)' : String(schema.default)
    return `  ${name.padEnd(26)} ${def.padEnd(12)} ${schema.description ?? ''}`
  })
  return `Usage: multios-patch serve

Starts the controller. Configuration comes from environment variables (defaults shown):
${rows.join('\n')}
Exit status: 0 after a clean stop, 1 when it cannot start (one line on stderr says why).
`
}

/**
 * Starts the service and resolves once it listens. Every failure before that (configuration,
 * data folder, database, listening) rejects with a StartupError and leaves nothing running.
 */
export async function serve (env: Record<string, string | undefined> = process.env): Promise<void> {
  let config: Config
  try {
    config = loadConfig(env)
  } catch (err) {
    throw new StartupError(`configuration: ${(err as Error).message}`, { cause: err })
  }
  let app
  try {
    app = await buildApp({
      config,
      logger: { level: config.MPATCH_LOG_LEVEL, redact: ['req.headers.authorization', 'req.headers["x-auth-token"]'] },
      runner: createLocalRunner()
    })
    await app.ready()
  } catch (err) {
    await app?.close().catch(() => {})
    throw err instanceof StartupError ? err : new StartupError((err as Error).message, { cause: err })
  }
  try {
    await app.listen({ host: config.MPATCH_HOST, port: config.MPATCH_PORT })
  } catch (err) {
    await app.close().catch(() => {})
    throw listenError(config, err)
  }
  // Installed only once listening: close-with-grace exits 0 on a normal exit, which would hide a failed start.
  closeWithGrace({ delay: 10_000 }, async ({ err }) => {
    if (err !== undefined) app.log.error({ err }, 'closing after an error')
    await app.close()
  })
}
