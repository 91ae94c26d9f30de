/** Service configuration: environment variables, validated once at start. */
import path from 'node:path'
import envSchema from 'env-schema'
import { Type, type Static } from 'typebox'

/** Release names (sw_version) are used in paths and argv: keep them to a safe alphabet. */
export const RELEASE_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'

export const ConfigSchema = Type.Object({
  MPATCH_HOST: Type.String({ default: '127.0.0.1', description: 'Address of the local (unauthenticated) listener' }),
  MPATCH_PORT: Type.Integer({ default: 5487, minimum: 0, maximum: 65535, description: 'Port of the local listener' }),
  MPATCH_DATA_DIR: Type.String({ default: './var', minLength: 1, description: 'Folder for the SQLite database, the content store and temp files' }),
  MPATCH_SW_VERSION: Type.String({ default: '22.12', pattern: RELEASE_PATTERN, description: 'The running release' }),
  MPATCH_TRUST_DIR: Type.String({ default: '', description: 'Folder of PEM certificates / public keys trusted for signature.v2 (default <data dir>/trust)' }),
  MPATCH_ALLOW_UNSIGNED: Type.Boolean({ default: false, description: 'Accept patches without signature.v2 (development only; logged)' }),
  MPATCH_MAX_UPLOAD_BYTES: Type.Integer({ default: 4 * 1024 ** 3, minimum: 1024, description: 'Largest accepted upload (a feed upload: all its files together)' }),
  MPATCH_LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info', description: 'pino log level' }),
  MPATCH_SEMANTIC_CHECKS: Type.Boolean({ default: false, description: 'Run the pre-apply/pre-remove semantic checks carried by patches' }),
  MPATCH_SEMANTIC_TIMEOUT_S: Type.Integer({ default: 60, minimum: 1, description: 'Time limit of one semantic check' }),
  MPATCH_HOST_TIMEOUT_S: Type.Integer({ default: 3600, minimum: 1, description: 'A host that has not reported for this long is dropped' }),
  MPATCH_UPLOAD_DIRS: Type.String({ default: '', description: 'Colon-separated absolute folders upload_dir may import from (and below); empty: upload_dir is refused' }),
  MPATCH_MAX_REPORTS_IN_FLIGHT: Type.Integer({ default: 64, minimum: 1, description: 'Most agent reports and install results received at once; more answer 503 with Retry-After' }),
  MPATCH_MAX_LONG_POLLS: Type.Integer({ default: 25000, minimum: 1, description: 'Most agent long polls held at once; more answer 503 with Retry-After' }),
  MPATCH_DOCS: Type.Boolean({ default: true, description: 'Serve Swagger UI at /docs' }),
  MPATCH_ALLOW_INSECURE_LOCAL: Type.Boolean({ default: false, description: 'Let the local listener (no credentials) bind a non-loopback MPATCH_HOST (logged as a warning)' }),
  MPATCH_AUTH_HOST: Type.String({ default: '', description: 'Address of the authenticated listener; empty: off' }),
  MPATCH_AUTH_PORT: Type.Integer({ default: 5491, minimum: 0, maximum: 65535, description: 'Port of the authenticated listener (StarlingX registers the patching endpoint on 5491)' }),
  MPATCH_TLS_CERT: Type.String({ default: '', description: 'PEM certificate (chain) of the authenticated listener' }),
  MPATCH_TLS_KEY: Type.String({ default: '', description: 'PEM private key of the authenticated listener' }),
  MPATCH_AUTH_ALLOW_HTTP: Type.Boolean({ default: false, description: 'Serve the authenticated listener over plain HTTP (tests only)' }),
  MPATCH_TOKENS_FILE: Type.String({ default: '', description: 'Tokens file (admin, reader and agent tokens, stored as sha256; default <data dir>/tokens.json)' }),
  MPATCH_KEYSTONE_URL: Type.String({ default: '', description: 'Keystone v3 URL validating X-Auth-Token (e.g. http://keystone:5000/v3); empty: no Keystone' }),
  MPATCH_KEYSTONE_USERNAME: Type.String({ default: 'patching', description: 'The service\'s own Keystone user' }),
  MPATCH_KEYSTONE_PASSWORD: Type.String({ default: '', description: 'Its password' }),
  MPATCH_KEYSTONE_PROJECT: Type.String({ default: 'services', description: 'Its project' }),
  MPATCH_KEYSTONE_USER_DOMAIN: Type.String({ default: 'Default', description: 'Its user domain' }),
  MPATCH_KEYSTONE_PROJECT_DOMAIN: Type.String({ default: 'Default', description: 'Its project domain' }),
  MPATCH_KEYSTONE_CACHE_S: Type.Integer({ default: 300, minimum: 0, description: 'Seconds a validated Keystone token is trusted before it is checked again (bounded by its expiry; 0: always check)' }),
  MPATCH_ENROLL_SECRET: Type.String({ default: '', description: 'Shared secret agents enroll with (POST /api/v1/agents/enroll); empty: enrollment off' }),
  MPATCH_AUTH_FAILURES_PER_MIN: Type.Integer({ default: 30, minimum: 1, description: 'Failed authentications allowed per source address and minute; more answer 429' }),
  MPATCH_EVENTS_HEARTBEAT_MS: Type.Integer({ default: 15000, minimum: 10, description: 'Interval of the comment lines that keep GET /api/v1/events streams open through proxies' }),
  MPATCH_MAX_EVENT_STREAMS: Type.Integer({ default: 64, minimum: 1, description: 'Most GET /api/v1/events streams open at once; more answer 503' })
})

