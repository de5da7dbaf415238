/**
 * GET /analytics/* (ADR 0030): aggregates over the history in PostgreSQL (ADR 0027). Read-only,
 * role read. Without DATABASE_URL every route answers 409 HISTORY_DISABLED (the console says
 * how to enable the history); PostgreSQL away, slow (15 s statement timeout) or not migrated
 * yet answers 503 HISTORY_UNAVAILABLE. Ranges are bounded (history/analytics.ts, checkRange).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type, { type TSchema } from 'typebox'
import { DtqError } from '../../errors.ts'
import {
  Analytics,
  BUCKET_MS,
  type Bucket,
  checkRange,
  historyError,
  MAX_RANGE_DAYS,
  type Range,
  readPool,
} from '../../history/analytics.ts'
import {
  Counts,
  ErrorClassS,
  Head,
  Latency,
  LatencyQuery,
  Rate,
  SeriesHead,
  SeriesQuery,
  Slow,
  TopQuery,
  WorkerS,
} from '../analytics-schemas.ts'
import { errorReplies } from '../schemas.ts'

/** The query of any analytics route, as validated by its schema. */
type Q = Parameters<typeof checkRange>[0] & { limit?: number; by?: string }
const reply = <T extends TSchema>(head: Record<string, TSchema>, item: T) =>
  ({ 200: Type.Object({ ...head, items: Type.Array(item) }), ...errorReplies(409) }) as const

export const analyticsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, queue } = app.dtq
  let analytics: Analytics | null = null
  const db = (): Analytics => {
    if (!config.databaseUrl) throw new DtqError('HISTORY_DISABLED')
    analytics ??= new Analytics(readPool(config.databaseUrl), config.historySchema)
    return analytics
  }
  app.addHook('onClose', async () => {
    await analytics?.pool.end().catch(() => {})
  })
  const range = (q: Parameters<typeof checkRange>[0]) => checkRange(q, queue.store.clock.now())
  /** Runs a query with PostgreSQL's failures as 503 HISTORY_UNAVAILABLE. */
  const run = async <T>(f: (a: Analytics) => Promise<T>): Promise<T> => {
    const a = db()
    try {
      return await f(a)
    } catch (err) {
      throw historyError(err)
    }
  }
  const opts = (summary: string, querystring: TSchema, response: ReturnType<typeof reply>) => ({
    config: { role: 'read' as const },
    schema: {
      tags: ['analytics'],
      summary,
      description: `Over the history (DATABASE_URL); the range is [from, to), at most ${MAX_RANGE_DAYS} days.`,
      querystring,
      response,
    },
  })
  /** A route answering a series per bucket: `{from, to, bucket, bucket_ms, items}`. */
  const series = <T extends TSchema>(
    path: string,
    summary: string,
    query: TSchema,
    item: T,
    items: (a: Analytics, r: Range & { bucket: Bucket }, q: Q) => Promise<unknown[]>,
  ) =>
    app.get(`/analytics/${path}`, opts(summary, query, reply(SeriesHead, item)), async (req) => {
      const q = req.query as Q
      const r = range(q)
      const rows = await run((a) => items(a, r, q))
      return {
        from: r.from,
        to: r.to,
        bucket: r.bucket,
        bucket_ms: BUCKET_MS[r.bucket],
        items: rows as never,
      }
    })
  /** A route answering a top list: `{from, to, items}`, `limit` items at most. */
  const top = <T extends TSchema>(
    path: string,
    summary: string,
    item: T,
    limit: number,
    items: (a: Analytics, r: Range, limit: number) => Promise<unknown[]>,
  ) =>
    app.get(`/analytics/${path}`, opts(summary, TopQuery, reply(Head, item)), async (req) => {
      const q = req.query as Q
      const r = range(q)
      return { from: r.from, to: r.to, items: (await run((a) => items(a, r, q.limit ?? limit))) as never }
    })

  series('throughput', 'Jobs ended per bucket and task type, by state', SeriesQuery, Counts, (a, r) =>
    a.throughput(r, r.bucket),
  )
  series(
    'failure-rate',
    'Failed / (completed + failed) per bucket and task type',
    SeriesQuery,
    Rate,
    async (a, r) =>
      (await a.throughput(r, r.bucket))
        .filter((x) => x.completed + x.failed > 0)
        .map((x) => ({
          at: x.at,
          task_type: x.task_type,
          completed: x.completed,
          failed: x.failed,
          rate: x.failed / (x.completed + x.failed),
        })),
  )
  series(
    'latency',
    'Wait and run time p50/p95/p99 per bucket (per task type with by=task_type)',
    LatencyQuery,
    Latency,
    (a, r, q) => a.latency(r, r.bucket, q.by === 'task_type'),
  )
  top(
    'errors',
    'Top error classes of failed attempts, with first and last seen',
    ErrorClassS,
    20,
    (a, r, n) => a.errors(r, n),
  )
  top('slowest', 'Task types by p95 run time, slowest first', Slow, 20, (a, r, n) => a.slowest(r, n))
  top('workers', 'Attempts per worker by outcome, and their rate per hour', WorkerS, 50, async (a, r, n) => {
    const hours = (r.to - r.from) / 3_600_000
    const per = (k: number) => Math.round((k / hours) * 100) / 100
    return (await a.workers(r, n)).map((w) => ({
      ...w,
      per_hour: per(w.completed + w.failed + w.cancelled),
      failed_per_hour: per(w.failed),
    }))
  })
}
