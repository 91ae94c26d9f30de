#!/usr/bin/env node
/** The `multios-patch` command: serve | agent | patch build|inspect|verify | token create|list|revoke | the API client (patches, hosts, ...), --help, --version. */
import { readFileSync } from 'node:fs'
import { runPatchCommand } from './cli/patch.js'

const usage = `Usage:
  multios-patch serve                      start the controller (configuration from MPATCH_* variables; --help lists them)
  multios-patch agent --controller URL     run the per-host agent (--help for its options)
  multios-patch patch build|inspect|verify build, show or verify a .patch file (--help for details)
  multios-patch token create|list|revoke   manage the tokens file of the authenticated listener (with --url or MPATCH_URL: through the API)
  multios-patch patches list|show|upload|delete|apply|remove|commit|deps
  multios-patch hosts list|show|install|drop
  multios-patch installs list|show
  multios-patch releases list|create|delete
  multios-patch feed list|add
  multios-patch audit
  multios-patch events                     the API client: talks to MPATCH_URL (default the local listener); --help on each
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

/** The API client's resource of a command name. */
async function clientResource (name: string): Promise<import('./cli/client/run.js').Resource> {
  switch (name) {
    case 'patches': return (await import('./cli/client/patches.js')).patches
    case 'hosts': return (await import('./cli/client/hosts.js')).hosts
    case 'installs': return (await import('./cli/client/installs.js')).installs
    case 'releases': return (await import('./cli/client/releases.js')).releases
    case 'feed': return (await import('./cli/client/releases.js')).feed
    case 'audit': return (await import('./cli/client/audit.js')).audit
    default: return (await import('./cli/client/events.js')).events
  }
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
      const { namesController, runClient } = await import('./cli/client/run.js')
      if (namesController(rest, process.env)) {
        const { tokens } = await import('./cli/client/tokens.js')
        return await runClient(tokens, rest)
      }
      const { runTokenCommand } = await import('./cli/token.js')
      return await runTokenCommand(rest)
    }
    case 'patches': case 'hosts': case 'installs': case 'releases': case 'feed': case 'audit': case 'events': {
      const { runClient } = await import('./cli/client/run.js')
      return await runClient(await clientResource(cmd), rest)
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
