/** The dashboard's charts over 1, 6 or 24 hours: throughput and run/wait latency per interval (ADR 0026). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { HISTORY_RANGES } from '../../redis/history.ts'
import { errorReplies, QueueName } from '../schemas.ts'

const Nullable = <T extends ReturnType<typeof Type.Object>>(t: T) => Type.Union([t, Type.Null()])
const LatencyS = Type.Object({
  count: Type.Integer({ description: 'attempts observed in the interval' }),
  p50: Type.Number(),
  p95: Type.Number(),
  p99: Type.Number(),
})

export const HistoryQuery = Type.Object(
  {
    range: Type.Optional(Type.Enum(Object.keys(HISTORY_RANGES) as Array<keyof typeof HISTORY_RANGES>)),
    queue: Type.Optional(QueueName),
  },
  { additionalProperties: false },
)

export const HistoryReply = Type.Object({
  range: Type.String(),
  queue: Type.Union([Type.String(), Type.Null()]),
  step_ms: Type.Integer({ description: "each point's interval" }),
  points: Type.Array(
    Type.Object({
      at: Type.Number({ description: "the interval's start (ms)" }),
      completed: Type.Integer(),
      failed: Type.Integer(),
      wait: Nullable(LatencyS),
      run: Nullable(LatencyS),
    }),
  ),
})

export const historyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { queue } = app.dtq
  app.get(
    '/stats/history',
    {
      config: { role: 'read' },
      schema: {
        tags: ['system'],
        summary:
          'Completed and failed per interval, and wait/run latency p50/p95/p99 (ms) per interval, over 1h ' +
          '(1-minute points), 6h (5-minute) or 24h (15-minute), of one queue or all. Latency is null ' +
          'before the first histogram snapshot (taken each minute by the maintenance leader)',
        querystring: HistoryQuery,
        response: { 200: HistoryReply, ...errorReplies() },
      },
    },
    async (req) => queue.statsHistory(req.query.range ?? '1h', req.query.queue),
  )
}
