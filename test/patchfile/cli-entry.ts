/** Test entry: runs `multios-patch patch ...` (runPatchCommand) as a real process; argv after the script. */
import { runPatchCommand } from '../../src/cli/patch.js'

process.exitCode = await runPatchCommand(process.argv.slice(2))
