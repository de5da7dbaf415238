/**
 * buildApp(deps): the Fastify control plane, built without listening (tests use inject()).
 * Plugins and hooks in order: JSON parser (depth, prototype poisoning), security headers, CORS, rate
 * limit (Redis store, shared by instances), auth (per-route role), metrics; one error
 * handler turns every error into `{error, code, message, details?}` and never leaks a 5xx
 * cause.
 */
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import cors from '@fastify/cors'
import rateLimit from '@fastify/rate-limit'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { type TypeBoxTypeProvider, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyError, type FastifyServerOptions } from 'fastify'
import type { Redis } from 'ioredis'
import type { Config } from '../config.ts'
import { DtqError, ErrorCodes, isRedisFull, isRedisUnavailable } from '../errors.ts'
import type { Queue } from '../queue/queue.ts'
import { type RouteRole, TokenAuth } from './auth.ts'
import { consoleRewrite, serveConsole } from './console.ts'
import { EventHub } from './events.ts'
import { parseJsonBody } from './json-body.ts'
import { HttpMetrics } from './metrics.ts'
import { adminRoutes } from './routes/admin.ts'
import { dlqRoutes } from './routes/dlq.ts'
import { eventRoutes } from './routes/events.ts'
import { jobRoutes } from './routes/jobs.ts'
import { systemRoutes } from './routes/system.ts'

/** What helmet sets by default for a JSON API (checked by a test). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-site',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'SAMEORIGIN',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
}
export interface AppDeps {
  config: Config
  queue: Queue
  /** A separate connection for blocking reads (the events feed). */
  blocking: Redis
  logger?: FastifyServerOptions['logger']
  /** Laptop mode: the API under /api/… (what nginx strips) and the built console at /. */
  consoleDir?: string
  /** A request must arrive whole within this time (slowloris); default 10 s. */
  requestTimeoutMs?: number
}

export interface AppState {
  draining: boolean
}

declare module 'fastify' {
  interface FastifyContextConfig {
    role?: RouteRole
  }
  interface FastifyInstance {
    dtq: {
      config: Config
      queue: Queue
      hub: EventHub
      auth: TokenAuth
      state: AppState
      metrics: HttpMetrics
    }
  }
}

/** Log the URL without its query (an SSE access_token may be there) and no headers. */
export const SAFE_LOGGING = {
  serializers: {
    req: (req: { method: string; url: string; ip?: string }) => ({
      method: req.method,
      url: req.url.split('?')[0],
      ip: req.ip,
    }),
  },
  redact: ['req.headers.authorization', 'headers.authorization'],
}

function trustProxy(v: string): FastifyServerOptions['trustProxy'] {
  if (v === 'false' || v === '') return false
  if (v === 'true') return true
  if (/^\d+$/.test(v)) return Number(v) as unknown as FastifyServerOptions['trustProxy'] // hop count (supported, untyped)
  return v.split(',').map((s) => s.trim())
}

