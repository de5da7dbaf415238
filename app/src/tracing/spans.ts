/**
 * DTQ's own spans, after OpenTelemetry's messaging semantic conventions (ADR 0023), made with
 * @opentelemetry/api's global tracer: loaded only once tracing is on (tracing/index.ts).
 *
 *   send <queue>     PRODUCER  one job added (add, POST /jobs, a job with depends_on)
 *   create <queue>   PRODUCER  each job of a batch (addBulk, POST /jobs/batch) ...
 *   send <queue>     CLIENT    ... and the batch's write, linked to them
 *   send flow        PRODUCER  a flow (POST /flows): every node carries its context
 *   process <queue>  CONSUMER  each run of a job (first attempt, retries, reclaimed runs): its
 *                              parent is the context the job carries, also given as a link;
 *                              the handler runs inside it, so the handler's spans are children
 *
 * The context travels in the job's `trace` field (hash field `tr`) as a W3C traceparent, then a
 * space and the tracestate when there is one (the whole at most 512 characters). It is written
 * and read here, whatever propagators the SDK has: the field's format is DTQ's.
 */
import {
  type Attributes,
  type Context,
  context,
  createContextKey,
  createTraceState,
  isSpanContextValid,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api'
import { ATTR_ERROR_TYPE } from '@opentelemetry/semantic-conventions'
import { errorClass } from '../errors.ts'
import type { Job } from '../queue/job.ts'

/** The messaging attributes (incubating in @opentelemetry/semantic-conventions: spelled here, as its README advises). */
export const ATTR = {
  system: 'messaging.system',
  destination: 'messaging.destination.name',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  messageId: 'messaging.message.id',
  batchCount: 'messaging.batch.message_count',
  consumerGroup: 'messaging.consumer.group.name',
  clientId: 'messaging.client.id',
  taskType: 'dtq.task_type',
  attempt: 'dtq.attempt',
  priority: 'dtq.job.priority',
  outcome: 'dtq.outcome',
  created: 'dtq.job.created',
  flowId: 'dtq.flow.id',
  schedule: 'dtq.schedule',
} as const

/** messaging.system: not one of the registry's values, so DTQ's own name (as the conventions allow). */
export const SYSTEM = 'dtq'

const TRACE_MAX = 512
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/
const JOB_ID = createContextKey('dtq.job_id')

/** The job's `trace` field for a span context: traceparent [space tracestate]. */
export function encodeTrace(sc: SpanContext): string {
  const parent = `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`
  const state = sc.traceState?.serialize()
  // tracestate is optional context: dropped rather than cut when the field would be too long.
  return state && parent.length + 1 + state.length <= TRACE_MAX ? `${parent} ${state}` : parent
}

/** The remote span context a job's `trace` field names, or undefined (absent or not W3C). */
export function decodeTrace(field: string | null | undefined): SpanContext | undefined {
  if (!field) return undefined
  const space = field.indexOf(' ')
  const m = TRACEPARENT.exec(space < 0 ? field : field.slice(0, space))
  if (!m) return undefined
  const sc: SpanContext = {
    traceId: m[1]!,
    spanId: m[2]!,
    traceFlags: Number.parseInt(m[3]!, 16),
    isRemote: true,
    traceState: space < 0 ? undefined : createTraceState(field.slice(space + 1)),
  }
  return isSpanContextValid(sc) ? sc : undefined
}

/** A job about to be written: where it goes, and the record whose extra fields get the context. */
export interface Outgoing {
  queue: string
  task_type: string
  priority: string
  /** The record's extra hash fields: `trace` is set here (field code given by the caller). */
  extra: Record<string, string>
}

/**
 * The spans of one enqueue call: the write goes through run() (its Redis calls are the send
 * span's children, with TRACE_REDIS); end() once Redis answered, with each job's id (in order).
 */
export interface SendSpans {
  run<T>(write: () => T): T
  end(ids: Array<{ id: string; created: boolean } | undefined>, err?: unknown): void
}

const NO_SPANS: SendSpans = { run: (write) => write(), end() {} }

/** One run of a job: its handler goes through run(); end() once its outcome is written. */
export interface ConsumerSpan {
  readonly ids: { trace_id: string; span_id: string }
  run<T>(fn: () => T): T
  end(outcome: string, error?: Error): void
}

function failSpan(span: Span, err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err))
  span.recordException(e)
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message.slice(0, 500) })
  span.setAttribute(ATTR_ERROR_TYPE, errorClass(e))
}

export class JobTracer {
  private readonly tracer: Tracer

  constructor(tracer: Tracer = trace.getTracer('dtq')) {
    this.tracer = tracer
  }

