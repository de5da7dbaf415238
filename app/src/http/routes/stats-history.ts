/** The dashboard's charts over 1, 6 or 24 hours: throughput and run/wait latency per interval (ADR 0026). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { HistoryQuery, HistoryReply } from '../ops-schemas.ts'
import { errorReplies } from '../schemas.ts'

export const statsHistoryRoutes: FastifyPluginAsyncTypebox = async (app) => {
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
