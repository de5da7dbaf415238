/**
 * Audit of operator actions over HTTP (ADR 0026): a hook records every non-GET request to an
 * operator route -- whatever its outcome, refusals (401/403/400) included -- after its answer
 * is sent, so recording adds nothing to the action's latency and cannot fail it. Production
 * traffic (creating jobs and flows) and requests that write nothing (a schedule's preview) are
 * not operator actions and are not recorded. GET /audit reads the log (admin: it shows who did
 * what from where).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Static } from 'typebox'
import type { Config } from '../config.ts'
import { AuditLog } from '../redis/audit.ts'
import type { RedisClient } from '../redis/connection.ts'
import type { Keys } from '../redis/keys.ts'
import type { Clock } from '../redis/store.ts'
import { bearerToken, type TokenAuth } from './auth.ts'
import { AuditPage, AuditQuery } from './ops-schemas.ts'
import { errorReplies } from './schemas.ts'

/** Routes that are production traffic or read only, though not GETs: never audited. */
export const NOT_AUDITED: ReadonlySet<string> = new Set([
  'POST /jobs',
  'POST /jobs/batch',
  'POST /flows',
  'POST /schedules/preview',
])
const READS = new Set(['GET', 'HEAD', 'OPTIONS'])

declare module 'fastify' {
  interface FastifyInstance {
    dtqAudit: AuditLog
  }
  interface FastifyContextConfig {
    /** false: this route's requests are not operator actions (NOT_AUDITED lists the built-in ones). */
    audit?: boolean
  }
}

/** `METHOD /route` when the request is an operator action, else null. */
export function auditedAction(req: FastifyRequest): string | null {
  const url = req.routeOptions.url
  if (!url || READS.has(req.method) || req.routeOptions.config.audit === false) return null
  const action = `${req.method} ${url}`
  return NOT_AUDITED.has(action) ? null : action
}

/** What an action touched: its route parameters and the queue of its query or body. Never a body's content. */
function targetOf(req: FastifyRequest): string {
  const parts: string[] = []
  const params = (req.params ?? {}) as Record<string, unknown>
  for (const [k, v] of Object.entries(params)) if (typeof v === 'string') parts.push(`${k}=${v}`)
  if (!('queue' in params)) {
    const q = (req.query as Record<string, unknown> | undefined)?.queue
    const b =
      req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>).queue : undefined
    const queue = typeof q === 'string' ? q : typeof b === 'string' ? b : undefined
    if (queue !== undefined) parts.unshift(`queue=${queue}`)
  }
  return parts.join(' ')
}

/** The query string without the one secret a query may carry. */
function detailOf(req: FastifyRequest): string {
  const i = req.url.indexOf('?')
  if (i < 0) return ''
  const q = new URLSearchParams(req.url.slice(i + 1))
  q.delete('access_token')
  return q.toString()
}

/** Installs the recording hooks and GET /audit on the app (before its routes are registered). */
export function installAudit(
  app: FastifyInstance,
  deps: {
    redis: RedisClient
    keys: Keys
    config: Pick<Config, 'auditMaxLen'>
    auth: TokenAuth
    /** The fleet's time (Redis's, ADR 0012): what every process writes. */
    clock: Clock
  },
): AuditLog {
  const audit = new AuditLog(deps.redis, deps.keys, deps.config.auditMaxLen, (err) =>
    app.log.warn({ err: (err as Error).message }, 'audit entry not written'),
  )
  const codes = new WeakMap<FastifyRequest, string>()

  // The answered error code (the error handler's body), read only for audited failures.
  app.addHook('onSend', (req, reply, payload, done) => {
    if (audit.enabled && reply.statusCode >= 400 && typeof payload === 'string' && auditedAction(req)) {
      try {
        const code = (JSON.parse(payload) as { code?: unknown }).code
        if (typeof code === 'string') codes.set(req, code)
      } catch {
        // not JSON: the status says enough
      }
    }
    done(null, payload)
  })

  app.addHook('onResponse', async (req, reply) => {
    const action = audit.enabled ? auditedAction(req) : null
    if (!action) return
    const token = bearerToken(req.headers.authorization)
    const who = !deps.auth.required
      ? { name: 'anonymous', role: 'admin' }
      : (token && deps.auth.actorOf(token)) || { name: 'anonymous', role: '' }
    const status = reply.statusCode
    await audit.record({
      at: deps.clock.now(),
      actor: who.name,
      role: who.role,
      action,
      target: targetOf(req),
      status,
      result: status < 400 ? 'ok' : (codes.get(req) ?? `HTTP_${status}`),
      ip: req.ip,
      user_agent: String(req.headers['user-agent'] ?? ''),
      request_id: String(req.id),
      duration_ms: reply.elapsedTime,
      detail: detailOf(req),
    })
  })

  app.get(
    '/audit',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['system'],
        summary:
          'Operator actions, newest first (who, what, target, result, when, from where): filter by actor, ' +
          'action and target (substrings), result (ok, error or a code), since/until (ms); page with cursor',
        querystring: AuditQuery,
        response: { 200: AuditPage, ...errorReplies() },
      },
    },
    async (req) => {
      const q = req.query as Static<typeof AuditQuery>
      const page = await audit.list({ ...q, limit: q.limit ?? 100 })
      return { ...page, write_failures: audit.writeFailures }
    },
  )
  return audit
}