export async function buildApp(deps: AppDeps) {
  const { config, queue } = deps
  const requestTimeout = deps.requestTimeoutMs ?? 10_000
  const app = Fastify({
    logger: deps.logger ? { ...(deps.logger as object), ...SAFE_LOGGING } : false,
    // Node checks request timeouts only every connectionsCheckingInterval (30 s by default).
    serverFactory: (handler) =>
      createServer(
        {
          requestTimeout,
          headersTimeout: requestTimeout,
          connectionsCheckingInterval: Math.max(100, Math.min(1000, requestTimeout / 2)),
        },
        handler,
      ),
    // Longer than a load balancer's idle timeout (ALB: 60 s), so it never reuses a closed socket.
    keepAliveTimeout: 65_000,
    bodyLimit: config.maxBodyBytes,
    trustProxy: trustProxy(config.trustProxy),
    forceCloseConnections: 'idle',
    requestTimeout,
    ajv: { customOptions: { removeAdditional: false } },
    rewriteUrl: deps.consoleDir ? consoleRewrite : undefined,
  }).withTypeProvider<TypeBoxTypeProvider>()
  app.setValidatorCompiler(TypeBoxValidatorCompiler)

  const auth = new TokenAuth(config.apiTokens, config.authDisabled)
  const state: AppState = { draining: false }
  const metrics = new HttpMetrics()
  const hub = new EventHub(queue.store, deps.blocking, config)
  app.decorate('dtq', { config, queue, hub, auth, state, metrics })

  app.removeContentTypeParser(['application/json', 'text/plain'])
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseJsonBody(body as string))
    } catch (err) {
      done(err as Error, undefined)
    }
  })

  // helmet's headers for a JSON API (its defaults, CSP off: the console's CSP belongs to nginx;
  // resource policy same-site), set in one call: @fastify/helmet's chain of 12 middlewares cost
  // ~5 % of the API's CPU per request.
  app.addHook('onRequest', (_req, reply, done) => {
    reply.headers(SECURITY_HEADERS)
    done()
  })
  await app.register(cors, {
    origin: config.frontendOrigin.split(',').map((s) => s.trim()),
    methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Last-Event-ID'],
    maxAge: 600,
  })
  if (config.rateLimitPerMin > 0) {
    await app.register(rateLimit, {
      max: config.rateLimitPerMin,
      timeWindow: 60_000,
      redis: queue.redis,
      nameSpace: `${config.keyPrefix}:ratelimit:`,
      skipOnError: true,
      // Client addresses reach a Redis key only as a hash.
      keyGenerator: (req) => createHash('sha256').update(req.ip).digest('base64url').slice(0, 22),
      allowList: (req) => req.url.startsWith('/health/'),
      errorResponseBuilder: (_req, ctx) => {
        const err = new DtqError('RATE_LIMITED', `rate limit of ${ctx.max} requests per minute reached`)
        ;(err as unknown as { retryAfter: string }).retryAfter = String(Math.ceil(ctx.ttl / 1000))
        return err
      },
    })
  }

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'DTQ API',
        version: '0.1.0',
        description: 'Jobs, dead letters, queues, workers, events.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })

  app.addHook('onRequest', (req, _reply, done) => {
    // Routes say which role they need; the OpenAPI UI is public; anything else needs admin.
    const role =
      req.routeOptions.config.role ?? (req.routeOptions.url?.startsWith('/docs') ? 'public' : 'admin')
    try {
      auth.check(req, role, req.routeOptions.url === '/events')
    } catch (err) {
      done(err as Error)
      return
    }
    done()
  })
  // While draining, every answer closes its connection: a proxy's idle keep-alive socket to this
  // instance would otherwise be cut when the server closes, just as the proxy reuses it for a
  // POST it must not retry (a 502 during a rolling deploy).
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (state.draining) reply.header('connection', 'close')
    done(null, payload)
  })
  app.addHook('onResponse', (req, reply, done) => {
    metrics.observe(req.method, req.routeOptions.url ?? 'unknown', reply.statusCode, reply.elapsedTime / 1000)
    done()
  })

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({
      error: 'Not Found',
      code: 'NOT_FOUND',
      message: `no route ${req.method} ${req.url.split('?')[0]}`,
    })
  })

  app.setErrorHandler((err: FastifyError | DtqError, req, reply) => {
    let status = 500
    let code = 'INTERNAL'
    let message: string = ErrorCodes.INTERNAL.message
    let details: unknown
    if (err instanceof DtqError) {
      status = err.status
      code = err.code
      message = err.message
      details = err.details
    } else if ((err as FastifyError).validation) {
      status = 400
      code = 'VALIDATION'
      const where = (err as FastifyError).validationContext ?? 'request'
      // TypeBox reports an unknown field as "schema is false" on it (plus a summary on its parent).
      const v = ((err as FastifyError).validation ?? [])
        .map((e) => ({
          path: e.instancePath || '/',
          message: e.message === 'schema is false' ? 'is not a known field' : (e.message ?? 'is invalid'),
        }))
        .filter(
          (e, _i, all) =>
            !(
              e.message.includes('additional properties') &&
              all.some((o) => o.message === 'is not a known field')
            ),
        )
      details = v.map((e) => ({ path: `${where}${e.path === '/' ? '' : e.path}`, message: e.message }))
      message = `invalid ${where}: ${v
        .slice(0, 5)
        .map((e) => `${e.path} ${e.message}`)
        .join('; ')}`
    } else if (isRedisFull(err)) {
      // Redis at maxmemory refuses new work (the enqueue functions are not allow-oom); work in
      // flight goes on, retention frees memory, and the retry after a while succeeds.
      status = 503
      code = 'REDIS_OUT_OF_MEMORY'
      message = ErrorCodes.REDIS_OUT_OF_MEMORY.message
      reply.header('retry-after', '5')
    } else if (isRedisUnavailable(err)) {
      status = 503
      code = 'REDIS_UNAVAILABLE'
      message = ErrorCodes.REDIS_UNAVAILABLE.message
      reply.header('retry-after', '1')
    } else if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413
      code = 'PAYLOAD_TOO_LARGE'
      message = `the body is larger than ${config.maxBodyBytes} bytes`
    } else if ((err as FastifyError).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      status = 415
      code = 'UNSUPPORTED_MEDIA_TYPE'
      message = 'send application/json'
    } else if (
      typeof (err as FastifyError).statusCode === 'number' &&
      (err as FastifyError).statusCode! < 500
    ) {
      status = (err as FastifyError).statusCode!
      code = ((err as FastifyError).code ?? 'BAD_REQUEST').replace(/^FST_ERR_/, '')
      message = err.message
    }
    if (status === 429 && (err as unknown as { retryAfter?: string }).retryAfter) {
      reply.header('retry-after', (err as unknown as { retryAfter: string }).retryAfter)
    }
    if (status >= 500 && status !== 503) req.log.error({ err }, 'request failed')
    const reason =
      status === 503 ? 'Service Unavailable' : status >= 500 ? 'Internal Server Error' : httpReason(status)
    reply
      .code(status)
      .send(
        details === undefined ? { error: reason, code, message } : { error: reason, code, message, details },
      )
  })

  await app.register(systemRoutes)
  await app.register(jobRoutes)
  await app.register(dlqRoutes)
  await app.register(adminRoutes)
  await app.register(eventRoutes)

  if (deps.consoleDir) await serveConsole(app, deps.consoleDir)
  app.get('/openapi.json', { config: { role: 'public' }, schema: { hide: true } }, async () => app.swagger())
  app.addHook('preClose', async () => {
    await hub.stop()
  })
  return app
}

function httpReason(status: number): string {
  const reasons: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    409: 'Conflict',
    413: 'Payload Too Large',
    415: 'Unsupported Media Type',
    429: 'Too Many Requests',
  }
  return reasons[status] ?? 'Error'
}
