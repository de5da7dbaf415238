/**
 * Settings: the only module that reads process.env. Parsed and validated once at start,
 * frozen, then passed down. A bad setting stops the process with one message naming every
 * bad variable.
 */
export type Environment = 'development' | 'production'

export interface Config {
  redisUrl: string
  keyPrefix: string
  port: number
  environment: Environment
  frontendOrigin: string
  apiTokens: string
  logLevel: string
  defaultQueue: string
  maxRetries: number
  initialBackoffMs: number
  backoffMultiplier: number
  maxBackoffMs: number
  jobTimeoutMs: number
  workerConcurrency: number
  workerQueues: string[]
  leaseMs: number
  claimIdleMs: number
  maxDeliveries: number
  shutdownTimeoutMs: number
  completedRetentionS: number
  failedRetentionS: number
  idempotencyTtlS: number
  maxPayloadBytes: number
  eventsMaxLen: number
  redisCommandTimeoutMs: number
}

type Kind = 'string' | 'int' | 'number' | 'list' | 'url' | 'enum'

interface Spec {
  env: string
  key: keyof Config
  kind: Kind
  default: string
  min?: number
  max?: number
  values?: readonly string[]
  pattern?: RegExp
  doc: string
}

export const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/

/** Every setting, its default and one line of meaning (.env.example is checked against this list). */
export const SETTINGS: readonly Spec[] = [
  {
    env: 'REDIS_URL',
    key: 'redisUrl',
    kind: 'url',
    default: 'redis://127.0.0.1:6379',
    doc: 'Redis to use (redis:// or rediss://)',
  },
  {
    env: 'KEY_PREFIX',
    key: 'keyPrefix',
    kind: 'string',
    default: 'dtq',
    pattern: NAME_PATTERN,
    doc: 'prefix of every Redis key DTQ writes',
  },
  { env: 'PORT', key: 'port', kind: 'int', default: '8000', min: 0, max: 65535, doc: 'HTTP port of the API' },
  {
    env: 'ENVIRONMENT',
    key: 'environment',
    kind: 'enum',
    default: 'development',
    values: ['development', 'production'],
    doc: 'development or production (production hides dev endpoints and requires tokens)',
  },
  {
    env: 'FRONTEND_ORIGIN',
    key: 'frontendOrigin',
    kind: 'string',
    default: 'http://localhost:5173',
    doc: 'origin allowed by CORS (the console in development)',
  },
  {
    env: 'API_TOKENS',
    key: 'apiTokens',
    kind: 'string',
    default: '',
    doc: 'comma-separated token:role pairs, role one of read|write|admin',
  },
  {
    env: 'LOG_LEVEL',
    key: 'logLevel',
    kind: 'enum',
    default: 'info',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    doc: 'pino log level',
  },
  {
    env: 'DEFAULT_QUEUE',
    key: 'defaultQueue',
    kind: 'string',
    default: 'default',
    pattern: NAME_PATTERN,
    doc: 'queue used when a job names none',
  },
  {
    env: 'MAX_RETRIES',
    key: 'maxRetries',
    kind: 'int',
    default: '3',
    min: 0,
    max: 1000,
    doc: 'retries after the first attempt before a job goes to the DLQ',
  },
  {
    env: 'INITIAL_BACKOFF_MS',
    key: 'initialBackoffMs',
    kind: 'int',
    default: '1000',
    min: 0,
    max: 86_400_000,
    doc: 'delay before the first retry',
  },
  {
    env: 'BACKOFF_MULTIPLIER',
    key: 'backoffMultiplier',
    kind: 'number',
    default: '2',
    min: 1,
    max: 100,
    doc: 'growth of the delay per retry',
  },
  {
    env: 'MAX_BACKOFF_MS',
    key: 'maxBackoffMs',
    kind: 'int',
    default: '3600000',
    min: 0,
    max: 604_800_000,
    doc: 'cap on the retry delay',
  },
  {
    env: 'JOB_TIMEOUT_MS',
    key: 'jobTimeoutMs',
    kind: 'int',
    default: '0',
    min: 0,
    max: 604_800_000,
    doc: 'default run-time limit of a job (0: none); per job timeout_ms overrides',
  },
  {
    env: 'WORKER_CONCURRENCY',
    key: 'workerConcurrency',
    kind: 'int',
    default: '10',
    min: 1,
    max: 10_000,
    doc: 'jobs one worker process runs at once',
  },
  {
    env: 'WORKER_QUEUES',
    key: 'workerQueues',
    kind: 'list',
    default: 'default',
    pattern: NAME_PATTERN,
    doc: 'comma-separated queues a worker serves',
  },
  {
    env: 'LEASE_MS',
    key: 'leaseMs',
    kind: 'int',
    default: '5000',
    min: 50,
    max: 3_600_000,
    doc: 'how often a worker renews the lease of each running job',
  },
  {
    env: 'CLAIM_IDLE_MS',
    key: 'claimIdleMs',
    kind: 'int',
    default: '30000',
    min: 200,
    max: 86_400_000,
    doc: 'a job whose lease was not renewed for this long is redelivered (crash detection window)',
  },
  {
    env: 'MAX_DELIVERIES',
    key: 'maxDeliveries',
    kind: 'int',
    default: '5',
    min: 1,
    max: 1000,
    doc: 'crash redeliveries after which a job is dead-lettered as poison',
  },
  {
    env: 'SHUTDOWN_TIMEOUT_MS',
    key: 'shutdownTimeoutMs',
    kind: 'int',
    default: '30000',
    min: 0,
    max: 3_600_000,
    doc: 'on SIGTERM, time running jobs get to finish before they are handed back',
  },
  {
    env: 'COMPLETED_RETENTION_S',
    key: 'completedRetentionS',
    kind: 'int',
    default: '3600',
    min: 0,
    max: 31_536_000,
    doc: 'how long completed and cancelled jobs are kept',
  },
  {
    env: 'FAILED_RETENTION_S',
    key: 'failedRetentionS',
    kind: 'int',
    default: '604800',
    min: 60,
    max: 31_536_000,
    doc: 'how long dead-lettered jobs are kept',
  },
  {
    env: 'IDEMPOTENCY_TTL_S',
    key: 'idempotencyTtlS',
    kind: 'int',
    default: '86400',
    min: 1,
    max: 31_536_000,
    doc: 'how long an idempotency key maps to its job',
  },
  {
    env: 'MAX_PAYLOAD_BYTES',
    key: 'maxPayloadBytes',
    kind: 'int',
    default: '1048576',
    min: 16,
    max: 67_108_864,
    doc: 'largest accepted payload (and stored result), JSON bytes',
  },
  {
    env: 'EVENTS_MAX_LEN',
    key: 'eventsMaxLen',
    kind: 'int',
    default: '10000',
    min: 100,
    max: 10_000_000,
    doc: 'approximate length the lifecycle events stream of a queue is trimmed to',
  },
  {
    env: 'REDIS_COMMAND_TIMEOUT_MS',
    key: 'redisCommandTimeoutMs',
    kind: 'int',
    default: '2000',
    min: 100,
    max: 60_000,
    doc: 'a Redis command not answered in this time fails (503 in the API)',
  },
]

