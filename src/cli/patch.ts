/** `multios-patch patch build|inspect|verify`: make, show and verify .patch files offline. */
import { UsageError } from './patch-args.js'
import { patchBuild } from './patch-build.js'
import { patchInspect, patchVerify } from './patch-inspect.js'

export interface PatchCommandIo {
  stdout: { write: (s: string) => unknown }
  stderr: { write: (s: string) => unknown }
}

const USAGE = `Usage:
  multios-patch patch build --id ID --sw-version REL [options] [-o OUT] FILE...
      -o, --output OUT         an existing folder (writes OUT/ID.patch) or a file named ID.patch;
                               default ./ID.patch (the server refuses a file not named after its id)
      --requires ID            a required patch (repeat, or comma-separate)
      --status REL|DEV|OBS     default REL (commit refuses while any patch is not REL)
      --reboot-required Y|N    default N
      --unremovable Y|N        default N
      --summary S  --description D  --install-instructions S  --warnings S
                               text: tab and newline allowed, no other control character
      --apply-active-release-only
      --personality TYPE=pkg1,pkg2   packages new to a node type (repeatable); each is in a FILE
      --pre-apply FILE  --pre-remove FILE   semantic check scripts
      --key PEM                unencrypted RSA private key (2048 bits or more): writes signature.v2
      --ostree-repo DIR --base C0 --commit CN
                               OSTree content: the commits from CN back to C0 (exclusive) of the
                               repository DIR, with their objects (FILE... may then be empty)
      FILE...                  binary packages, named as their headers say:
                               name-version-release.arch.rpm go to <rpm>, name_version_arch.deb to <deb>
  multios-patch patch inspect FILE [--trust DIR]
      shows metadata, files and signature; without --trust signature.v2 is not checked
  multios-patch patch verify FILE [--trust DIR] [--allow-unsigned]
      DIR holds the trusted certificates and public keys (*.pem, *.crt, *.pub)
Exit codes: 0 success, 1 failure (a file is missing, unreadable or not acceptable), 2 usage error.
`

/**
 * Runs `multios-patch patch <subcommand> ...` (argv after `patch`) and returns the exit code:
 * 0 success, 1 failure, 2 usage error.
 */
export async function runPatchCommand (argv: string[], io: PatchCommandIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [sub, ...rest] = argv
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(USAGE)
    return 0
  }
  try {
    switch (sub) {
      case 'build': return await patchBuild(rest, io)
      case 'inspect': return await patchInspect(rest, io)
      case 'verify': return await patchVerify(rest, io)
      case '--help': case '-h': case 'help':
        io.stdout.write(USAGE)
        return 0
      default:
        throw new UsageError(sub === undefined ? 'missing subcommand' : `unknown subcommand ${sub}`)
    }
  } catch (err) {
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS') === true) {
      io.stderr.write(`multios-patch patch: ${(err as Error).message}\n${USAGE}`)
      return 2
    }
    io.stderr.write(`multios-patch patch: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  }
}
