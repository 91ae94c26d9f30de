#!/usr/bin/env node
/** The `multios-patch` command: serve | agent | patch build|inspect|verify. */
import { runPatchCommand } from './cli/patch.js'

const usage = `Usage:
  multios-patch serve                      start the controller (configuration from MPATCH_* variables)
  multios-patch agent --controller URL     run the per-host agent (--help for its options)
  multios-patch patch build|inspect|verify build, show or verify a .patch file (--help for details)
`

async function main (argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case 'serve': {
      const { serve } = await import('./server.js')
      await serve()
      return -1
    }
    case 'agent': {
      const { runAgentCommand } = await import('./cli/agent.js')
      return await runAgentCommand(rest)
    }
    case 'patch':
      return await runPatchCommand(rest)
    case '--help': case '-h': case 'help':
      process.stdout.write(usage)
      return 0
    default:
      process.stderr.write(cmd === undefined ? usage : `Unknown command: ${cmd}\n${usage}`)
      return 2
  }
}

main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exitCode = code
}, (err: unknown) => {
  process.stderr.write(`multios-patch: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
})
