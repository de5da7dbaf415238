/**
 * Jobs: create (one, batch), list, get, cancel, retry; day-2 operations (run now, priority,
 * payload, delete, bulk by filter: ADR 0020); and the development generator.
 */
import { type FastifyPluginAsyncTypebox, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { Compile } from 'typebox/compile'
import { DtqError } from '../../errors.ts'
import { archivedLookup, archiveSources } from '../../history/job-source.ts'
import type { Job } from '../../queue/job.ts'
import { BulkAddError, type BulkItem, type JobSpec } from '../../queue/queue.ts'
import { BULK_JOBS_TASK, type BulkJobsPayload } from '../../queue/system-tasks.ts'
import { RESERVED_TASK_PREFIX } from '../../queue/validate.ts'
import { createReplays } from '../../redis/replay-service.ts'
import { SearchEngine } from '../../search/engine.ts'
import { decodeSearchCursor, parseFilters } from '../../search/filters.ts'
import { admission } from '../admission.ts'
import {
  BatchEnvelope,
  BatchFailure,
  BatchReply,
  BulkJobsBody,
  CancelReply,
  CreateBatch,
  CreateJob,
  type CreateJobDto,
  CreateQuery,
  DeleteJobReply,
  DlqRetryManyReply,
  DryRunReply,
  describeValidation,
  errorReplies,
  GenerateJobs,
  GenerateReply,
  IdParams,
  JobDetail,
  JobPage,
  JobS,
  ListJobsQuery,
  type ListJobsQueryDto,
  PayloadBody,
  PriorityBody,
  QueueQuery,
} from '../schemas.ts'
import { dryRunBatch } from './replay.ts'

const errors = errorReplies(404, 409)

function toSpec(b: CreateJobDto): JobSpec {
  const { job_id, ...rest } = b
  return { ...rest, id: job_id }
}

/** Task types starting `dtq.` are DTQ's own system jobs (POST /dlq/retry makes the redrive's): not for clients. */
function refuseReserved(taskType: string): void {
  if (taskType.startsWith(RESERVED_TASK_PREFIX)) {
    throw new DtqError(
      'VALIDATION',
      `task_type ${taskType} is reserved: task types starting with ${RESERVED_TASK_PREFIX} are DTQ's own system jobs`,
    )
  }
}

/** Where a job lives, with its queue: ids are unique within a queue (ADR 0016). */
const location = (job: Job) => `/jobs/${job.id}?queue=${job.queue}`

/** One batch item checked against CreateJob alone (the batch's schema checks only its envelope). */
const jobCheck = Compile(CreateJob)
function checkItem(item: unknown, index: number): JobSpec {
  if (!jobCheck.Check(item)) {
    const { message, details } = describeValidation(jobCheck.Errors(item), `body/jobs/${index}`)
    throw new DtqError('VALIDATION', message, details)
  }
  refuseReserved(item.task_type)
  if (item.depends_on !== undefined)
    throw new DtqError(
      'VALIDATION',
      'depends_on is for a job added alone (POST /jobs); a graph of new jobs is a flow (POST /flows)',
    )
  return toSpec(item)
}

export const jobRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { queue, config } = app.dtq
  const admit = admission(queue, config)
  const replays = createReplays(queue)
  const archivedJob = archivedLookup(archiveSources(config).sources)
  // GET /jobs?where=: the search's engine (ADR 0029), never a second scanner (ADR 0033).
  let search: ReturnType<typeof SearchEngine.fromConfig> | null = null
  app.addHook('onClose', async () => search?.close())
  const payloadPage = async (q: ListJobsQueryDto) => {
    if (!q.queue && !q.task_type)
      throw new DtqError(
        'VALIDATION',
        'a payload filter (where) needs a queue or a task_type: it reads jobs one by one, within one of them',
      )
    if (q.order === 'asc')
      throw new DtqError('VALIDATION', 'a payload filter (where) lists newest first only: drop order=asc')
    if (q.sort === 'created')
      throw new DtqError('VALIDATION', 'a payload filter (where) lists in its own order: drop sort=created')
    if (q.cursor) decodeSearchCursor(q.cursor)
    const filters = parseFilters({
      queue: q.queue,
      task_type: q.task_type,
      state: q.status,
      where: q.where,
      to: q.from === undefined ? undefined : q.from + 1,
    })
    search ??= SearchEngine.fromConfig(queue, config)
    const page = await search.engine.page(filters, q.cursor, q.limit ?? 50)
    return {
      items: page.items.map((i) => i.job),
      next_cursor: page.next_cursor,
      total: null,
      scan: { ...page.live, limit: config.searchLiveScan },
      history: page.history,
    }
  }

  app.post(
    '/jobs',
    {
      config: { role: 'write' },
      schema: {
        tags: ['jobs'],
        summary:
          'Create a job (201), or get the original back for a repeated idempotency key or job_id (200)',
        description:
          "Location names the job with its queue (`/jobs/{id}?queue=`): a job_id or an idempotency key is unique within its queue, so the same one in two queues makes two jobs. Task types starting `dtq.` are DTQ's own (400). A new queue beyond MAX_QUEUES is a 409 QUEUE_LIMIT.",
        querystring: CreateQuery,
        body: CreateJob,
        response: { 200: Type.Union([JobS, DryRunReply]), 201: JobS, ...errors },
      },
    },
    async (req, reply) => {
      refuseReserved(req.body.task_type)
      await admit(req.body.queue ?? config.defaultQueue)
      // A dry run (ADR 0028): every check add runs, and what it would meet; nothing written.
      if (req.query.dry_run) return replays.dryRun(toSpec(req.body))
      const { task_type, payload, ...opts } = toSpec(req.body)
      const { job, created } = await queue.add(task_type, payload, opts)
      reply.code(created ? 201 : 200)
      if (created) reply.header('location', location(job))
      return job
    },
  )

  app.post(
    '/jobs/batch',
    {
      config: { role: 'write' },
      schema: {
        tags: ['jobs'],
        summary:
          "Create many jobs; each item is validated and reported on its own, and each queue's jobs are written all or none",
        description:
          "Each item is validated on its own against the job schema: an invalid item -- a malformed item (not an object, a field of the wrong type, an unknown field, no task_type) or one with a bad value (a time that does not exist, a reserved task type, a payload too large) -- is rejected in its own item (400, with the usual error) and the others are added. Only a malformed envelope fails the whole request with 400: a body that is not an object holding a non-empty `jobs` array (at most BATCH_MAX_JOBS items) and nothing else. Each queue's jobs are written at once, queue after queue. If a write fails (Redis unavailable or out of memory: 503), the reply has that status and the error's `details` is this route's usual reply, saying per item: created, existing, rejected, not_created (nothing of it written: send it again) or unknown (its write may have happened: send it again with a job_id or idempotency_key to be safe). What the reply says exists is exactly what Redis holds. With `?dry_run=true` (ADR 0028) nothing is written and the reply is `{dry_run: true, create, existing, deduplicated, rejected, items: [{index, status, outcome: create | existing | deduplicated | rejected, same_as?, dry_run?, error?}]}`: each item's dry run as POST /jobs?dry_run=true answers it (`same_as`: an earlier item of the batch that would answer it).",
        querystring: CreateQuery,
        body: CreateBatch,
        response: { 200: BatchReply, ...errors, 500: BatchFailure, 503: BatchFailure },
      },
      // The schema above is what the OpenAPI shows; the request body itself is checked as an envelope.
      validatorCompiler: (route) =>
        TypeBoxValidatorCompiler(route.httpPart === 'body' ? { ...route, schema: BatchEnvelope } : route),
    },
    async (req, reply) => {
      const jobs: unknown[] = req.body.jobs
      if (jobs.length > config.batchMaxJobs) {
        throw new DtqError('VALIDATION', `at most ${config.batchMaxJobs} jobs per batch (got ${jobs.length})`)
      }
      const items: Array<Record<string, unknown>> = new Array(jobs.length)
      const valid: Array<{ index: number; spec: JobSpec }> = []
      jobs.forEach((j, index) => {
        try {
          // Validate each item alone so one bad item does not sink the others.
          const spec = checkItem(j, index)
          queue.validate(spec)
          valid.push({ index, spec })
        } catch (err) {
          const e = err as DtqError
          const error = { error: 'Bad Request', code: e.code, message: e.message }
          items[index] = {
            index,
            status: 400,
            outcome: 'rejected',
            error: e.details === undefined ? error : { ...error, details: e.details },
          }
        }
      })
      for (const q of new Set(valid.map((v) => v.spec.queue ?? config.defaultQueue))) await admit(q)
      if (req.query.dry_run) {
        // Its own shape (BatchDryRun, in the description): serialized as is, so the batch's
        // usual 200 keeps its one-schema serializer (a union doubles its cost: ADR 0028).
        reply.serializer(JSON.stringify)
        return (await dryRunBatch(replays, jobs.length, items, valid)) as never
      }
      let outcomes: BulkItem[] = []
      let failure: BulkAddError | null = null
      try {
        if (valid.length) {
          // Each queue's jobs in one call: all or none (a client may retry the batch as it is).
          const res = await queue.addBulk(
            valid.map((v) => v.spec),
            { allOrNothing: true },
          )
          outcomes = res.map((r) => ({ outcome: r.created ? 'created' : 'existing', job: r.job }))
        }
      } catch (err) {
        if (!(err instanceof BulkAddError)) throw err
        failure = err
        outcomes = err.items
      }
      // The items a failed write left out carry its error (one object, shared).
      const error = failure && {
        error:
          failure.status === 503
            ? 'Service Unavailable'
            : failure.status >= 500
              ? 'Internal Server Error'
              : 'Bad Request',
        code: failure.code,
        message: failure.message,
      }
      const count = { created: 0, existing: 0, not_created: 0, unknown: 0 }
      outcomes.forEach((o, k) => {
        const index = valid[k]!.index
        count[o.outcome]++
        items[index] = o.job
          ? { index, status: o.outcome === 'created' ? 201 : 200, outcome: o.outcome, job: o.job }
          : { index, status: failure!.status, outcome: o.outcome, error }
      })
      const body = { ...count, rejected: jobs.length - valid.length, items: items as never }
      if (!failure) return body
      if (failure.status === 503) reply.header('retry-after', '1')
      throw new DtqError(failure.code, failure.message, body)
    },
  )

  app.get(
    '/jobs',
    {
      config: { role: 'read' },
      schema: {
        tags: ['jobs'],
        summary: 'List jobs, most recently changed (or created: sort=created) first, with cursor pagination',
        description:
          '`total`: how many jobs match, from the per-state counts, when cheap (null with a task_type). `from`: jump to a time. `order`: newest (desc) or oldest (asc) first. `sort=created`: by created_at within one queue whose created-time index is on (400 without a queue, 409 CREATED_INDEX_OFF otherwise; ADR 0035). `where`: payload filters within a queue or task type, bounded (`scan`). ADR 0033.',
        querystring: ListJobsQuery,
        response: { 200: JobPage, ...errors },
      },
    },
    async (req) => {
      const q = req.query
      if (q.idempotency_key !== undefined) {
        // A key is unique within its queue: without one, the job of each queue that has it.
        return { items: await queue.jobsByIdempotencyKey(q.idempotency_key, q.queue), next_cursor: null }
      }
      if (q.where !== undefined) return payloadPage(q)
      const filter = { queue: q.queue, state: q.status, task_type: q.task_type }
      // The page and its total side by side: a total that cannot be read is unknown, not a 500.
      const [page, counts] = await Promise.all([
        queue.listJobs({
          ...filter,
          cursor: q.cursor,
          from: q.from,
          order: q.order,
          sort: q.sort,
          limit: q.limit ?? 50,
        }),
        queue.listTotal(filter).catch(() => null),
      ])
      return { ...page, total: counts?.total ?? null, ...(counts && { by_state: counts.by_state }) }
    },
  )

  app.get(
    '/jobs/:id',
    {
      config: { role: 'read' },
      schema: {
        tags: ['jobs'],
        summary:
          'One job, with its log (409 AMBIGUOUS_JOB_ID without ?queue= when the id names a job in several queues)',
        params: IdParams,
        querystring: QueueQuery,
        response: { 200: JobDetail, ...errors },
      },
    },
    async (req) => {
      const job = await queue.getJobOrThrow(req.params.id, req.query.queue).catch(async (err) => {
        // Past its retention: the history archive's record, when there is one (ADR 0028).
        const archived =
          err instanceof DtqError && err.code === 'NOT_FOUND'
            ? await archivedJob(req.params.id, req.query.queue)
            : null
        if (!archived) throw err
        return archived
      })
      if ('source' in job) return job
      return { ...job, logs: await queue.store.jobLogs(job.queue, job.id) }
    },
  )

  app.post(
    '/jobs/:id/cancel',
    {
      config: { role: 'write' },
      schema: {
        tags: ['jobs'],
        summary:
          'Cancel a job: at once when waiting, by request when running (409 when finished, or when the id needs its ?queue=)',
        params: IdParams,
        querystring: QueueQuery,
        response: { 200: CancelReply, 202: CancelReply, ...errors },
      },
    },
    async (req, reply) => {
      const r = await queue.cancel(req.params.id, req.query.queue)
      reply.code(r.outcome === 'cancelled' ? 200 : 202)
      return r
    },
  )

  app.post(
    '/jobs/:id/retry',
    {
      config: { role: 'write' },
      schema: {
        tags: ['jobs'],
        summary: 'Run a failed or cancelled job again (409 otherwise, or when the id needs its ?queue=)',
        params: IdParams,
        querystring: QueueQuery,
        response: { 200: JobS, ...errors },
      },
    },
    async (req) => queue.retry(req.params.id, req.query.queue),
  )

  // ---- day-2 operations (ADR 0020) -----------------------------------------------------

  app.post(
    '/jobs/:id/promote',
    {
      config: { role: 'write' },
      schema: {
        tags: ['jobs'],
        summary: 'Run a scheduled or retrying job now (409 in any other state)',
        params: IdParams,
        querystring: QueueQuery,
        response: { 200: JobS, ...errors },
      },
    },
    async (req) => queue.runNow(req.params.id, req.query.queue),
  )

  app.post(
    '/jobs/:id/priority',
    {
      config: { role: 'write' },
      schema: {
        tags: ['jobs'],
        summary:
          "Change a job's priority before it starts (waiting, queued, scheduled, retrying; 409 otherwise). A queued job moves to the tail of its new priority's stream in one step",
        params: IdParams,
        querystring: QueueQuery,
        body: PriorityBody,
        response: { 200: JobS, ...errors },
      },
    },
    async (req) => queue.setPriority(req.params.id, req.body.priority, req.query.queue),
  )

  app.put(
    '/jobs/:id/payload',
    {
      config: { role: 'write' },
      schema: {
        tags: ['jobs'],
        summary:
          "Replace the payload of a job that has not started (waiting, queued, scheduled, retrying) or has failed (409 otherwise); the job's `edits` records it",
        description:
          "`edits` on the job: how many edits, the last one's `by` (edited_by, else `api`), `at`, and `previous_sha1` (the SHA-1 of the payload it replaced).",
        params: IdParams,
        querystring: QueueQuery,
        body: PayloadBody,
        response: { 200: JobS, ...errors },
      },
    },
    async (req) =>
      queue.editPayload(req.params.id, req.body.payload, {
        queue: req.query.queue,
        by: req.body.edited_by ?? 'api',
      }),
  )

  app.delete(
    '/jobs/:id',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['jobs'],
        summary:
          'Delete a job in any state and every trace of it (a running one is fenced: its worker is told to stop and its result is rejected)',
        description:
          "A flow member that has not ended is a 409: its flow waits on it -- cancel it first, so its children follow their policies. The job's idempotency key is freed.",
        params: IdParams,
        querystring: QueueQuery,
        response: { 200: DeleteJobReply, ...errors },
      },
    },
    async (req) => ({ deleted: 1, ...(await queue.deleteJob(req.params.id, req.query.queue)) }),
  )

  app.post(
    '/jobs/bulk',
    {
      config: { role: 'write' },
      schema: {
        tags: ['jobs'],
        summary:
          'Cancel, retry or delete every job matching the filter at rate_per_sec, as a system job on the workers (durable, paced; its log shows progress; cancel it to stop)',
        description:
          "Without `state`, cancel walks waiting, queued, scheduled, retrying and active jobs (a running one gets a cancel request), retry walks failed and cancelled ones, delete walks completed, failed and cancelled ones. `delete` (ADR 0033) needs the admin role (403 otherwise) and a `queue` (400 without one), removes finished jobs only (a `state` that is not completed, failed or cancelled is a 400: cancel those first) and re-checks each job's state in the call that deletes it: a job retried or re-run since the walk read it is left alone. `older_than_ms` compares with the time of the last change, `error_contains` with the last error. DTQ's own system jobs are never touched. Follow it with GET /jobs/{id}.",
        body: BulkJobsBody,
        response: { 202: DlqRetryManyReply, ...errors },
      },
    },
    async (req, reply) => {
      const { action, rate_per_sec, max, ...filter } = req.body
      // Deleting is for admins, as DELETE /jobs/{id} is (the route itself needs write).
      if (action === 'delete') app.dtq.auth.check(req, 'admin', false)
      const payload: BulkJobsPayload = { action, filter, rate_per_sec: rate_per_sec ?? 100, max }
      queue.checkBulk(action, filter, rate_per_sec, max)
      const { job } = await queue.add(BULK_JOBS_TASK, payload, {
        queue: filter.queue ?? config.defaultQueue,
        priority: 'high',
        max_retries: 0,
      })
      reply.code(202)
      return { job, message: `${action} by filter at ${rate_per_sec ?? 100}/s; follow job ${job.id}` }
    },
  )

  if (config.environment !== 'production') {
    app.post(
      '/dev/generate-jobs',
      {
        config: { role: 'admin' },
        schema: {
          tags: ['development'],
          summary: 'Generate synthetic jobs (not registered in production)',
          body: GenerateJobs,
          response: { 201: GenerateReply, ...errors },
        },
      },
      async (req, reply) => {
        const b = req.body
        const taskType = b.task_type ?? 'synthetic'
        refuseReserved(taskType)
        const queueName = b.queue ?? config.defaultQueue
        const template = b.payload_template ?? { duration_ms: 50, failure_rate: 0 }
        let created = 0
        for (let start = 0; start < b.count; start += 1000) {
          const n = Math.min(1000, b.count - start)
          const res = await queue.addBulk(
            Array.from({ length: n }, (_, i) => ({
              task_type: taskType,
              queue: queueName,
              priority: b.priority,
              payload: template,
              partition_key:
                b.partition_key_prefix !== undefined ? `${b.partition_key_prefix}${start + i}` : undefined,
            })),
          )
          created += res.filter((r) => r.created).length
        }
        reply.code(201)
        return { created, queue: queueName, task_type: taskType }
      },
    )
  }
}
