/** Process entry of `multios-patch serve`: config → data folder → app → listen, closing gracefully on signals. */
import { readFile } from 'node:fs/promises'
import closeWithGrace from 'close-with-grace'
import pino from 'pino'
import { ConfigSchema, loadConfig, type Config } from './config.js'
import { buildApp, isLoopbackAddress, type App } from './app.js'
import { openCore, type OpenCore } from './core.js'
import { createLocalRunner } from './drivers/runner.js'
import { createIdentityVerifier } from './auth/identities.js'
import { createKeystoneAuth } from './auth/keystone.js'

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

function listenError (host: string, port: number, err: unknown): StartupError {
  const code = (err as NodeJS.ErrnoException).code ?? ''
  const why = LISTEN_REASONS[code] ?? (err instanceof Error ? err.message : String(err))
  return new StartupError(`cannot listen on ${host}:${port}: ${why}${code !== '' ? ` (${code})` : ''}`, { cause: err })
}

/** The local listener has no credentials: only a loopback address, unless explicitly allowed. */
function checkLocalHost (config: Config): void {
  const host = config.MPATCH_HOST
  if (host === 'localhost' || isLoopbackAddress(host) || config.MPATCH_ALLOW_INSECURE_LOCAL) return
  throw new StartupError(`MPATCH_HOST ${host} is not a loopback address and the local listener has no credentials: ` +
    'serve other hosts on the authenticated listener (MPATCH_AUTH_HOST), or set MPATCH_ALLOW_INSECURE_LOCAL=true')
}

/** TLS of the authenticated listener, or null for plain HTTP (MPATCH_AUTH_ALLOW_HTTP). */
async function tlsOf (config: Config): Promise<{ cert: Buffer, key: Buffer } | null> {
  if (config.MPATCH_TLS_CERT === '' || config.MPATCH_TLS_KEY === '') {
    if (config.MPATCH_AUTH_ALLOW_HTTP) return null
    throw new StartupError('the authenticated listener needs MPATCH_TLS_CERT and MPATCH_TLS_KEY (or MPATCH_AUTH_ALLOW_HTTP=true for tests)')
  }
  const read = async (name: string, file: string): Promise<Buffer> => await readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw new StartupError(`${name} ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, { cause: err })
  })
  return { cert: await read('MPATCH_TLS_CERT', config.MPATCH_TLS_CERT), key: await read('MPATCH_TLS_KEY', config.MPATCH_TLS_KEY) }
}

/** Help for `serve`: the variables, their defaults and meaning, from the configuration schema. */
export function serveUsage (): string {
  const rows = Object.entries(ConfigSchema.properties).map(([name, s]) => {
    const schema = s as { default?: unknown, description?: string }
    const def = schema.default === '' ? '(derived)' : String(schema.default)
    return `  ${name.padEnd(32)} ${def.padEnd(12)} ${schema.description ?? ''}`
  })
  return `Usage: multios-patch serve

Starts the controller. Configuration comes from environment variables (defaults shown):
${rows.join('\n')}
Exit status: 0 after a clean stop, 1 when it cannot start (one line on stderr says why).
`
}

/**
 * Starts the service and resolves once it listens: the local listener and, when MPATCH_AUTH_HOST
 * is set, the authenticated one, both on one core. Every failure before that (configuration,
 * data folder, database, TLS files, listening) rejects with a StartupError and leaves nothing running.
 */
export async function serve (env: Record<string, string | undefined> = process.env): Promise<void> {
  let config: Config
  try {
    config = loadConfig(env)
  } catch (err) {
    throw new StartupError(`configuration: ${(err as Error).message}`, { cause: err })
  }
  checkLocalHost(config)
  const log = pino({
    level: config.MPATCH_LOG_LEVEL,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: ['req.headers.authorization', 'req.headers["x-auth-token"]', 'req.headers["x-subject-token"]']
  })
  if (config.MPATCH_ALLOW_INSECURE_LOCAL && !isLoopbackAddress(config.MPATCH_HOST) && config.MPATCH_HOST !== 'localhost') {
    log.warn({ host: config.MPATCH_HOST }, 'the local listener has no credentials and listens beyond loopback (MPATCH_ALLOW_INSECURE_LOCAL)')
  }
  const runner = createLocalRunner()
  let core: OpenCore | undefined
  const apps: App[] = []
  const closeAll = async (): Promise<void> => {
    for (const a of apps) await a.close().catch(() => {})
    await core?.close().catch(() => {})
  }
  try {
    core = await openCore({ config, log, runner })
    const local = await buildApp({ config, core, loggerInstance: log, runner })
    apps.push(local)
    await local.ready()
    if (config.MPATCH_AUTH_HOST !== '') {
      const https = await tlsOf(config)
      const keystone = config.MPATCH_KEYSTONE_URL === ''
        ? undefined
        : createKeystoneAuth({
          url: config.MPATCH_KEYSTONE_URL,
          username: config.MPATCH_KEYSTONE_USERNAME,
          password: config.MPATCH_KEYSTONE_PASSWORD,
          project: config.MPATCH_KEYSTONE_PROJECT,
          userDomain: config.MPATCH_KEYSTONE_USER_DOMAIN,
          projectDomain: config.MPATCH_KEYSTONE_PROJECT_DOMAIN,
          cacheSeconds: config.MPATCH_KEYSTONE_CACHE_S,
          log
        })
      const authed = await buildApp({
        config,
        core,
        loggerInstance: log,
        runner,
        ...(https !== null ? { https } : {}),
        auth: { verify: createIdentityVerifier({ tokens: core.tokens, keystone }), failuresPerMinute: config.MPATCH_AUTH_FAILURES_PER_MIN, enrollSecret: config.MPATCH_ENROLL_SECRET }
      })
      apps.push(authed)
      await authed.ready()
    }
  } catch (err) {
    await closeAll()
    throw err instanceof StartupError ? err : new StartupError((err as Error).message, { cause: err })
  }
  const listeners: Array<[App, string, number]> = [[apps[0], config.MPATCH_HOST, config.MPATCH_PORT]]
  if (apps.length > 1) listeners.push([apps[1], config.MPATCH_AUTH_HOST, config.MPATCH_AUTH_PORT])
  for (const [app, host, port] of listeners) {
    try {
      await app.listen({ host, port })
    } catch (err) {
      await closeAll()
      throw listenError(host, port, err)
    }
  }
  // Installed only once listening: close-with-grace exits 0 on a normal exit, which would hide a failed start.
  closeWithGrace({ delay: 10_000 }, async ({ err, signal }) => {
    if (err !== undefined) log.error({ err }, 'closing after an error')
    else log.info({ signal }, 'shutting down')
    await closeAll()
    log.info('stopped')
  })
}
