/** Queues (stats, pause, resume, empty, delete) and workers (list, pause, resume, drain, concurrency). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  ConcurrencyBody,
  CreatedIndexBody,
  CreatedIndexReply,
  DeleteQueueQuery,
  DeleteQueueReply,
  EmptyQueueBody,
  EmptyQueueReply,
  errorReplies,
  OkReply,
  PartitionsBody,
  PartitionsReply,
  QueueParams,
  QueuesReply,
  WorkerCommandParams,
  WorkerDetailReply,
  WorkerParams,
  WorkersReply,
} from '../schemas.ts'

const errors = errorReplies(404, 409)

export const adminRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { queue } = app.dtq

  app.get(
    '/queues',
    {
      config: { role: 'read' },
      schema: {
        tags: ['queues'],
        summary:
          'Every queue: counts by state, depth/pending/lag per priority, delayed, DLQ, oldest waiting, paused, live workers (no_workers: work and no live worker)',
        response: { 200: QueuesReply, ...errors },
      },
    },
    async () => ({ items: (await queue.statsWithConsumers()).queues }),
  )

  app.put(
    '/queues/:queue/created-index',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['queues'],
        summary: "Switch a queue's created-time index on or off (GET /jobs?sort=created needs it on)",
        description:
          "On: new jobs are indexed at once and the jobs already there are backfilled in bounded pages (the reply says `building` while that runs; the workers' janitor finishes it if this process stops). It costs one ZADD per job created and some Redis memory per job (docs/performance.md). Off: the index is deleted. ADR 0035.",
        params: QueueParams,
        body: CreatedIndexBody,
        response: { 200: CreatedIndexReply, ...errors },
      },
    },
    async (req) => ({
      queue: req.params.queue,
      created_index: await queue.setCreatedIndex(req.params.queue, req.body.on),
    }),
  )

  for (const action of ['pause', 'resume'] as const) {
    app.post(
      `/queues/:queue/${action}`,
      {
        config: { role: 'admin' },
        schema: {
          tags: ['queues'],
          summary: `${action} a queue (workers take no jobs from a paused queue)`,
          params: QueueParams,
          response: { 200: OkReply, ...errors },
        },
      },
      async (req) => {
        if (action === 'pause') await queue.pauseQueue(req.params.queue)
        else await queue.resumeQueue(req.params.queue)
        return { ok: true }
      },
    )
  }

  app.get(
    '/queues/:queue/partitions',
    {
      config: { role: 'read' },
      schema: {
        tags: ['queues'],
        summary: "A queue's partition count (1: not partitioned)",
        params: QueueParams,
        response: { 200: PartitionsReply, ...errors },
      },
    },
    async (req) => {
      const n = await queue.partitions(req.params.queue)
      return { queue: req.params.queue, partitions: n, before: n }
    },
  )

  app.put(
    '/queues/:queue/partitions',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['queues'],
        summary: 'Spread a queue over N partitions (N slots of a Redis Cluster); the count only grows',
        description:
          "Jobs are routed by partition_key, else idempotency_key, else job_id (the same key always lands in the same partition), and a request's keyless jobs go to the next partition in turn. Workers serving the queue serve every partition from their next heartbeat; listing, stats and the console show the queue as one. Lowering the count is refused (409): the jobs of a dropped partition would be stranded.",
        params: QueueParams,
        body: PartitionsBody,
        response: { 200: PartitionsReply, ...errors },
      },
    },
    async (req) => queue.setPartitions(req.params.queue, req.body.partitions),
  )

  app.post(
    '/queues/:queue/empty',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['queues'],
        summary:
          "Remove up to `limit` of a queue's jobs waiting to run (queued, scheduled, retrying); call again while `more`",
        description:
          'Running, waiting (flow) and finished jobs are left. A flow member waiting to run is cancelled instead of removed (its children follow their policies): counted in `cancelled`.',
        params: QueueParams,
        body: EmptyQueueBody,
        response: { 200: EmptyQueueReply, ...errors },
      },
    },
    async (req) => queue.emptyQueue(req.params.queue, { limit: req.body?.limit }),
  )

  app.delete(
    '/queues/:queue',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['queues'],
        summary:
          'Delete a queue and all its keys (every partition), its registry entry and its schedules; 409 while jobs run in it unless force=true',
        description:
          "With force, the running jobs' workers are fenced: their results are rejected. Workers still configured to serve the queue keep serving it (empty); a producer that adds to it again creates it again.",
        params: QueueParams,
        querystring: DeleteQueueQuery,
        response: { 200: DeleteQueueReply, ...errors },
      },
    },
    async (req) => queue.deleteQueue(req.params.queue, { force: req.query.force }),
  )

  app.get(
    '/workers',
    {
      config: { role: 'read' },
      schema: { tags: ['workers'], summary: 'Live workers', response: { 200: WorkersReply, ...errors } },
    },
    async () => ({ items: await queue.workers() }),
  )

  app.get(
    '/workers/:id',
    {
      config: { role: 'read' },
      schema: {
        tags: ['workers'],
        summary:
          'One live worker: its counters, the jobs it runs now, its outcomes per minute, its latest failures',
        description:
          'As the worker wrote them with its last heartbeat (every 2 s): bounded (100 running jobs, 15 minutes, 20 failures). 404 when no live worker has this id.',
        params: WorkerParams,
        response: { 200: WorkerDetailReply, ...errors },
      },
    },
    async (req) => queue.worker(req.params.id),
  )

  app.post(
    '/workers/:id/concurrency',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['workers'],
        summary:
          "Change a worker's concurrency at runtime ('*' for all): running jobs go on; lowered, no job starts until fewer run",
        params: WorkerParams,
        body: ConcurrencyBody,
        response: { 200: OkReply, ...errors },
      },
    },
    async (req) => {
      await queue.setWorkerConcurrency(req.params.id, req.body.concurrency)
      return { ok: true }
    },
  )

  app.post(
    '/workers/:id/:command',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['workers'],
        summary: 'pause (take no new jobs), resume, or drain (finish running jobs, then stop) a worker',
        params: WorkerCommandParams,
        response: { 200: OkReply, ...errors },
      },
    },
    async (req) => {
      await queue.commandWorker(req.params.id, req.params.command)
      return { ok: true }
    },
  )
}
