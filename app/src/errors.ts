/**
 * The one list of error codes. Every error DTQ raises on purpose is a DtqError with one of
 * these codes; the HTTP layer maps `status` to the reply and never leaks anything else.
 */
export const ErrorCodes = {
  VALIDATION: { status: 400, message: 'invalid input' },
  BAD_REQUEST: { status: 400, message: 'the request is malformed' },
  REQUEST_TIMEOUT: { status: 408, message: 'the request did not arrive whole in time' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'payload too large' },
  URI_TOO_LONG: { status: 414, message: 'the URL is too long' },
  HEADERS_TOO_LARGE: { status: 431, message: 'the request headers are too large' },
  NOT_FOUND: { status: 404, message: 'not found' },
  INVALID_STATE: { status: 409, message: 'the job is not in a state that allows this' },
  AMBIGUOUS_JOB_ID: { status: 409, message: 'the job id names jobs in more than one queue: give the queue' },
  PARTITIONED_QUEUE: { status: 409, message: 'not for a partitioned queue' },
  CREATED_INDEX_OFF: {
    status: 409,
    message:
      "the queue's created-time index is not on: an admin turns it on with PUT /queues/{queue}/created-index {on: true} (or `dtq queues created-index <queue> on`), then it builds",
  },
  QUEUE_LIMIT: { status: 409, message: 'the number of queues is at its limit (MAX_QUEUES)' },
  QUEUE_FULL: { status: 429, message: 'queue depth limit reached' },
  RATE_LIMITED: { status: 429, message: 'too many requests' },
  TOO_MANY_STREAMS: { status: 429, message: 'too many open event streams for this client' },
  STREAMS_FULL: { status: 503, message: 'this instance serves as many event streams as it may' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'unsupported content type' },
  UNAUTHORIZED: { status: 401, message: 'missing or invalid token' },
  FORBIDDEN: { status: 403, message: 'the token role does not allow this' },
  HOST_NOT_ALLOWED: { status: 421, message: 'this server does not answer to that Host' },
  REDIS_UNAVAILABLE: { status: 503, message: 'Redis is unavailable' },
  REDIS_OUT_OF_MEMORY: {
    status: 503,
    message: 'Redis is at its maxmemory and takes no new work for now; jobs in flight go on',
  },
  REPLICATION_TIMEOUT: {
    status: 503,
    message:
      'the write reached the primary but not enough replicas in time (ENQUEUE_WAIT_REPLICAS): it may or may not survive a failover; send it again with the same job_id or idempotency_key',
  },
  HISTORY_DISABLED: {
    status: 409,
    message:
      'the history is not configured: set DATABASE_URL (PostgreSQL) on the API and run `dtq archiver` (README, "History")',
  },
  HISTORY_UNAVAILABLE: { status: 503, message: 'the history (PostgreSQL) cannot answer right now' },
  DRAINING: { status: 503, message: 'the process is shutting down' },
  CONFIG: { status: 500, message: 'invalid configuration' },
  INTERNAL: { status: 500, message: 'internal error' },
} as const

export type ErrorCode = keyof typeof ErrorCodes

export class DtqError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly details: unknown

  constructor(code: ErrorCode, message?: string, details?: unknown) {
    super(message ?? ErrorCodes[code].message)
    this.name = 'DtqError'
    this.code = code
    this.status = ErrorCodes[code].status
    this.details = details
  }
}

export function validationError(message: string, details?: unknown): DtqError {
  return new DtqError('VALIDATION', message, details)
}

/** Thrown by a handler to fail the job at once, skipping the remaining retries (goes to the DLQ). */
export class PermanentJobError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'PermanentJobError'
  }
}

/** Thrown by a handler to be retried after `delayMs` instead of the computed backoff. */
export class RetryJobError extends Error {
  readonly delayMs: number
  constructor(message: string, delayMs: number) {
    super(message)
    this.name = 'RetryJobError'
    this.delayMs = delayMs
  }
}

/**
 * Thrown by a handler whose upstream refused it for now (an HTTP 429 and its Retry-After): the
 * job's task type is paused in its queue for `pauseMs` across the fleet, and this job waits for
 * it without losing the attempt (docs/decisions/0022).
 */
export class RateLimitedError extends Error {
  readonly pauseMs: number
  constructor(message: string, pauseMs: number) {
    super(message)
    this.name = 'RateLimitedError'
    this.pauseMs = pauseMs
  }
}

