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
  MAX_BUCKETS,
  MAX_RANGE_DAYS,
  type Range,
  readPool,
} from '../../history/analytics.ts'
import { errorReplies, QueueName, TaskType } from '../schemas.ts'

const strict = { additionalProperties: false } as const
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()])
const Ms = (description: string) => Type.Integer({ minimum: 0, maximum: 9_999_999_999_999, description })

const RangeProps = {
  from: Type.Optional(Ms('start of the range, ms since the epoch, inclusive (default: `to` - 7 days)')),
  to: Type.Optional(Ms('end of the range, ms, exclusive (default: now)')),
  queue: Type.Optional(QueueName),
  task_type: Type.Optional(TaskType),
}
const BucketS = Type.Enum(Object.keys(BUCKET_MS) as Bucket[], {
  description: `UTC hours or days; at most ${MAX_BUCKETS} buckets in the range`,
})
const SeriesQuery = Type.Object({ ...RangeProps, bucket: Type.Optional(BucketS) }, strict)
const LatencyQuery = Type.Object(
  {
    ...RangeProps,
    bucket: Type.Optional(BucketS),
    by: Type.Optional(Type.Enum(['task_type'], { description: 'a series per task type too' })),
  },
  strict,
)
const TopQuery = Type.Object(
  { ...RangeProps, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })) },
  strict,
)

const Head = {
  from: Type.Integer(),
  to: Type.Integer(),
}
const SeriesHead = { ...Head, bucket: BucketS, bucket_ms: Type.Integer() }
const Counts = Type.Object({
  at: Type.Number({ description: "the bucket's start, ms" }),
  task_type: Type.String({ description: 'a task type, or (other) for the sum of the less busy ones' }),
  completed: Type.Integer(),
  failed: Type.Integer(),
  cancelled: Type.Integer(),
})
const Rate = Type.Object({
  at: Type.Number(),
  task_type: Type.String(),
  completed: Type.Integer(),
  failed: Type.Integer(),
  rate: Type.Number({ description: 'failed / (completed + failed)' }),
})
const Pcts = Type.Object({
  p50: Nullable(Type.Number()),
  p95: Nullable(Type.Number()),
  p99: Nullable(Type.Number()),
})
const Latency = Type.Object({
  at: Type.Number(),
  task_type: Nullable(Type.String({ description: 'null: all types together' })),
  count: Type.Integer(),
  wait_ms: Pcts,
  run_ms: Pcts,
})
const ErrorClassS = Type.Object({
  error_class: Type.String(),
  count: Type.Integer({ description: 'failed attempts with this class (each retry counts)' }),
  jobs: Type.Integer({ description: 'distinct jobs' }),
  first_seen: Type.Number({ description: 'first failure in the range, ms' }),
  last_seen: Type.Number(),
  example: Nullable(Type.String({ description: 'the latest message (first 1000 characters)' })),
  task_types: Type.Array(Type.String(), { description: 'up to 10' }),
})
const Slow = Type.Object({
  task_type: Type.String(),
  count: Type.Integer(),
  run_ms: Type.Object({ ...Pcts.properties, avg: Nullable(Type.Number()), max: Nullable(Type.Number()) }),
})
const WorkerS = Type.Object({
  worker: Type.String(),
  completed: Type.Integer(),
  failed: Type.Integer(),
  cancelled: Type.Integer(),
  per_hour: Type.Number({ description: 'attempts ended per hour of the range' }),
  failed_per_hour: Type.Number(),
  run_p95_ms: Nullable(Type.Number()),
  first_seen: Type.Number(),
  last_seen: Type.Number(),
})
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
  const head = (r: Range) => ({ from: r.from, to: r.to })
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

  app.get(
    '/analytics/throughput',
    opts('Jobs ended per bucket and task type, by state', SeriesQuery, reply(SeriesHead, Counts)),
    async (req) => {
      const r = range(req.query as Q)
      const items = await run((a) => a.throughput(r, r.bucket))
      return { ...head(r), bucket: r.bucket, bucket_ms: BUCKET_MS[r.bucket], items }
    },
  )

  app.get(
    '/analytics/failure-rate',
    opts('Failed / (completed + failed) per bucket and task type', SeriesQuery, reply(SeriesHead, Rate)),
    async (req) => {
      const r = range(req.query as Q)
      const rows = await run((a) => a.throughput(r, r.bucket))
      const items = rows
        .filter((x) => x.completed + x.failed > 0)
        .map((x) => ({
          at: x.at,
          task_type: x.task_type,
          completed: x.completed,
          failed: x.failed,
          rate: x.failed / (x.completed + x.failed),
        }))
      return { ...head(r), bucket: r.bucket, bucket_ms: BUCKET_MS[r.bucket], items }
    },
  )

  app.get(
    '/analytics/latency',
    opts(
      'Wait and run time p50/p95/p99 per bucket (per task type with by=task_type)',
      LatencyQuery,
      reply(SeriesHead, Latency),
    ),
    async (req) => {
      const q = req.query as Q
      const r = range(q)
      const items = await run((a) => a.latency(r, r.bucket, q.by === 'task_type'))
      return { ...head(r), bucket: r.bucket, bucket_ms: BUCKET_MS[r.bucket], items }
    },
  )

  app.get(
    '/analytics/errors',
    opts(
      'Top error classes of failed attempts, with first and last seen',
      TopQuery,
      reply(Head, ErrorClassS),
    ),
    async (req) => {
      const q = req.query as Q
      const r = range(q)
      return { ...head(r), items: await run((a) => a.errors(r, q.limit ?? 20)) }
    },
  )

  app.get(
    '/analytics/slowest',
    opts('Task types by p95 run time, slowest first', TopQuery, reply(Head, Slow)),
    async (req) => {
      const q = req.query as Q
      const r = range(q)
      return { ...head(r), items: await run((a) => a.slowest(r, q.limit ?? 20)) }
    },
  )

  app.get(
    '/analytics/workers',
    opts('Attempts per worker by outcome, and their rate per hour', TopQuery, reply(Head, WorkerS)),
    async (req) => {
      const q = req.query as Q
      const r = range(q)
      const hours = (r.to - r.from) / 3_600_000
      const rows = await run((a) => a.workers(r, q.limit ?? 50))
      const items = rows.map((w) => ({
        ...w,
        per_hour: Math.round(((w.completed + w.failed + w.cancelled) / hours) * 100) / 100,
        failed_per_hour: Math.round((w.failed / hours) * 100) / 100,
      }))
      return { ...head(r), items }
    },
  )
}
