/**
 * Replay and debugging (ADR 0028): re-run a finished job as a new one (with changes, or as a dry
 * run), a job's timeline, and two jobs or two attempts of one job compared.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type, { type Static } from 'typebox'
import { DtqError } from '../../errors.ts'
import { archiveSources } from '../../history/job-source.ts'
import type { JobSpec } from '../../queue/queue.ts'
import { parseJobRef } from '../../queue/replay.ts'
import { createReplays, type Replays } from '../../redis/replay-service.ts'
import { admission } from '../admission.ts'
import {
  AttemptsCompareReply,
  AttemptsQuery,
  type BatchDryRunReply,
  CompareQuery,
  CompareReply,
  DryRunQuery,
  DryRunReply,
  errorReplies,
  IdParams,
  JobS,
  QueueQuery,
  ReplayBody,
  TimelineReply,
} from '../schemas.ts'

const errors = errorReplies(404, 409)

export const replayRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { queue, config } = app.dtq
  const archive = archiveSources(config)
  app.addHook('onClose', archive.close)
  const replays = createReplays(queue, archive.sources)
  const admit = admission(queue, config)

  app.post(
    '/jobs/:id/replay',
    {
      config: { role: 'write' },
      schema: {
        tags: ['jobs'],
        summary:
          'Run a finished job (completed, failed, cancelled) again as a NEW job, with changes; ?dry_run=true answers what would be created, writing nothing',
        description:
          "The new job carries `replay_of` (`<queue>/<id>`) and the original lists it in `replays` (the latest 10). A job not finished is a 409. The original's idempotency_key and dedup are not carried: give the replay an idempotency_key of its own to make a repeated request answer the same replay (200). Unlike POST /jobs/{id}/retry (the same job again), the original stays as it is.",
        params: IdParams,
        querystring: DryRunQuery,
        body: Type.Union([ReplayBody, Type.Null()]),
        response: { 200: Type.Union([JobS, DryRunReply]), 201: JobS, ...errors },
      },
    },
    async (req, reply) => {
      const changes = req.body ?? {}
      const opts = { queue: req.query.queue, admit }
      if (req.query.dry_run) return replays.dryRunReplay(req.params.id, changes, opts)
      const r = await replays.replay(req.params.id, changes, opts)
      reply.code(r.created ? 201 : 200)
      if (r.created) reply.header('location', `/jobs/${r.job.id}?queue=${r.job.queue}`)
      return r.job
    },
  )

  app.get(
    '/jobs/:id/timeline',
    {
      config: { role: 'read' },
      schema: {
        tags: ['jobs'],
        summary: "A job's timeline: every state change and attempt on record, with times and workers",
        description:
          "Merged from the job's record (created, due, each failed attempt's start, end, worker and error, the last attempt, the end, payload edits, replays) and its queue's lifecycle events stream, scanned from the job's creation (at most 20 000 entries). The stream is trimmed to ~EVENTS_MAX_LEN entries and the error history is bounded: `partial` and `gaps` say what may be missing.",
        params: IdParams,
        querystring: QueueQuery,
        response: { 200: TimelineReply, ...errors },
      },
    },
    async (req) => replays.timeline(req.params.id, req.query.queue),
  )

  app.get(
    '/jobs/:id/compare',
    {
      config: { role: 'read' },
      schema: {
        tags: ['jobs'],
        summary: 'Two jobs side by side, with their differences (payload, result, error, options, timings)',
        description:
          'The job and the one `with` names (`<queue>/<id>`, or an id). `differences` lists JSON Pointer paths into the two `view`s that differ: added (only in b), removed (only in a), changed.',
        params: IdParams,
        querystring: CompareQuery,
        response: { 200: CompareReply, ...errors },
      },
    },
    async (req) =>
      replays.compare({ id: req.params.id, queue: req.query.queue }, parseJobRef(req.query.with)),
  )

  app.get(
    '/jobs/:id/attempts/compare',
    {
      config: { role: 'read' },
      schema: {
        tags: ['jobs'],
        summary: 'Two attempts of one job side by side: outcome, worker, error, duration',
        description:
          "Attempts on record: the failed ones in the job's error history (bounded) and the last one. Another is a 404 that lists those on record.",
        params: IdParams,
        querystring: AttemptsQuery,
        response: { 200: AttemptsCompareReply, ...errors },
      },
    },
    async (req) => replays.compareAttempts(req.params.id, req.query.queue, req.query.a, req.query.b),
  )
}

/**
 * POST /jobs/batch?dry_run=true: each valid item's dry run, in order, nothing written. Items the
 * batch itself would answer with an earlier item (the same job_id or idempotency_key in the same
 * queue, or the same dedup key) say so (`same_as`: that item's index), as the enqueue call would.
 * `rejected` items are the batch's own (invalid), passed in.
 */
export async function dryRunBatch(
  replays: Replays,
  total: number,
  rejected: Array<Record<string, unknown>>,
  valid: ReadonlyArray<{ index: number; spec: JobSpec }>,
): Promise<Static<typeof BatchDryRunReply>> {
  const items: Array<Record<string, unknown>> = [...rejected]
  const count = { create: 0, existing: 0, deduplicated: 0, rejected: total - valid.length }
  const seen = new Map<string, number>()
  for (const { index, spec } of valid) {
    try {
      const dry = await replays.dryRun(spec)
      const q = dry.queue
      const keys = [
        spec.id && `id ${q} ${spec.id}`,
        spec.idempotency_key && `key ${q} ${spec.idempotency_key}`,
        dry.job.dedup && `dd ${q} ${dry.job.dedup.key_hash}`,
      ].filter((k): k is string => Boolean(k))
      const earlier = keys.map((k) => seen.get(k)).find((i) => i !== undefined)
      if (dry.outcome === 'create' && earlier !== undefined) {
        const outcome = keys.some((k) => k.startsWith('dd ') && seen.get(k) === earlier)
          ? 'deduplicated'
          : 'existing'
        count[outcome]++
        items[index] = { index, status: 200, outcome, same_as: earlier, dry_run: dry }
        continue
      }
      if (dry.outcome === 'create') for (const k of keys) seen.set(k, index)
      count[dry.outcome]++
      items[index] = {
        index,
        status: dry.outcome === 'create' ? 201 : 200,
        outcome: dry.outcome,
        dry_run: dry,
      }
    } catch (err) {
      if (!(err instanceof DtqError) || err.status >= 500) throw err
      count.rejected++
      const error = { error: 'Bad Request', code: err.code, message: err.message }
      items[index] = {
        index,
        status: err.status,
        outcome: 'rejected',
        error: err.details === undefined ? error : { ...error, details: err.details },
      }
    }
  }
  return { dry_run: true, ...count, items: items as never }
}
