/**
 * Dead letters: list with filters (seed 004's per-priority views /dlq/high|normal|low too), exact
 * counts by queue × type × priority × error class, retry one, retry many at a rate (as a job),
 * delete, purge (by age and priority).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import Type, { type Static } from 'typebox'
import { DtqError } from '../../errors.ts'
import { PRIORITIES } from '../../queue/job.ts'
import { DLQ_RETRY_TASK, type DlqRetryPayload } from '../../queue/system-tasks.ts'
import {
  CountReply,
  DlqPage,
  DlqQuery,
  DlqRetryMany,
  DlqRetryManyReply,
  DlqStatsQuery,
  DlqStatsReply,
  errorReplies,
  IdParams,
  JobS,
  PurgeQuery,
  QueueQuery,
} from '../schemas.ts'

const errors = errorReplies(404, 409)
const DAY = 86_400_000

/**
 * A preValidation hook: these query parameters, when present, must not be empty. The query's
 * coercion reads `?older_than_days=` as 0 -- for DELETE /dlq, "purge everything".
 */
function notEmpty(...names: string[]) {
  return async (req: FastifyRequest) => {
    const q = req.query as Record<string, unknown>
    for (const n of names) {
      if (typeof q[n] === 'string' && q[n].trim() === '')
        throw new DtqError('VALIDATION', `${n} is empty: give a number (0 is every age)`)
    }
  }
}

const { max: _max, ...retryFields } = DlqRetryMany.properties
const SeedRetryAll = Type.Object(
  { ...retryFields, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })) },
  { additionalProperties: false },
)
const { error: _error, older_than_days: _days, ...searchFields } = DlqQuery.properties
const SeedSearch = Type.Object(
  { ...searchFields, error_contains: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })) },
  { additionalProperties: false },
)

