/** Output of the client CLI: aligned tables and key/value blocks for people, the API's JSON as sent for scripts, progress bars on a TTY only. */
import cliProgress from 'cli-progress'

export interface Io {
  stdout: { write: (s: string) => unknown }
  stderr: { write: (s: string) => unknown, isTTY?: boolean }
}

/** One column of a table: its header and how a row shows in it. */
export type Column<T> = [header: string, cell: (row: T) => unknown]

/** A cell's text: '-' for nothing, yes/no for booleans, lists joined, objects as JSON; one line always. */
export function cell (v: unknown): string {
  if (v === null || v === undefined || v === '') return '-'
  if (typeof v === 'boolean') return v ? 'yes' : 'no'
  if (Array.isArray(v)) return v.length === 0 ? '-' : v.map(cell).join(',')
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v).trim().replace(/\s*\n\s*/g, ' ')
}

/**
 * Left-aligned columns separated by two spaces, the last one not padded (also `token list`'s local
 * table). Hand-written on purpose: it is three lines, and the table libraries (cli-table3 and the
 * like) draw boxes and bring string-width and colour dependencies for what padEnd does.
 */
export function table (rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  return rows.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join('  ') + '\n').join('')
}

/** A table of `items` with `columns`; a header only when the list is empty. */
export function renderTable<T> (items: T[], columns: Array<Column<T>>): string {
  return table([columns.map((c) => c[0]), ...items.map((it) => columns.map((c) => cell(c[1](it))))])
}

/** `key: value` lines of an object's fields, keys aligned; nested objects as JSON on one line. */
export function renderFields (obj: Record<string, unknown>, keys: string[] = Object.keys(obj)): string {
  const width = Math.max(0, ...keys.map((k) => k.length))
  return keys.map((k) => `${`${k}:`.padEnd(width + 1)} ${cell(obj[k])}\n`).join('')
}

/** The body as the API sent it, one trailing newline. */
export function printRaw (io: Io, text: string): void {
  if (text !== '') io.stdout.write(text.endsWith('\n') ? text : text + '\n')
}

/** Bytes in binary units (the progress bars and the feed's sizes). */
export function bytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`
}

export interface Progress {
  update: (value: number, payload?: Record<string, string>) => void
  stop: () => void
}

const NO_PROGRESS: Progress = { update: () => {}, stop: () => {} }

/**
 * A progress bar on stderr, only when stderr is a terminal and the output is not --json: scripts
 * and logs never see carriage returns. `unit` 'bytes' shows sizes, 'steps' shows the stage text.
 */
export function progress (io: Io, json: boolean, total: number, unit: 'bytes' | 'steps', payload: Record<string, string> = {}): Progress {
  if (json || io.stderr.isTTY !== true) return NO_PROGRESS
  const format = unit === 'bytes'
    ? '{bar} {percentage}% | {sentText} / {totalText} | {what}'
    : '{bar} {stage}'
  const bar = new cliProgress.SingleBar({
    format,
    stream: io.stderr as NodeJS.WritableStream,
    hideCursor: true,
    clearOnComplete: false,
    barsize: 30,
    formatValue: (v, _opts, type) => type === 'percentage' ? String(v).padStart(3) : String(v)
  }, cliProgress.Presets.shades_classic)
  const texts = (value: number): Record<string, string> => unit === 'bytes' ? { sentText: bytes(value), totalText: bytes(total) } : {}
  bar.start(total, 0, { ...payload, ...texts(0) })
  return {
    update: (value, more = {}) => { bar.update(Math.min(value, total), { ...more, ...texts(Math.min(value, total)) }) },
    stop: () => { bar.stop() }
  }
}