/**
 * Thrown by a handler (or `ctx.snooze(ms)`) to put its job off for `delayMs` without using an
 * attempt: it goes back to `scheduled`, its snooze count goes up (ADR 0021).
 */
export class SnoozeJob extends Error {
  readonly delayMs: number
  constructor(delayMs: number, message = `snoozed for ${delayMs} ms`) {
    super(message)
    this.name = 'SnoozeJob'
    this.delayMs = delayMs
  }
}

/** The reason a job's AbortSignal fires; handlers may inspect `ctx.signal.reason`. */
export class JobAbortedError extends Error {
  readonly reason: 'cancelled' | 'timeout' | 'lease_lost' | 'shutdown'
  constructor(reason: JobAbortedError['reason'], message: string) {
    super(message)
    this.name = 'JobAbortedError'
    this.reason = reason
  }
}

/** True for Redis's refusal of a write at maxmemory (noeviction). */
export function isRedisFull(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('OOM ')
}

/**
 * Errors that mean "Redis cannot answer right now" -- worth retrying, never a refusal of the
 * command itself: the link is down or timed out, the server is loading or busy, a Cluster is
 * re-forming (a failover, a slot moving: a MOVED or ASK the client could not follow) or a
 * Sentinel failover is under way.
 */
const UNREACHABLE =
  /Stream isn't writeable|Connection is closed|Command aborted due to connection close|Command timed out|^MOVED |^ASK |ECONNREFUSED|ECONNRESET|EPIPE|not reachable|MaxRetriesPerRequestError|^LOADING|^BUSY |^CLUSTERDOWN|^TRYAGAIN|^MASTERDOWN|^READONLY|Cluster isn't ready|Too many Cluster redirections|Failed to refresh slots cache|None of startup nodes is available|All sentinels are unreachable/

/** True when Redis cannot be reached or does not answer in time (worth retrying). */
export function isRedisUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  return UNREACHABLE.test(err.message) || err.name === 'MaxRetriesPerRequestError'
}

/** True for the errors that make the API answer 503: Redis unreachable, or refusing writes at maxmemory. */
export function isRedisUnavailable(err: unknown): boolean {
  return isRedisUnreachable(err) || (err instanceof Error && err.message.includes('OOM command not allowed'))
}

/** The longest error class kept; longer ones are cut (a label must stay bounded). */
const ERROR_CLASS_MAX = 64

/**
 * A failure's error class: a bounded label for metrics, alerts and DLQ grouping (never the
 * message, whose cardinality is unbounded). The error's `code` when it is a short identifier
 * (ECONNREFUSED, ETIMEDOUT), else its `name` (TypeError, TimeoutError, a handler's own class),
 * else for a plain Error the kind its message begins with ("ETIMEDOUT: x", "TypeError: x") when
 * that is an error code (capitals, digits, `_`) or a class name ending in Error or Exception —
 * any other prefix is the message's own text ("tenant_42: quota"), not a label —, else "Error";
 * anything but [A-Za-z0-9_.:-] is dropped and the result cut to 64 characters.
 */
export function errorClass(err: unknown): string {
  const clean = (v: unknown) =>
    typeof v === 'string' ? v.replace(/[^A-Za-z0-9_.:-]/g, '').slice(0, ERROR_CLASS_MAX) : ''
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; name?: unknown; constructor?: { name?: unknown } }
    const code = clean(e.code)
    if (code && /^[A-Z][A-Z0-9_]{2,}$/.test(code)) return code
    const name = clean(e.name)
    if (name && name !== 'Error') return name
    const ctor = clean(e.constructor?.name)
    if (ctor && ctor !== 'Error' && ctor !== 'Object') return ctor
    // A plain Error whose message names its kind ("ETIMEDOUT: upstream", "TypeError: x"): that
    // name, as error_class() in scripts/lib/8-dlq.lua reads older records.
    const named = messageKind(typeof (err as Error).message === 'string' ? (err as Error).message : '')
    if (named) return named
  }
  return 'Error'
}

/** The kind a message begins with ("ECONNRESET: …", "TypeError: …"), or null (lib/8-dlq.lua's rule). */
export function messageKind(message: string): string | null {
  const named = /^([A-Za-z_][\w.]*):/.exec(message)?.[1]
  if (!named || named.length > ERROR_CLASS_MAX) return null
  return /^[A-Z][A-Z0-9_]{2,}$/.test(named) || /^[A-Z][\w.]*(Error|Exception)$/.test(named) ? named : null
}
