/** The legacy answer shapes services return (spec section 2): message strings, newline-terminated. */

/** The standard legacy result: three newline-terminated message strings. */
export interface LegacyResult { info: string, warning: string, error: string }

/** A route-level short-circuit: a single `error` key. */
export interface ErrorOnly { error: string }

/** Accumulates the three message strings of one call. */
export class Messages {
  info = ''
  warning = ''
  error = ''
  result (): LegacyResult { return { info: this.info, warning: this.warning, error: this.error } }
}
