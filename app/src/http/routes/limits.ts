/** Flow control (docs/decisions/0022): a queue's limits, their live state, and its breakers by hand. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { BreakerBody, BreakerParams, errorReplies, LimitsBody, LimitsReply, QueueParams } from '../schemas.ts'

const errors = errorReplies(404, 409)

export const limitRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { queue } = app.dtq

  app.get(
    '/queues/:queue/limits',
    {
      config: { role: 'read' },
      schema: {
        tags: ['limits'],
        summary: "A queue's limits and what they are doing now: running, held, breakers, paused types",
        params: QueueParams,
        response: { 200: LimitsReply, ...errors },
      },
    },
    async (req) => queue.getLimits(req.params.queue),
  )

  app.put(
    '/queues/:queue/limits',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['limits'],
        summary: "Replace a queue's limits ({} removes them)",
        description:
          'Enforced in Redis where jobs start, across every worker: a rate limit (a burst of `limit`, then one every window_ms/limit; jobs over it wait scheduled, they never fail or use an attempt), a fleet-wide concurrency cap, per partition_key concurrency (1: FIFO per key, a retry keeps its place; keys are served in turn), and per task type (in this queue) rate, concurrency and a circuit breaker (after `failures` consecutive failed attempts its jobs wait for `cooldown_ms`, then one probe runs; its success closes it). A job over a concurrency limit waits in state `held`. A lowered or removed limit lets held jobs go at once. Not for a partitioned queue (409 PARTITIONED_QUEUE).',
        params: QueueParams,
        body: LimitsBody,
        response: { 200: LimitsReply, ...errors },
      },
    },
    async (req) => queue.setLimits(req.params.queue, req.body),
  )

  app.post(
    '/queues/:queue/breakers/:type',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['limits'],
        summary: "Open, close or reset a task type's circuit breaker in a queue",
        description:
          "open: the type's jobs wait (scheduled) for open_ms (default: its cool-down), then one probe runs; close: they run again (a pause from a handler's 429 ends too); reset: its state is forgotten.",
        params: BreakerParams,
        body: BreakerBody,
        response: { 200: LimitsReply, ...errors },
      },
    },
    async (req) => queue.breaker(req.params.queue, req.params.type, req.body.action, req.body.open_ms ?? 0),
  )
}