  /**
   * Producer spans for the jobs of one add/addBulk call (children of the active context, e.g.
   * the HTTP request's), whose contexts go into the jobs' `trace` fields. Jobs that already
   * carry a trace (given by the caller) keep it and get no span.
   */
  send(jobs: Outgoing[], traceField: string): SendSpans {
    const todo = jobs.flatMap((j, i) => (j.extra[traceField] ? [] : [i]))
    if (!todo.length) return NO_SPANS
    const parent = context.active()
    if (jobs.length === 1) {
      const j = jobs[0]!
      const span = this.tracer.startSpan(
        `send ${j.queue}`,
        { kind: SpanKind.PRODUCER, attributes: this.messageAttrs(j, 'send') },
        parent,
      )
      j.extra[traceField] = encodeTrace(span.spanContext())
      return {
        run: (write) => context.with(trace.setSpan(parent, span), write),
        end: (ids, err) => {
          const r = ids[0]
          if (r) span.setAttributes({ [ATTR.messageId]: r.id, [ATTR.created]: r.created })
          if (err) failSpan(span, err)
          span.end()
        },
      }
    }
    // A batch: a `create` span per job (its context travels with the job), and one `send` span
    // for the write, linked to them (messaging conventions, batch sending).
    const creates = new Map<number, Span>()
    for (const i of todo) {
      const j = jobs[i]!
      const span = this.tracer.startSpan(
        `create ${j.queue}`,
        { kind: SpanKind.PRODUCER, attributes: this.messageAttrs(j, 'create') },
        parent,
      )
      j.extra[traceField] = encodeTrace(span.spanContext())
      creates.set(i, span)
    }
    const queues = new Set(jobs.map((j) => j.queue))
    const only = queues.size === 1 ? jobs[0]!.queue : undefined
    const links: Link[] = [...creates.values()].map((s) => ({ context: s.spanContext() }))
    const attributes: Attributes = {
      [ATTR.system]: SYSTEM,
      [ATTR.operationType]: 'send',
      [ATTR.operationName]: 'send',
      [ATTR.batchCount]: jobs.length,
    }
    if (only) attributes[ATTR.destination] = only
    const batch = this.tracer.startSpan(
      only ? `send ${only}` : 'send',
      { kind: SpanKind.CLIENT, attributes, links },
      parent,
    )
    return {
      run: (write) => context.with(trace.setSpan(parent, batch), write),
      end: (ids, err) => {
        for (const [i, span] of creates) {
          const r = ids[i]
          if (r) span.setAttributes({ [ATTR.messageId]: r.id, [ATTR.created]: r.created })
          else if (err) failSpan(span, err)
          span.end()
        }
        if (err) failSpan(batch, err)
        batch.end()
      },
    }
  }

  /** One producer span for a flow; every node carries its context. */
  sendFlow(flowId: string, nodes: Outgoing[], traceField: string): SendSpans {
    const parent = context.active()
    const span = this.tracer.startSpan(
      'send flow',
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          [ATTR.system]: SYSTEM,
          [ATTR.operationType]: 'send',
          [ATTR.operationName]: 'send',
          [ATTR.batchCount]: nodes.length,
          [ATTR.flowId]: flowId,
        },
      },
      parent,
    )
    const field = encodeTrace(span.spanContext())
    for (const n of nodes) if (!n.extra[traceField]) n.extra[traceField] = field
    return {
      run: (write) => context.with(trace.setSpan(parent, span), write),
      end: (_ids, err) => {
        if (err) failSpan(span, err)
        span.end()
      },
    }
  }

  /**
   * The span of one run of a job: parent the context the job carries (so every attempt of a job
   * sits in its producer's trace), with a link to it as the conventions ask of consumers. Built
   * from the root context, never the active one: the fetch loop runs in whatever context last
   * woke it, which may be another job's.
   */
  process(job: Job, consumer: string): ConsumerSpan {
    const remote = decodeTrace(job.trace)
    const parent = remote ? trace.setSpanContext(ROOT_CONTEXT, remote) : ROOT_CONTEXT
    const span = this.tracer.startSpan(
      `process ${job.queue}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          [ATTR.system]: SYSTEM,
          [ATTR.destination]: job.queue,
          [ATTR.operationType]: 'process',
          [ATTR.operationName]: 'process',
          [ATTR.messageId]: job.id,
          [ATTR.consumerGroup]: 'workers',
          [ATTR.clientId]: consumer,
          [ATTR.taskType]: job.task_type,
          [ATTR.attempt]: job.attempts,
          [ATTR.priority]: job.priority,
        },
        links: remote ? [{ context: remote }] : undefined,
      },
      parent,
    )
    // What made the job, to find its runs by: its schedule (a fire carries no context, ADR 0023) or flow.
    if (job.schedule) span.setAttribute(ATTR.schedule, job.schedule)
    if (job.flow_id) span.setAttribute(ATTR.flowId, job.flow_id)
    const ctx: Context = trace.setSpan(parent, span).setValue(JOB_ID, job.id)
    const sc = span.spanContext()
    return {
      ids: { trace_id: sc.traceId, span_id: sc.spanId },
      run: (fn) => context.with(ctx, fn),
      end: (outcome, error) => {
        span.setAttribute(ATTR.outcome, outcome)
        if (error) failSpan(span, error)
        span.end()
      },
    }
  }

  /** Log fields of the active context: trace_id, span_id, and job_id inside a job's run. */
  logFields(): object {
    const ctx = context.active()
    const sc = trace.getSpanContext(ctx)
    if (!sc || !isSpanContextValid(sc)) return {}
    const job = ctx.getValue(JOB_ID)
    return job === undefined
      ? { trace_id: sc.traceId, span_id: sc.spanId }
      : { trace_id: sc.traceId, span_id: sc.spanId, job_id: job }
  }

  private messageAttrs(j: Outgoing, op: 'send' | 'create'): Attributes {
    return {
      [ATTR.system]: SYSTEM,
      [ATTR.destination]: j.queue,
      [ATTR.operationType]: op,
      [ATTR.operationName]: op,
      [ATTR.taskType]: j.task_type,
      [ATTR.priority]: j.priority,
    }
  }
}