export type RawConfig = Static<typeof ConfigSchema>

/** The validated configuration with derived absolute paths. */
export interface Config extends RawConfig {
  dataDir: string
  trustDir: string
  dbPath: string
  contentDir: string
  tmpDir: string
  /** MPATCH_UPLOAD_DIRS split and normalized (absolute, no trailing slash); empty when unset. */
  uploadDirs: string[]
  tokensFile: string
}

/** Reads and validates the configuration; throws with a readable message on bad input. */
export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  const raw = envSchema<RawConfig>({ schema: ConfigSchema, data: env, dotenv: false })
  return resolveConfig(raw)
}

/** Completes a raw configuration with the paths derived from it. */
export function resolveConfig (raw: RawConfig): Config {
  const dataDir = path.resolve(raw.MPATCH_DATA_DIR)
  return {
    uploadDirs: parseUploadDirs(raw.MPATCH_UPLOAD_DIRS),
    ...raw,
    dataDir,
    trustDir: raw.MPATCH_TRUST_DIR === '' ? path.join(dataDir, 'trust') : path.resolve(raw.MPATCH_TRUST_DIR),
    dbPath: path.join(dataDir, 'multios-patch.db'),
    contentDir: path.join(dataDir, 'content'),
    tmpDir: path.join(dataDir, 'tmp'),
    tokensFile: raw.MPATCH_TOKENS_FILE === '' ? path.join(dataDir, 'tokens.json') : path.resolve(raw.MPATCH_TOKENS_FILE)
  }
}

/** Splits MPATCH_UPLOAD_DIRS; every entry must be absolute, so the set never depends on the working folder. */
export function parseUploadDirs (value: string): string[] {
  const dirs = value.split(':').filter((d) => d !== '')
  for (const d of dirs) {
    if (!path.isAbsolute(d)) throw new Error(`MPATCH_UPLOAD_DIRS: ${JSON.stringify(d)} is not an absolute folder`)
  }
  return dirs.map((d) => path.resolve(d))
}

/** Defaults for every key, for tests and tooling. */
export function defaultConfig (overrides: Partial<RawConfig> = {}): Config {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(overrides)) env[k] = String(v)
  return loadConfig(env)
}
