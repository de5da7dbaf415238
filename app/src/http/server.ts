/**
 * `dtq api`: listens, and on SIGTERM drains in order:
 *  1. readiness goes false (/health/ready answers 503) so the load balancer stops sending;
 *  2. the API keeps serving for API_DRAIN_DELAY_MS (requests already routed here succeed);
 *  3. the server closes (no new connections, in-flight requests finish, SSE streams end);
 *  4. Redis connections close.
 */
import type { FastifyInstance } from 'fastify'
import { type Config, ConfigError } from '../config.ts'
import { logMixin } from '../logger.ts'
import { Queue } from '../queue/queue.ts'
import { connectRedis, createRedis, redisTarget } from '../redis/connection.ts'
import { checkDurability } from '../redis/durability.ts'
import { buildApp } from './app.ts'

export function assertApiConfig(config: Config): void {
  if (config.environment === 'production' && !config.apiTokens && !config.authDisabled) {
    throw new ConfigError([
      'API_TOKENS is empty with ENVIRONMENT=production: set tokens, or AUTH_DISABLED=true to run without auth on purpose',
    ])
  }
}

export interface RunningApi {
  app: FastifyInstance
  url: string
  /** Drain and close (what SIGTERM does). */
  stop(): Promise<void>
  /** Where stop() is: what a forced exit (invariant 35) says it abandoned. */
  readonly step: () => string
  /** Cuts the Redis connections at once (the process's shutdown budget is spent). */
  abandon(): void
  /**
   * The Redis durability check (REDIS_DURABILITY): made at start when Redis answered then, else
   * when it first does. Rejects with the ConfigError an `enforce` check refused with -- a
   * process serving the API on such a Redis must stop (runApi exits).
   */
  durability: Promise<void>
}

export async function startApi(
  config: Config,
  opts: {
    port?: number
    host?: string
    consoleDir?: string
  } = {},
): Promise<RunningApi> {
  assertApiConfig(config)
  const redis = createRedis({
    target: redisTarget(config),
    commandTimeoutMs: config.redisCommandTimeoutMs,
    name: 'dtq-api',
  })
  const blocking = createRedis({
    target: redisTarget(config),
    commandTimeoutMs: config.redisCommandTimeoutMs + 2000,
    blocking: true,
    name: 'dtq-api-events',
  })
  // Start even when Redis is away: readiness says so, requests answer 503, and the client reconnects.
  const reachable = await connectRedis(redis, 3000).then(
    () => true,
    () => false,
  )
  const warn = (m: string) => process.stderr.write(`dtq api: ${m}\n`)
  if (reachable) await checkDurability(redis, config, warn)
  // Redis away at start: checked once it answers (a Redis without AOF is refused then too).
  const durability = reachable
    ? Promise.resolve()
    : new Promise<void>((resolve, reject) => {
        redis.once('ready', () => checkDurability(redis, config, warn).then(resolve, reject))
      })
  durability.catch(() => {}) // a library caller may not look; runApi does
  const queue = new Queue(redis, config)
  const app = await buildApp({
    config,
    queue,
    blocking,
    logger: { level: config.logLevel, mixin: logMixin },
    consoleDir: opts.consoleDir,
  })
  const address = await app.listen({ port: opts.port ?? config.port, host: opts.host ?? '0.0.0.0' })
  let stopping: Promise<void> | undefined
  let step = 'serving'
  const abandon = () => {
    redis.disconnect()
    blocking.disconnect()
  }
  const stop = () => {
    stopping ??= (async () => {
      app.dtq.state.draining = true
      step = 'drain delay'
      app.log.info({ delayMs: config.apiDrainDelayMs }, 'draining: readiness is false, still serving')
      await new Promise((r) => setTimeout(r, config.apiDrainDelayMs))
      step = 'closing (requests in flight)'
      await app.close()
      step = 'closed'
      abandon()
    })()
    return stopping
  }
  return { app, url: address, stop, step: () => step, abandon, durability }
}
