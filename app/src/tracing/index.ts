/**
 * Tracing (ADR 0023): OpenTelemetry spans for enqueues and job runs, off unless asked for.
 *
 * This module loads nothing of OpenTelemetry. The hot paths (Queue.addBulk, Processor.execute,
 * the log mixin) read `activeTracer`, a live binding that stays null until tracing is turned on:
 * - by the `dtq` commands when the standard OTEL_* variables ask for traces (config.ts
 *   `tracingRequested`): startTracing() imports the OpenTelemetry SDK (sdk.ts) and starts it;
 * - by a program that embeds Queue/Worker and runs its own SDK: enableTracing() makes DTQ's
 *   spans through @opentelemetry/api's global tracer provider, which that SDK registered.
 */
import { setLogContext } from '../logger.ts'
import type { JobTracer } from './spans.ts'

export type { ConsumerSpan, JobTracer, Outgoing, SendSpans } from './spans.ts'

/** The tracer every enqueue and job run asks; null: tracing is off (one check, nothing else). */
export let activeTracer: JobTracer | null = null

let sdkStop: (() => Promise<void>) | null = null

/**
 * TRACE_REDIS is on (startTracing with redisSpans): the Redis clients made from then on send each
 * command as it is made instead of auto-pipelining them (redis/connection.ts). An auto-pipelined
 * command leaves in a batch flushed from the context of the tick's first command, whatever the
 * caller's, so ioredis's instrumentation would give it another operation's span as parent -- or
 * none (a background loop's command first): a traced enqueue's commands were missing from its
 * trace. Correct spans cost the round trips auto-pipelining saves: TRACE_REDIS is for debugging.
 */
export let redisCommandSpans = false

/**
 * Library use: DTQ's enqueues and job runs make spans with the global OpenTelemetry tracer
 * provider (register your SDK first; with none registered the spans are no-ops).
 */
export async function enableTracing(): Promise<void> {
  if (activeTracer) return
  const { JobTracer } = await import('./spans.ts')
  const tracer = new JobTracer()
  activeTracer = tracer
  setLogContext(() => tracer.logFields())
}

/** Turns DTQ's spans off again (tests; a library user that stops its SDK). */
export function disableTracing(): void {
  activeTracer = null
  setLogContext(null)
}

export interface StartTracingOptions {
  /** service.name when OTEL_SERVICE_NAME does not give one (dtq-api, dtq-worker, dtq-dev). */
  serviceName: string
  /** A span per Redis command made inside a traced operation (TRACE_REDIS). */
  redisSpans: boolean
}

/**
 * The `dtq` processes: starts the OpenTelemetry SDK (configured by the OTEL_* variables: exporter,
 * endpoint, protocol, sampler, resource) with the Fastify instrumentation (and ioredis's when
 * asked), then DTQ's own spans. Call it before the HTTP server and the Redis clients are made.
 */
export async function startTracing(o: StartTracingOptions): Promise<void> {
  if (sdkStop) return
  const { startSdk } = await import('./sdk.ts')
  sdkStop = await startSdk(o)
  redisCommandSpans = o.redisSpans
  await enableTracing()
}

/** Ends the spans' export: whatever is still buffered is sent (bounded by the exporter's timeout). */
export async function stopTracing(): Promise<void> {
  const stop = sdkStop
  sdkStop = null
  redisCommandSpans = false
  disableTracing()
  await stop?.().catch(() => {})
}
