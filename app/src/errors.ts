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

/** True for the errors ioredis raises when Redis cannot be reached or does not answer in time. */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const m = err.message
  return (
    m.includes('Command timed out') ||
    m.includes("Stream isn't writeable") ||
    m.includes('Connection is closed') ||
    m.includes('ECONNREFUSED') ||
    m.includes('ECONNRESET') ||
    m.includes('MaxRetriesPerRequestError') ||
    m.includes('LOADING') ||
    m.includes('OOM command not allowed') ||
    err.name === 'MaxRetriesPerRequestError'
  )
}
