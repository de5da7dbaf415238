/** Health, readiness, metrics, stats for the console, and who-am-I for the console's sign-in. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { DtqError } from '../../errors.ts'
import { bearerToken } from '../auth.ts'
import { scrapeMetrics } from '../metrics-scrape.ts'
import { ErrorReply, errorReplies, HealthReply, StatsReply } from '../schemas.ts'

export const systemRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { queue, state, metrics, auth, config } = app.dtq

  app.get(
    '/health/live',
    {
      config: { role: 'public' },
      schema: {
        tags: ['health'],
        summary: 'The process is up (depends on nothing)',
        response: { 200: HealthReply },
      },
    },
    async () => ({ status: 'ok' }),
  )

  app.get(
    '/health/ready',
    {
      config: { role: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Ready for traffic: Redis answers and the process is not draining',
        response: { 200: HealthReply, 503: HealthReply },
      },
    },
    async (_req, reply) => {
      if (state.draining) return reply.code(503).send({ status: 'draining' })
      try {
        await queue.redis.ping()
        return { status: 'ready', redis: 'ok' }
      } catch {
        return reply.code(503).send({ status: 'unavailable', redis: 'unreachable' })
      }
    },
  )

  app.get(
    '/metrics',
    { config: { role: 'read' }, schema: { tags: ['system'], summary: 'Prometheus text', hide: false } },
    async (_req, reply) => {
      const body = await scrapeMetrics(queue, metrics.registry)
      reply.type('text/plain; version=0.0.4; charset=utf-8')
      return body
    },
  )

  app.get(
    '/stats',
    {
      config: { role: 'read' },
      schema: {
        tags: ['system'],
        summary:
          'Counts by state (total and per queue), live workers, and throughput per minute over the last hour',
        response: { 200: StatsReply, ...errorReplies() },
      },
    },
    async () => {
      const [stats, throughput] = await Promise.all([queue.statsWithConsumers(), queue.throughput(60)])
      return { totals: stats.totals, queues: stats.queues, workers: stats.workers.length, throughput }
    },
  )

  app.get(
    '/auth/whoami',
    {
      config: { role: 'read' },
      schema: {
        tags: ['system'],
        summary: 'The role of the presented token, whether the API requires tokens, and its environment',
        response: {
          200: Type.Object({
            role: Type.String(),
            auth_required: Type.Boolean(),
            environment: Type.String(),
          }),
          401: ErrorReply,
        },
      },
    },
    async (req) => {
      const role = auth.required ? auth.roleOf(bearerToken(req.headers.authorization) ?? '') : 'admin'
      if (!role) throw new DtqError('UNAUTHORIZED')
      return { role, auth_required: auth.required, environment: config.environment }
    },
  )
}
