/**
 * Redis connections. Commands fail fast when Redis is away (no offline queue, a command
 * timeout) so callers answer 503 or retry on their own schedule instead of hanging; the
 * client reconnects forever in the background.
 */
import { Redis, type RedisOptions } from 'ioredis'

export interface ConnectionOptions {
  url: string
  commandTimeoutMs: number
  /** For blocking reads: the timeout must outlast the BLOCK time. */
  blocking?: boolean
  name?: string
}

export function createRedis(opts: ConnectionOptions): Redis {
  const options: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: Math.max(opts.commandTimeoutMs, 1000),
    enableAutoPipelining: !opts.blocking,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
    lazyConnect: true,
    connectionName: opts.name,
  }
  const redis = new Redis(opts.url, options)
  // Errors surface on the commands; the connection-level event would otherwise crash the process.
  redis.on('error', () => {})
  dropLinkOnTimeout(redis)
  restartStalledHandshake(redis, Math.max(opts.commandTimeoutMs, 1000))
  return redis
}

/**
 * Drops the link and reconnects. The client ends its socket gracefully, which on a dead link
 * (FIN never acknowledged) can take long: the socket is destroyed if it has not closed soon.
 */
function dropLink(redis: Redis): void {
  const stream = redis.stream
  redis.disconnect(true)
  setTimeout(() => {
    if (stream && !stream.destroyed) stream.destroy()
  }, 250).unref()
}

/**
 * A connection whose socket opened but whose handshake (CLIENT SETNAME, the ready check) is
 * never answered -- made during a network black hole -- would wait for ever: the client has no
 * timeout there. Found by the chaos suite (a worker stuck after the link healed). If the client
 * is not ready `ms` after its socket connected, the attempt is dropped and a fresh one made.
 */
function restartStalledHandshake(redis: Redis, ms: number): void {
  let timer: NodeJS.Timeout | undefined
  redis.on('connect', () => {
    clearTimeout(timer)
    timer = setTimeout(() => {
      if (redis.status !== 'ready' && redis.status !== 'end') dropLink(redis)
    }, ms)
    timer.unref()
  })
  redis.on('ready', () => clearTimeout(timer))
  redis.on('end', () => clearTimeout(timer))
}

/**
 * A command that timed out may still be answered later, and RESP matches replies to commands
 * by order: on a link that stalled and healed, every later reply would go to the wrong
 * command. So a timeout condemns the connection: it is dropped and a fresh one is made.
 */
function dropLinkOnTimeout(redis: Redis): void {
  const send = redis.sendCommand.bind(redis)
  let dropping = false
  redis.sendCommand = ((command: { promise: Promise<unknown> }, ...rest: unknown[]) => {
    const result = (send as (...a: unknown[]) => unknown)(command, ...rest)
    command.promise?.catch((err: Error) => {
      if (err?.message === 'Command timed out' && !dropping && redis.status === 'ready') {
        dropping = true
        dropLink(redis)
        setTimeout(() => {
          dropping = false
        }, 100)
      }
    })
    return result
  }) as typeof redis.sendCommand
}

/** Connects and waits until the client is ready, retrying until `timeoutMs`. */
export async function connectRedis(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return
  const deadline = Date.now() + timeoutMs
  if (redis.status === 'wait') {
    redis.connect().catch(() => {})
  }
  const ready = () => redis.status === 'ready'
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`Redis not reachable after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** True for errors that mean "Redis is not reachable right now" (worth retrying), not a refusal. */
export function isRedisUnavailable(err: unknown): boolean {
  const m = err instanceof Error ? err.message : String(err)
  return /Stream isn't writeable|Connection is closed|Command timed out|ECONNREFUSED|ECONNRESET|EPIPE|not reachable|^LOADING|^BUSY/.test(
    m,
  )
}

/**
 * Runs `step` until it succeeds, retrying while Redis is unavailable (with backoff, up to
 * `timeoutMs`); other errors are thrown at once. For start-up steps: a process that starts
 * during a Redis outage waits it out instead of exiting.
 */
export async function whenRedisAvailable<T>(
  step: () => Promise<T>,
  timeoutMs = 60_000,
  onRetry?: (err: Error) => void,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (let attempt = 0; ; attempt++) {
    try {
      return await step()
    } catch (err) {
      if (!isRedisUnavailable(err) || Date.now() > deadline) throw err
      onRetry?.(err as Error)
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** Math.min(attempt, 5), 2000)))
    }
  }
}
