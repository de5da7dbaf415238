/** Dead letters: list with filters, retry one, retry many at a rate (as a job), delete, purge. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { DtqError } from '../../errors.ts'
import { DLQ_RETRY_TASK, type DlqRetryPayload } from '../../queue/system-tasks.ts'
import {
  CountReply,
  DlqPage,
  DlqQuery,
  DlqRetryMany,
  DlqRetryManyReply,
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

export const dlqRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { queue, config } = app.dtq

  app.get(
    '/dlq',
    {
      config: { role: 'read' },
      schema: {
        tags: ['dlq'],
        summary: 'Dead-lettered jobs, newest first; filter by queue, type, error text, age',
        querystring: DlqQuery,
        response: { 200: DlqPage, ...errors },
      },
      preValidation: notEmpty('older_than_days'),
    },
    async (req) => {
      const q = req.query
      return queue.listDlq({
        queue: q.queue,
        task_type: q.task_type,
        error_contains: q.error,
        older_than_ms: q.older_than_days === undefined ? undefined : Math.round(q.older_than_days * DAY),
        cursor: q.cursor,
        limit: q.limit ?? 50,
      })
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
      const b = req.body
      // The redrive touches what is in the DLQ now, once: its bounds travel in the job.
      const payload: DlqRetryPayload = {
        filter: {
          queue: b.queue,
          task_type: b.task_type,
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
      reply.code(202)
      return { job, message: `retrying dead letters at ${b.rate_per_sec ?? 100}/s; follow job ${job.id}` }
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

  app.delete(
    '/dlq',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['dlq'],
        summary:
          'Delete dead-lettered jobs that failed more than older_than_days ago (0: all). The value is required: absent or empty is a 400, never 0',
        querystring: PurgeQuery,
        response: { 200: CountReply, ...errors },
      },
      preValidation: notEmpty('older_than_days'),
    },
    async (req) => ({ deleted: await queue.purgeDlq(req.query.older_than_days, req.query.queue) }),
  )
}
