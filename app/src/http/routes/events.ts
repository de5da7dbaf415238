/**
 * GET /events: lifecycle events as Server-Sent Events. Filters: queue, task_type, job_id.
 * Resumes from Last-Event-ID (header, or `last_event_id` query): at most SSE_REPLAY_MAX_EVENTS
 * are replayed, a larger gap gets a `reload` event. Keep-alive comments every SSE_HEARTBEAT_MS.
 * Auth: the Authorization header (fetch-based readers), or `access_token` in the query for a
 * browser EventSource (never logged).
 *
 * Open streams are capped per instance (SSE_MAX_CONNECTIONS, then 503) and per token — per
 * client address when auth is off — (SSE_MAX_CONNECTIONS_PER_CLIENT, then 429). A client the
 * hub lets go (too far behind, or reading nothing) gets a last comment and is cut off shortly
 * after if it does not read even that.
 */
import { createHash } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import Type from 'typebox'
import { DtqError } from '../../errors.ts'
import { parseEventId, type Subscription } from '../events.ts'
import { EventsQuery, errorReplies } from '../schemas.ts'

/** How long an ended stream may take to be read before its socket is destroyed. */
const CLOSE_GRACE_MS = 1000

export const eventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { hub, config, auth } = app.dtq
  const open = new Set<(reason?: string) => void>()
  const perClient = new Map<string, number>()
  // Before the server waits for connections to end: SSE streams never end by themselves.
  app.addHook('preClose', async () => {
    for (const close of [...open]) close('the server is shutting down')
  })

  /**
   * Whose streams a request counts against: the token it was let in with (a digest), or its
   * address without auth. Only a configured token can be a key, so a client cannot dodge the cap
   * by presenting made-up tokens next to its real one.
   */
  const clientOf = (req: FastifyRequest): string => {
    if (!auth.required) return `ip:${req.ip}`
    const header = req.headers.authorization
    const presented = [
      typeof header === 'string' ? header.replace(/^bearer\s+/i, '').trim() : undefined,
      (req.query as { access_token?: string }).access_token,
    ]
    const token = presented.find((t) => t && auth.roleOf(t)) ?? ''
    return `token:${createHash('sha256').update(token).digest('base64url')}`
  }

  app.get(
    '/events',
    {
      config: { role: 'read' },
      schema: {
        tags: ['events'],
        summary: 'Lifecycle events (text/event-stream); resume with Last-Event-ID',
        description:
          'A resume replays at most SSE_REPLAY_MAX_EVENTS events; past that the first event is ' +
          '`event: reload` (refetch the state; its id resumes from now). A client that falls ' +
          'behind or stops reading is disconnected and resumes with its Last-Event-ID. Open ' +
          'streams are capped per token (per address without auth: 429 TOO_MANY_STREAMS) and per ' +
          'instance (503 STREAMS_FULL).',
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
      const lastEventId = last === undefined ? undefined : parseEventId(last)
      if (lastEventId === null)
        throw new DtqError(
          'VALIDATION',
          'Last-Event-ID must be an event id like 1700000000000-0 or 1700000000000-0.3 (parts below 2^64)',
        )
      if (open.size >= config.sseMaxConnections) {
        reply.header('retry-after', '5')
        throw new DtqError(
          'STREAMS_FULL',
          `this instance serves its maximum of ${config.sseMaxConnections} event streams; retry later`,
        )
      }
      const client = clientOf(req)
      const held = perClient.get(client) ?? 0
      if (held >= config.sseMaxConnectionsPerClient) {
        const err = new DtqError(
          'TOO_MANY_STREAMS',
          `at most ${config.sseMaxConnectionsPerClient} open event streams per ${auth.required ? 'token' : 'client address'}`,
        )
        ;(err as unknown as { retryAfter: string }).retryAfter = '5'
        throw err
      }

      // The slot is taken before the first await, so concurrent requests cannot all pass the caps.
      perClient.set(client, held + 1)
      const res = reply.raw
      let sub: Subscription | undefined
      let done = false
      const close = (reason?: string) => {
        if (done) return
        done = true
        open.delete(close)
        const left = (perClient.get(client) ?? 1) - 1
        if (left > 0) perClient.set(client, left)
        else perClient.delete(client)
        sub?.unsubscribe()
        if (res.writableEnded || res.destroyed || !res.headersSent) return
        res.end(reason ? `: ${reason}\n\n` : undefined)
        // A client that reads nothing would keep the socket (and its buffer) until it read that.
        const cut = setTimeout(() => res.destroy(), CLOSE_GRACE_MS)
        res.once('close', () => clearTimeout(cut))
      }
      open.add(close)
      try {
        sub = await hub.subscribe({ queue: q.queue, task_type: q.task_type, job_id: q.job_id }, res, {
          lastEventId,
          drop: close,
        })
      } catch (err) {
        close()
        throw err
      }
      if (done || req.raw.destroyed) {
        // The server began to close, or the client left, while the feed was being joined.
        sub.unsubscribe()
        if (done) throw new DtqError('DRAINING')
        close()
        reply.hijack()
        return
      }
      reply.hijack()
      res.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      })
      res.write('retry: 2000\n\n')
      res.on('close', () => close()) // the client went away (req 'close' fires once the request is read)
      res.on('error', () => close())
      // A replay that fails (Redis) ends the stream; the client resumes from what it got.
      await sub.replay().catch(() => close('the replay failed; resume with Last-Event-ID'))
    },
  )
}
