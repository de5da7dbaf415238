/** Builds the API over a test bundle (real Redis, unique prefix). */
import type { FastifyInstance } from 'fastify'
import type { Config } from '../src/config.ts'
import { buildApp } from '../src/http/app.ts'
import { createRedis, redisTarget } from '../src/redis/connection.ts'
import type { Clock } from '../src/redis/store.ts'
import { type Bundle, setup } from './helpers.ts'

export const TOKENS = {
  read: 'read-token-0123456789',
  write: 'write-token-0123456789',
  admin: 'admin-token-0123456789',
}
export const TOKEN_SETTING = Object.entries(TOKENS)
  .map(([role, t]) => `${t}:${role}`)
  .join(',')

export interface ApiBundle extends Bundle {
  app: FastifyInstance
}

export async function apiSetup(
  config: Partial<Config> = {},
  opts: { logger?: unknown; requestTimeoutMs?: number; url?: string; clock?: Clock } = {},
): Promise<ApiBundle> {
  const b = await setup({ config: { rateLimitPerMin: 0, ...config }, url: opts.url, clock: opts.clock })
  const blocking = createRedis({ target: redisTarget(b.config), commandTimeoutMs: 4000, blocking: true })
  const app = await buildApp({
    config: b.config,
    queue: b.queue,
    blocking,
    logger: opts.logger as never,
    requestTimeoutMs: opts.requestTimeoutMs,
  })
  await app.ready()
  const cleanup = b.cleanup
  return {
    ...b,
    app,
    async cleanup() {
      await app.close()
      blocking.disconnect()
      await cleanup()
    },
  }
}

export const bearer = (role: keyof typeof TOKENS) => ({ authorization: `Bearer ${TOKENS[role]}` })
