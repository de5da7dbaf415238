/**
 * buildApp(deps): the Fastify control plane, built without listening (tests use inject()).
 * Plugins and hooks in order: JSON parser (depth, prototype poisoning), security headers, the
 * Host check (DNS rebinding; host-check.ts), CORS, rate limit (Redis store, shared by instances,
 * per client as client-address.ts derives it), framing and auth (per-route role), metrics, the
 * audit of operator actions after their answer (audit.ts); one error
 * handler turns every error into `{error, code, message, details?}` and never leaks a 5xx
 * cause; what reaches no route (Node's client errors, URLs the router refuses) gets the same
 * shape (framing.ts).
 */
import { createServer } from 'node:http'
import cors from '@fastify/cors'
import rateLimit from '@fastify/rate-limit'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { type TypeBoxTypeProvider, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyServerOptions } from 'fastify'
import type { Config } from '../config.ts'
import { DtqError } from '../errors.ts'
import type { Queue } from '../queue/queue.ts'
import type { RedisClient } from '../redis/connection.ts'
import { installAudit } from './audit.ts'
import { type RouteRole, TokenAuth } from './auth.ts'
import { rateLimitKey, trustProxy } from './client-address.ts'
import { CONSOLE_CSP, consoleRewrite, serveConsole } from './console.ts'
import { errorHandler } from './error-handler.ts'
import { EventHub } from './events.ts'
import { checkFraming, clientErrorHandler, errorBody, frameworkErrors, MAX_PARAM_LENGTH } from './framing.ts'
import { hostCheck } from './host-check.ts'
import { parseJsonBody } from './json-body.ts'
import { HttpMetrics } from './metrics.ts'
import { adminRoutes } from './routes/admin.ts'
import { alertRoutes } from './routes/alerts.ts'
import { analyticsRoutes } from './routes/analytics.ts'
import { dlqRoutes } from './routes/dlq.ts'
import { eventRoutes } from './routes/events.ts'
import { flowRoutes } from './routes/flows.ts'
import { historyRoutes } from './routes/history.ts'
import { jobRoutes } from './routes/jobs.ts'
import { limitRoutes } from './routes/limits.ts'
import { replayRoutes } from './routes/replay.ts'
import { scheduleRoutes } from './routes/schedules.ts'
import { searchRoutes } from './routes/search.ts'
import { statsHistoryRoutes } from './routes/stats-history.ts'
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
  blocking: RedisClient
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
    // What no route answers, in the one error shape (framing.ts).
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    clientErrorHandler: clientErrorHandler(SECURITY_HEADERS),
    frameworkErrors: frameworkErrors(SECURITY_HEADERS),
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
  const hostAllowed = hostCheck(config, auth.required)
  if (hostAllowed) {
    app.addHook('onRequest', (req, _reply, done) => {
      if (hostAllowed(req.headers.host) || req.url.startsWith('/health/')) done()
      else
        done(
          new DtqError('HOST_NOT_ALLOWED', 'this server answers only to localhost names and ALLOWED_HOSTS'),
        )
    })
  }
  await app.register(cors, {
    origin: config.frontendOrigin.split(',').map((s) => s.trim()),
    methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Last-Event-ID'],
    maxAge: 600,
    // An OPTIONS request that is no preflight (no Origin) gets an empty 204, not a plain-text 400.
    strictPreflight: false,
  })
  if (config.rateLimitPerMin > 0) {
    await app.register(rateLimit, {
      max: config.rateLimitPerMin,
      timeWindow: 60_000,
      redis: queue.redis,
      nameSpace: `${config.keyPrefix}:ratelimit:`,
      skipOnError: true,
      keyGenerator: (req) => rateLimitKey(req.ip),
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
        description: 'Jobs, dead letters, queues, workers, schedules, events.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  })
  // The console's CSP fits swagger-ui too (its scripts and styles are files under /docs/static).
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: CONSOLE_CSP })

  app.addHook('onRequest', (req, _reply, done) => {
    // Routes say which role they need; the OpenAPI UI is public; anything else needs admin.
    const role =
      req.routeOptions.config.role ?? (req.routeOptions.url?.startsWith('/docs') ? 'public' : 'admin')
    try {
      checkFraming(req)
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
    // The URL the client sent: the console's internal routes (dtq dev) stay out of sight.
    reply
      .code(404)
      .send(errorBody(404, 'NOT_FOUND', `no route ${req.method} ${req.originalUrl.split('?')[0]}`))
  })

  app.setErrorHandler(errorHandler(config))
  app.decorate(
    'dtqAudit',
    installAudit(app, { redis: queue.redis, keys: queue.store.keys, config, auth, clock: queue.clock }),
  )

  await app.register(systemRoutes)
  await app.register(jobRoutes)
  await app.register(replayRoutes)
  await app.register(limitRoutes)
  await app.register(flowRoutes)
  await app.register(dlqRoutes)
  await app.register(adminRoutes)
  await app.register(scheduleRoutes)
  await app.register(eventRoutes)
  await app.register(alertRoutes)
  await app.register(historyRoutes)
  await app.register(statsHistoryRoutes)
  await app.register(analyticsRoutes)
  await app.register(searchRoutes)

  if (deps.consoleDir) await serveConsole(app, deps.consoleDir)
  app.get('/openapi.json', { config: { role: 'public' }, schema: { hide: true } }, async () => app.swagger())
  app.addHook('preClose', async () => {
    await hub.stop()
  })
  return app
}
