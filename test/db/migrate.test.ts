import { describe, expect, it } from 'vitest'
import { cp, mkdtemp, readdir, rm, writeFile, appendFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { onTestFinished } from 'vitest'
import { openDatabase } from '../../src/db/open.js'
import { migrate, MigrationError, MIGRATIONS_DIR } from '../../src/db/migrate.js'

async function temp (): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'mpatch-migrate-'))
  onTestFinished(async () => { await rm(d, { recursive: true, force: true }) })
  return d
}

describe('migrate', () => {
  it('applies every file once to a real database file in WAL mode, with STRICT tables', async () => {
    const dir = await temp()
    const db = openDatabase(path.join(dir, 'x.db'))

    const first = migrate(db)
    const second = migrate(db)
    const tables = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string, sql: string }>

    expect(first).toEqual((await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql')).sort())
    expect(second).toEqual([])
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1)
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['app_dependencies', 'audit', 'events', 'patch_files', 'patch_requires', 'patches', 'releases', 'schema_migrations']))
    expect(tables.every((t) => t.sql.trimEnd().endsWith('STRICT'))).toBe(true)
    db.close()
  })

  it('refuses to start when an applied file changed', async () => {
    const dir = await temp()
    const mig = path.join(dir, 'migrations')
    await cp(MIGRATIONS_DIR, mig, { recursive: true })
    const db = openDatabase(path.join(dir, 'x.db'))
    migrate(db, mig)
    await appendFile(path.join(mig, '001_releases.sql'), '\n-- edited\n')

    expect(() => migrate(db, mig)).toThrow(MigrationError)
    expect(() => migrate(db, mig)).toThrow(/001_releases\.sql was changed after it was applied/)
    db.close()
  })

  it('rolls a failing file back whole and names it', async () => {
    const dir = await temp()
    const mig = path.join(dir, 'migrations')
    await cp(MIGRATIONS_DIR, mig, { recursive: true })
    const n = (await readdir(mig)).length + 1
    await writeFile(path.join(mig, `${String(n).padStart(3, '0')}_broken.sql`), 'CREATE TABLE t1 (a INTEGER) STRICT;\nCREATE TABLE t1 (b INTEGER) STRICT;\n')
    const db = openDatabase(':memory:')

    expect(() => migrate(db, mig)).toThrow(new RegExp(`${String(n).padStart(3, '0')}_broken\\.sql failed`))
    expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 't1'").get()).toEqual({ n: 0 })
    expect(db.prepare('SELECT count(*) AS n FROM schema_migrations').get()).toEqual({ n: n - 1 })
  })
})
