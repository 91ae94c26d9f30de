/** One agent report through the app (POST /api/v1/agents/{hostname}/report), with what route tests vary. */
import type { buildTestApp } from './build-app.js'

type App = Awaited<ReturnType<typeof buildTestApp>>['app']

export interface ReportOptions {
  driver?: 'deb' | 'rpm'
  subfunctions?: string[]
  /** [name, version, release, arch] rows; omitted = an unchanged-hash report. */
  inventory?: Array<[string, string, string | null, string]>
  hash?: string
  state?: string
  locked?: boolean
  /** More report fields (bootId, inventoryCollectedAt, ...). */
  extra?: Record<string, unknown>
}

export function postReport (app: App, hostname: string, o: ReportOptions = {}) {
  const driver = o.driver ?? 'rpm'
  return app.inject({
    method: 'POST',
    url: `/api/v1/agents/${hostname}/report`,
    payload: {
      nodetype: (o.subfunctions ?? ['controller'])[0],
      subfunctions: o.subfunctions ?? ['controller'],
      swVersion: '22.12',
      os: driver === 'deb' ? { id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' } : { id: 'rocky', versionId: '9.3', prettyName: 'Rocky Linux 9.3' },
      arch: 'x86_64',
      driver,
      state: o.state ?? 'idle',
      patchFailed: false,
      requiresReboot: false,
      locked: o.locked ?? false,
      inventoryHash: o.hash ?? 'a'.repeat(64),
      ...(o.inventory !== undefined ? { inventory: o.inventory.map(([name, version, release, arch]) => ({ name, epoch: null, version, release, arch })) } : {}),
      ...o.extra
    }
  })
}