export class ConfigError extends Error {
  readonly problems: string[]
  constructor(problems: string[]) {
    super(`invalid settings: ${problems.join('; ')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

function parseOne(spec: Spec, raw: string): { value?: unknown; problem?: string } {
  const bad = (why: string) => ({ problem: `${spec.env}=${JSON.stringify(raw)} ${why}` })
  switch (spec.kind) {
    case 'int':
    case 'number': {
      if (!/^-?\d+(\.\d+)?$/.test(raw.trim())) return bad('is not a number')
      const n = Number(raw)
      if (spec.kind === 'int' && !Number.isInteger(n)) return bad('is not an integer')
      if (spec.min !== undefined && n < spec.min) return bad(`is below ${spec.min}`)
      if (spec.max !== undefined && n > spec.max) return bad(`is above ${spec.max}`)
      return { value: n }
    }
    case 'enum':
      return spec.values?.includes(raw) ? { value: raw } : bad(`is not one of ${spec.values?.join('|')}`)
    case 'url': {
      try {
        const u = new URL(raw)
        if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
          return bad('must start with redis:// or rediss://')
        return { value: raw }
      } catch {
        return bad('is not a URL')
      }
    }
    case 'list': {
      const items = raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
      if (items.length === 0) return bad('is empty')
      const wrong = items.filter((s) => spec.pattern && !spec.pattern.test(s))
      if (wrong.length) return bad(`has invalid names ${wrong.join(',')} (letters, digits, _ . - only)`)
      return { value: items }
    }
    default:
      if (spec.pattern && !spec.pattern.test(raw))
        return bad('has characters other than letters, digits, _ . -')
      return { value: raw }
  }
}

/** Parses settings from an env-like record; throws ConfigError naming every bad variable. */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  overrides: Partial<Config> = {},
): Config {
  const problems: string[] = []
  const out: Record<string, unknown> = {}
  for (const spec of SETTINGS) {
    const raw = env[spec.env]
    const { value, problem } = parseOne(spec, raw === undefined || raw === '' ? spec.default : raw)
    if (problem) problems.push(problem)
    out[spec.key] = value
  }
  const cfg = { ...out, ...overrides } as Config
  if (!problems.length && cfg.leaseMs * 2 > cfg.claimIdleMs) {
    problems.push(`LEASE_MS (${cfg.leaseMs}) must be at most half of CLAIM_IDLE_MS (${cfg.claimIdleMs})`)
  }
  if (problems.length) throw new ConfigError(problems)
  return Object.freeze(cfg)
}
