/** `multios-patch agent`: parse options, start the agent, stop it cleanly on SIGTERM/SIGINT. */
import { stat } from 'node:fs/promises'
import { startAgent } from '../agent/agent.js'
import { loadCaFile } from '../agent/credentials.js'
import { AGENT_USAGE, AgentUsageError, parseAgentOptions } from '../agent/options.js'
import type { AgentOptions } from '../agent/options.js'

export interface AgentCommandIo {
  stdout: { write: (s: string) => unknown }
  stderr: { write: (s: string) => unknown }
}

/** Paths the options name must exist before the agent starts (the state folder is created); returns the --ca PEM. */
async function checkPaths (options: AgentOptions): Promise<string | undefined> {
  const st = await stat(options.sysroot).catch(() => null)
  if (st === null || !st.isDirectory()) throw new AgentUsageError(`--sysroot ${options.sysroot} is not a folder`)
  const sd = await stat(options.stateDir).catch(() => null)
  if (sd !== null && !sd.isDirectory()) throw new AgentUsageError(`--state-dir ${options.stateDir} exists and is not a folder`)
  if (options.enrollSecretFile !== null) {
    const sf = await stat(options.enrollSecretFile).catch(() => null)
    if (sf === null || !sf.isFile()) throw new AgentUsageError(`--enroll-secret-file ${options.enrollSecretFile} is not a file`)
  }
  return options.caFile === null ? undefined : await loadCaFile(options.caFile)
}

/**
 * Runs `multios-patch agent ...` (argv after `agent`) and returns the exit code: 0 after a clean
 * stop (or a delivered `--once` report), 1 when the agent cannot start or the `--once` report
 * failed, 2 for a usage error.
 */
export async function runAgentCommand (argv: string[], io: AgentCommandIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(AGENT_USAGE)
    return 0
  }
  let options: AgentOptions
  let ca: string | undefined
  try {
    options = parseAgentOptions(argv)
    ca = await checkPaths(options)
  } catch (err) {
    if (!(err instanceof AgentUsageError)) throw err
    io.stderr.write(`multios-patch agent: ${err.message}\n${AGENT_USAGE}`)
    return 2
  }

  // A signal while the agent still waits to enroll ends the start; once running, it stops the agent.
  const starting = new AbortController()
  let agent: Awaited<ReturnType<typeof startAgent>> | null = null
  const onSignal = (): void => {
    if (agent === null) starting.abort()
    else agent.stop().catch(() => {})
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  try {
    agent = await startAgent(options, { ...ca !== undefined ? { ca } : {}, signal: starting.signal })
  } catch (err) {
    process.off('SIGTERM', onSignal)
    process.off('SIGINT', onSignal)
    if (starting.signal.aborted) return 0
    const message = err instanceof Error ? err.message : String(err)
    io.stderr.write(`multios-patch agent: cannot start: ${message.replace(/\s*\n\s*/g, ' ')}\n`)
    return 1
  }
  try {
    await agent.done
  } finally {
    process.off('SIGTERM', onSignal)
    process.off('SIGINT', onSignal)
  }
  return options.once && !agent.lastReportOk() ? 1 : 0
}
