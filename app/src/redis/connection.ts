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
  return redis
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
        redis.disconnect(true)
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
