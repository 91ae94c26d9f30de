#!/usr/bin/env node
/** The `multios-patch` command: serve | agent | patch build|inspect|verify | token create|list|revoke, --help, --version. */
import { readFileSync } from 'node:fs'
import { runPatchCommand } from './cli/patch.js'

const usage = `Usage:
  multios-patch serve                      start the controller (configuration from MPATCH_* variables; --help lists them)
  multios-patch agent --controller URL     run the per-host agent (--help for its options)
  multios-patch patch build|inspect|verify build, show or verify a .patch file (--help for details)
  multios-patch token create|list|revoke   manage the tokens of the authenticated listener (--help for details)
  multios-patch --version                  print the version
`

/** The package version, read from package.json beside dist/ (or src/ under tsx). */
function version (): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

async function runServe (argv: string[]): Promise<number> {
  const { serve, serveUsage, StartupError } = await import('./server.js')
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(serveUsage())
    return 0
  }
  if (argv.length > 0) {
    process.stderr.write(`multios-patch serve: unexpected argument ${JSON.stringify(argv[0])} (configuration comes from MPATCH_* variables)\n${serveUsage()}`)
    return 2
  }
  try {
    await serve()
  } catch (err) {
    if (!(err instanceof StartupError)) throw err
    process.stderr.write(`multios-patch serve: ${err.message.replace(/\s*\n\s*/g, ' ')}\n`)
    return 1
  }
  return -1
}

async function main (argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case 'serve':
      return await runServe(rest)
    case 'agent': {
      const { runAgentCommand } = await import('./cli/agent.js')
      return await runAgentCommand(rest)
    }
    case 'patch':
      return await runPatchCommand(rest)
    case 'token': {
      const { runTokenCommand } = await import('./cli/token.js')
      return await runTokenCommand(rest)
    }
    case '--version': case '-V': case 'version':
      process.stdout.write(`multios-patch ${version()}\n`)
      return 0
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
