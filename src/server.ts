/** Process entry of `multios-patch serve`: config → app → listen, closing gracefully on signals. */
import closeWithGrace from 'close-with-grace'
import { loadConfig } from './config.js'
import { buildApp } from './app.js'
import { createLocalRunner } from './drivers/runner.js'

export async function serve (env: Record<string, string | undefined> = process.env): Promise<void> {
  const config = loadConfig(env)
  const app = await buildApp({
    config,
    logger: { level: config.MPATCH_LOG_LEVEL, redact: ['req.headers.authorization', 'req.headers["x-auth-token"]'] },
    runner: createLocalRunner()
  })
  closeWithGrace({ delay: 10_000 }, async ({ err }) => {
    if (err !== undefined) app.log.error({ err }, 'closing after an error')
    await app.close()
  })
  await app.listen({ host: config.MPATCH_HOST, port: config.MPATCH_PORT })
}
