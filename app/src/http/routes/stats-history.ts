/**
 * The dashboard's charts over 1, 6 or 24 hours: throughput and run/wait latency per interval (ADR
 * 0026); what is failing now (ADR 0032).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { FailuresQuery, FailuresReply, HistoryQuery, HistoryReply } from '../ops-schemas.ts'
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
          'before the first histogram snapshot (taken each minute by the maintenance leader). With task_type: that ' +
          "type's completed and failed from the per-type totals snapshotted with the histograms (per minute at most), latency null",
        querystring: HistoryQuery,
        response: { 200: HistoryReply, ...errorReplies() },
      },
    },
    async (req) => queue.statsHistory(req.query.range ?? '1h', req.query.queue, req.query.task_type),
  )

  app.get(
    '/stats/failures',
    {
      config: { role: 'read' },
      schema: {
        tags: ['system'],
        summary:
          'What is failing now: the dead letters of the last N minutes grouped by queue, task type and error class (top `limit`, with the newest message), and per queue the completed and failed jobs of those minutes',
        description:
          'Bounded: at most 2000 dead letters per queue are examined (then `truncated`); the window is the last N minute buckets, the current one included. A retried attempt is not a failure here (only jobs that ended failed).',
        querystring: FailuresQuery,
        response: { 200: FailuresReply, ...errorReplies() },
      },
    },
    async (req) => queue.recentFailures(req.query),
  )
}
