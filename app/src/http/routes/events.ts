/**
 * GET /events: lifecycle events as Server-Sent Events. Filters: queue, task_type, job_id.
 * Resumes from Last-Event-ID (header, or `last_event_id` query). Keep-alive comments every
 * SSE_HEARTBEAT_MS. Auth: the Authorization header (fetch-based readers), or `access_token`
 * in the query for a browser EventSource (never logged).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { DtqError } from '../../errors.ts'
import { EVENT_ID } from '../events.ts'
import { EventsQuery, errorReplies } from '../schemas.ts'

export const eventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { hub, config } = app.dtq
  const open = new Set<() => void>()
  // Before the server waits for connections to end: SSE streams never end by themselves.
  app.addHook('preClose', async () => {
    for (const close of open) close()
  })

  app.get(
    '/events',
    {
      config: { role: 'read' },
      schema: {
        tags: ['events'],
        summary: 'Lifecycle events (text/event-stream); resume with Last-Event-ID',
        querystring: Type.Object(
          { ...EventsQuery.properties, last_event_id: Type.Optional(Type.String({ maxLength: 64 })) },
          { additionalProperties: false },
        ),
        response: errorReplies(),
      },
    },
    async (req, reply) => {
      const q = req.query
      const lastHeader = req.headers['last-event-id']
      const last = (typeof lastHeader === 'string' ? lastHeader : undefined) ?? q.last_event_id
      if (last !== undefined && !EVENT_ID.test(last))
        throw new DtqError(
          'VALIDATION',
          'Last-Event-ID must be an event id like 1700000000000-0 or 1700000000000-0.3',
        )
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      })
      res.write('retry: 2000\n\n')
      const heartbeat = setInterval(() => res.write(': ping\n\n'), config.sseHeartbeatMs)
      let unsubscribe = () => {}
      const close = () => {
        clearInterval(heartbeat)
        unsubscribe()
        open.delete(close)
        if (!res.writableEnded) res.end()
      }
      open.add(close)
      res.on('close', close) // the client went away (req 'close' fires once the request is read)
      unsubscribe = await hub.subscribe(
        { queue: q.queue, task_type: q.task_type, job_id: q.job_id },
        (e) => {
          res.write(`id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify(e)}\n\n`)
        },
        last,
      )
      if (res.writableEnded) unsubscribe()
    },
  )
}
