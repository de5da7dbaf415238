/**
 * The OpenTelemetry SDK of the `dtq` processes, imported only when the OTEL_* variables ask for
 * traces (tracing/index.ts). Configured by those variables as the SDK reads them: exporter
 * (OTEL_TRACES_EXPORTER, default otlp), endpoint, protocol (OTEL_EXPORTER_OTLP_PROTOCOL, default
 * http/protobuf), headers, sampler, batch delays (OTEL_BSP_*), resource (OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES), propagators. Traces only: metrics are Prometheus's (/metrics) and
 * logs pino's, so the SDK's metric and log pipelines get no readers.
 *
 * Instrumentations, none of which needs a loader hook (DTQ is ES modules):
 * - @fastify/otel, registered on every Fastify instance as it is created (a diagnostics
 *   channel): a SERVER span per request, continuing an incoming traceparent;
 * - ioredis's, with TRACE_REDIS: it patches ioredis's prototype when ioredis is required, so
 *   the require below hands it the module the ES imports already share.
 */
import { createRequire } from 'node:module'
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { NodeSDK } from '@opentelemetry/sdk-node'
import { otelNamesTheService } from '../config.ts'
import type { StartTracingOptions } from './index.ts'

/** Paths whose requests make no span: probes and scrapes, many per minute and of no interest. */
const QUIET = /^\/(health\/|metrics$)/

type Instrumentation = NonNullable<
  NonNullable<ConstructorParameters<typeof NodeSDK>[0]>['instrumentations']
>[number]

export async function startSdk(o: StartTracingOptions): Promise<() => Promise<void>> {
  const instrumentations: Instrumentation[] = [
    new FastifyOtelInstrumentation({
      registerOnInitialization: true,
      // One span per request and one for its handler; not one per hook (auth, CORS, limits...).
      instrumentHooks: false,
      ignorePaths: (r) => QUIET.test(r.url),
      // HTTP server spans are named "{method} {route}" (HTTP semantic conventions).
      requestHook: (span, req) => span.updateName(`${req.method} ${req.routeOptions.url ?? req.url}`),
    }) as unknown as Instrumentation,
  ]
  if (o.redisSpans) {
    const { IORedisInstrumentation } = await import('@opentelemetry/instrumentation-ioredis')
    // requireParentSpan: only commands of a traced operation (an enqueue, a handler's own calls),
    // not the fetch loop's and the lease keeper's, which would each be a trace of their own.
    instrumentations.push(new IORedisInstrumentation({ requireParentSpan: true }))
  }
  const sdk = new NodeSDK({
    serviceName: otelNamesTheService() ? undefined : o.serviceName,
    instrumentations,
    metricReaders: [],
    logRecordProcessors: [],
  })
  sdk.start()
  if (o.redisSpans) createRequire(import.meta.url)('ioredis')
  return () => sdk.shutdown()
}
