#!/usr/bin/env node
/** The `multios-patch` command: serve | patch build|inspect|verify. */
import { runPatchCommand } from './cli/patch.js'

const usage = `Usage:
  multios-patch serve                      start the controller (configuration from MPATCH_* variables)
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
