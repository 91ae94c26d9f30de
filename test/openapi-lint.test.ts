/** redocly lint (redocly.yaml: the recommended rules) of the committed openapi/openapi.json: no errors. Offline: telemetry and update checks off. */
import { describe, expect, it, onTestFinished } from 'vitest'
import { readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { execa } from 'execa'
import { tempDir } from './helpers/build-app.js'

const ROOT = path.resolve(import.meta.dirname, '..')
const CLI = path.join(ROOT, 'node_modules/@redocly/cli/bin/cli.js')

interface Problem { ruleId: string, severity: 'error' | 'warn', message: string, location: Array<{ pointer: string }> }
interface LintReport { totals: { errors: number, warnings: number }, problems: Problem[] }

async function lint (file: string): Promise<{ exitCode: number | undefined, report: LintReport }> {
  const res = await execa(process.execPath, [CLI, 'lint', '--config', path.join(ROOT, 'redocly.yaml'), '--format', 'json', file], {
    cwd: ROOT,
    reject: false,
    // No usage data, no npm registry look-up for a newer version: the suite runs offline.
    env: { REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_NOTIFICATIONS: 'true', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' }
  })
  return { exitCode: res.exitCode, report: JSON.parse(res.stdout) as LintReport }
}

const brief = (p: Problem): string => `${p.ruleId} ${p.location[0]?.pointer ?? ''}: ${p.message}`

describe('redocly lint', () => {
  it('finds no errors in openapi/openapi.json', async () => {
    const { exitCode, report } = await lint(path.join(ROOT, 'openapi/openapi.json'))

    process.stdout.write(`redocly lint: ${report.totals.errors} errors, ${report.totals.warnings} warnings${report.problems.length > 0 ? '\n  ' + report.problems.map(brief).join('\n  ') : ''}\n`)
    expect(report.problems.filter((p) => p.severity === 'error').map(brief)).toEqual([])
    expect(report.totals.errors).toBe(0)
    expect(exitCode).toBe(0)
  }, 60_000)

  it('reports the errors of a broken copy (no servers, an example that is not its schema)', async () => {
    const doc = JSON.parse(await readFile(path.join(ROOT, 'openapi/openapi.json'), 'utf8'))
    doc.servers = []
    doc.components.schemas.Install.examples = [{ id: 'not a number' }]
    const dir = await tempDir('openapi-lint')
    onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
    const file = path.join(dir, 'broken.json')
    await writeFile(file, JSON.stringify(doc))

    const { exitCode, report } = await lint(file)

    expect(exitCode).not.toBe(0)
    expect(report.problems.filter((p) => p.severity === 'error').map((p) => p.ruleId)).toEqual(expect.arrayContaining(['no-empty-servers', 'no-invalid-schema-examples']))
  }, 60_000)
})