export const dlqRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { queue, config } = app.dtq

  const list = async (q: Static<typeof DlqQuery>) =>
    queue.listDlq({
      queue: q.queue,
      task_type: q.task_type,
      priority: q.priority,
      error_class: q.error_class,
      error_contains: q.error,
      older_than_ms: q.older_than_days === undefined ? undefined : Math.round(q.older_than_days * DAY),
      cursor: q.cursor,
      limit: q.limit ?? 50,
    })

  app.get(
    '/dlq',
    {
      config: { role: 'read' },
      schema: {
        tags: ['dlq'],
        summary: 'Dead-lettered jobs, newest first; filter by queue, type, priority, error text, age',
        querystring: DlqQuery,
        response: { 200: DlqPage, ...errors },
      },
      preValidation: notEmpty('older_than_days'),
    },
    async (req) => list(req.query),
  )

  // Seed 004's per-priority views: GET /dlq/high is GET /dlq?priority=high.
  const { priority: _, ...byPriority } = DlqQuery.properties
  const ByPriorityQuery = Type.Object(byPriority, { additionalProperties: false })
  for (const priority of PRIORITIES) {
    app.get(
      `/dlq/${priority}`,
      {
        config: { role: 'read' },
        schema: {
          tags: ['dlq'],
          summary: `Dead-lettered jobs of priority ${priority} (GET /dlq?priority=${priority})`,
          querystring: ByPriorityQuery,
          response: { 200: DlqPage, ...errors },
        },
        preValidation: notEmpty('older_than_days'),
      },
      async (req) => list({ ...req.query, priority }),
    )
  }

  app.get(
    '/dlq/stats',
    {
      config: { role: 'read' },
      schema: {
        tags: ['dlq'],
        summary:
          'Dead letters counted by queue × task type × priority × error class, exact over the whole DLQ ' +
          '(computed in Redis, in pages; largest groups first)',
        querystring: DlqStatsQuery,
        response: { 200: DlqStatsReply, ...errors },
      },
    },
    async (req) => {
      const { groups, total } = await queue.dlqStats(req.query)
      return { groups, total }
    },
  )

  app.post(
    '/dlq/:id/retry',
    {
      config: { role: 'write' },
      schema: {
        tags: ['dlq'],
        summary: 'Retry one dead-lettered job (fresh retries; 409 when the id needs its ?queue=)',
        params: IdParams,
        querystring: QueueQuery,
        response: { 200: JobS, ...errors },
      },
    },
    async (req) => {
      const job = await queue.getJobOrThrow(req.params.id, req.query.queue)
      if (job.state !== 'failed')
        throw new DtqError('INVALID_STATE', `job ${job.id} is ${job.state}, not in the DLQ`)
      return queue.retry(job.id, job.queue)
    },
  )

  /** Starts a redrive of what matches, now in the DLQ (its bounds travel in the job). */
  const retryMany = async (b: Static<typeof DlqRetryMany>) => {
    const payload: DlqRetryPayload = {
      filter: {
        queue: b.queue,
        task_type: b.task_type,
        priority: b.priority,
        error_contains: b.error,
        older_than_ms: b.older_than_days === undefined ? undefined : Math.round(b.older_than_days * DAY),
      },
      rate_per_sec: b.rate_per_sec ?? 100,
      max: b.max,
      bounds: await queue.dlqBounds(b.queue),
    }
    const { job } = await queue.add(DLQ_RETRY_TASK, payload, {
      queue: b.queue ?? config.defaultQueue,
      priority: 'high',
      max_retries: 0,
    })
    return { job, message: `retrying dead letters at ${b.rate_per_sec ?? 100}/s; follow job ${job.id}` }
  }

  app.post(
    '/dlq/retry',
    {
      config: { role: 'write' },
      schema: {
        tags: ['dlq'],
        summary:
          'Retry every dead-lettered job matching the filters at rate_per_sec (so a recovered downstream is not flooded). ' +
          'Each job in the DLQ at the request is retried at most once (one that fails again is left in the DLQ). ' +
          'Runs as a job on the workers (durable, survives API restarts); follow it with GET /jobs/{id}.',
        body: DlqRetryMany,
        response: { 202: DlqRetryManyReply, ...errors },
      },
    },
    async (req, reply) => {
      reply.code(202)
      return retryMany(req.body)
    },
  )

  // Seed 004's spellings: retry-all by priority (`limit`: at most that many), and search by POST.
  app.post(
    '/dlq/retry-all',
    {
      config: { role: 'write' },
      schema: {
        tags: ['dlq'],
        summary: 'POST /dlq/retry (seed 004 spelling): `limit` is its `max`',
        body: SeedRetryAll,
        response: { 202: DlqRetryManyReply, ...errors },
      },
    },
    async (req, reply) => {
      const { limit, ...rest } = req.body
      reply.code(202)
      return retryMany({ ...rest, max: limit })
    },
  )

  app.post(
    '/dlq/search',
    {
      // A read that happens to be a POST: not an operator action.
      config: { role: 'read', audit: false },
      schema: {
        tags: ['dlq'],
        summary:
          'GET /dlq (seed 004 spelling): task_type, priority, error_contains, queue, limit, cursor in the body',
        body: SeedSearch,
        response: { 200: DlqPage, ...errors },
      },
    },
    async (req) => {
      const { error_contains, ...rest } = req.body
      return list({ ...rest, error: error_contains })
    },
  )

  app.delete(
    '/dlq/:id',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['dlq'],
        summary:
          'Delete one dead-lettered job (404 when it is gone -- of racing deletes, one gets 200; 409 when the id needs its ?queue=)',
        params: IdParams,
        querystring: QueueQuery,
        response: { 200: CountReply, ...errors },
      },
    },
    async (req) => {
      await queue.deleteDlq(req.params.id, req.query.queue) // throws unless this call deleted it
      return { deleted: 1 }
    },
  )

  const purge = {
    config: { role: 'admin' as const },
    schema: {
      tags: ['dlq'],
      summary:
        'Delete dead-lettered jobs that failed more than older_than_days ago (0: all), of one priority or all. ' +
        'The value is required: absent or empty is a 400, never 0',
      querystring: PurgeQuery,
      response: { 200: CountReply, ...errors },
    },
    preValidation: notEmpty('older_than_days'),
  }
  const purgeHandler = async (req: { query: Static<typeof PurgeQuery> }) => ({
    deleted: await queue.purgeDlq(req.query.older_than_days, req.query.queue, req.query.priority),
  })
  app.delete('/dlq', purge, purgeHandler)
  // Seed 004's spelling.
  app.delete(
    '/dlq/purge',
    { ...purge, schema: { ...purge.schema, summary: 'DELETE /dlq (seed 004 spelling)' } },
    purgeHandler,
  )
}
