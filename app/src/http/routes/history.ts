/**
 * The history's state (ADR 0027): whether archiving is on, how far the archivers are behind in
 * each queue, and what each live archiver last reported. Reads Redis only (the API needs no
 * DATABASE_URL): the archive streams hold exactly what is not archived yet.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { ArchiveStore } from '../../redis/archive.ts'
import { errorReplies } from '../schemas.ts'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()])

const QueueArchive = Type.Object({
  queue: Type.String(),
  enabled: Type.Boolean(),
  backlog: Type.Integer({ description: 'archive entries (finishing calls) not yet written to PostgreSQL' }),
  pending: Type.Integer({ description: 'of those, read by an archiver and not yet acknowledged' }),
  oldest_at: Nullable(Type.Integer({ description: 'when the oldest unarchived entry was written, ms' })),
})

const ArchiverS = Type.Object({
  consumer: Type.String(),
  at: Type.Integer({ description: 'when it last reported, ms' }),
  archived: Type.Integer(),
  entries: Type.Integer(),
  missing: Type.Integer({ description: 'finished jobs whose hash was gone before they were archived' }),
  failures: Type.Integer({ description: 'failed write cycles (PostgreSQL or Redis unreachable)' }),
  last_archived_at: Nullable(Type.Integer()),
  last_error: Nullable(Type.String()),
})

export const HistoryStatus = Type.Object({
  enabled: Type.Boolean({ description: 'archiving is on in at least one queue' }),
  backlog: Type.Integer(),
  lag_ms: Type.Integer({ description: 'age of the oldest unarchived entry (0: none)' }),
  last_archived_at: Nullable(Type.Integer()),
  queues: Type.Array(QueueArchive),
  archivers: Type.Array(ArchiverS),
})

export const historyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { queue } = app.dtq
  const store = new ArchiveStore(queue.store.redis, { ...queue.store.opts, clock: queue.store.clock })

  app.get(
    '/history/status',
    {
      config: { role: 'read' },
      schema: {
        tags: ['history'],
        summary: 'The history archiver: on or off, how far behind per queue, the live archivers',
        response: { 200: HistoryStatus, ...errorReplies() },
      },
    },
    async () => {
      const names = await store.queues()
      const queues = await Promise.all(names.map((q) => store.status(q)))
      const archivers = await store.reports()
      const now = store.clock.now()
      const oldest = Math.min(...queues.map((q) => q.oldest_at ?? Number.POSITIVE_INFINITY))
      const last = Math.max(...archivers.map((a) => a.last_archived_at ?? 0), 0)
      return {
        enabled: queues.some((q) => q.enabled),
        backlog: queues.reduce((n, q) => n + q.backlog, 0),
        lag_ms: Number.isFinite(oldest) ? Math.max(0, now - oldest) : 0,
        last_archived_at: last || null,
        queues,
        archivers,
      }
    },
  )
}
