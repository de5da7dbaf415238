/**
 * /metrics in Prometheus text. Engine figures come from Redis at scrape time, so every API
 * instance reports the same cluster-wide values (scrape one, or aggregate with max()):
 * totals by queue and type, run and wait histograms, jobs by state, stream depth, pending and
 * lag per priority, delayed, DLQ, oldest waiting job, live workers. HTTP route metrics are
 * this process's own (prom-client).
 */
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client'
import { STATES } from '../queue/job.ts'
import { HISTOGRAM_BUCKETS_MS } from '../redis/keys.ts'
import type { LimitsView } from '../redis/limits.ts'
import type { WorkerInfo } from '../redis/registry.ts'
import type { QueueStats } from '../redis/store.ts'
import { limitMetrics } from './metrics-limits.ts'
import { seedMetrics } from './metrics-seed.ts'

export class HttpMetrics {
  readonly registry = new Registry()
  readonly requests: Histogram<'method' | 'route' | 'status'>
  private readonly children = new Map<
    string,
    ReturnType<Histogram<'method' | 'route' | 'status'>['labels']>
  >()

  constructor() {
    collectDefaultMetrics({ register: this.registry })
    this.requests = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    })
  }

  /** Records one request; the labelled child is looked up once per (method, route, status). */
  observe(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${route} ${status}`
    let child = this.children.get(key)
    if (!child) {
      child = this.requests.labels(method, route, String(status))
      this.children.set(key, child)
    }
    child.observe(seconds)
  }
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
const labels = (l: Record<string, string>) => {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`)
  return parts.length ? `{${parts.join(',')}}` : ''
}

/** Prometheus text exposition, metric by metric (also used by metrics-tasks.ts). */
export class Text {
  private out: string[] = []
  metric(
    name: string,
    type: 'counter' | 'gauge' | 'histogram',
    help: string,
    rows: Array<[Record<string, string>, number]>,
    suffix = '',
  ) {
    this.out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    for (const [l, v] of rows) this.out.push(`${name}${suffix}${labels(l)} ${v}`)
  }
  /** A histogram from per-bucket counts (HISTOGRAM_BUCKETS_MS, then +Inf) and a sum in ms. */
  histogram(
    name: string,
    help: string,
    series: Array<{ queue: string; labels?: Record<string, string>; buckets: number[]; sumMs: number }>,
  ) {
    this.out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`)
    for (const { queue, labels: extra, buckets, sumMs } of series) {
      const l = { queue, ...extra }
      let cum = 0
      HISTOGRAM_BUCKETS_MS.forEach((le, i) => {
        cum += buckets[i] ?? 0
        this.out.push(`${name}_bucket${labels({ ...l, le: String(le / 1000) })} ${cum}`)
      })
      cum += buckets[HISTOGRAM_BUCKETS_MS.length] ?? 0
      this.out.push(`${name}_bucket${labels({ ...l, le: '+Inf' })} ${cum}`)
      this.out.push(`${name}_sum${labels(l)} ${sumMs / 1000}`)
      this.out.push(`${name}_count${labels(l)} ${cum}`)
    }
  }
  toString() {
    return `${this.out.join('\n')}\n`
  }
}

/**
 * Renders the engine metrics from queue stats (their `totals` carry the raw stats hash), the
 * live workers and the queues' limits: DTQ's own series, the seeds' task series
 * (metrics-seed.ts) and flow control's (metrics-limits.ts).
 */
export function engineMetrics(
  queues: QueueStats[],
  workers: WorkerInfo[],
  limits: LimitsView[] = [],
): string {
  const t = new Text()
  const counters: Array<[string, string, string]> = [
    ['jobs_created_total', 'created', 'jobs accepted'],
    ['jobs_completed_total', 'completed', 'jobs completed'],
    ['jobs_failed_total', 'failed', 'jobs dead-lettered (retries exhausted, permanent failure, poison)'],
    ['jobs_retried_total', 'retried', 'failed attempts scheduled for a retry'],
    ['jobs_cancelled_total', 'cancelled', 'jobs cancelled'],
  ]
  for (const [name, field, help] of counters) {
    const rows: Array<[Record<string, string>, number]> = []
    for (const q of queues) {
      for (const [k, v] of Object.entries(q.totals)) {
        if (k.startsWith(`${field}|`)) rows.push([{ queue: q.queue, type: k.slice(field.length + 1) }, v])
      }
    }
    t.metric(name, 'counter', help, rows)
  }
  const plain: Array<[string, string, string]> = [
    ['jobs_stalled_total', 'stalled', 'jobs whose lease lapsed and were reclaimed'],
    [
      'jobs_stale_writes_total',
      'stale_writes',
      'outcomes rejected because the writer no longer owned the job',
    ],
    ['jobs_held_total', 'fc_held', 'jobs held by a concurrency or per-key limit (ADR 0022)'],
    ['jobs_deferred_total', 'fc_deferred', 'jobs deferred by a rate limit, an open breaker or a paused type'],
    ['breaker_opened_total', 'breaker_opened', 'times a task type breaker opened'],
    ['breaker_closed_total', 'breaker_closed', 'times a task type breaker closed after a probe'],
    [
      'stream_lost_entries_total',
      'lost_entries',
      'pending entries deleted from a stream outside DTQ (must stay 0)',
    ],
  ]
  for (const [name, field, help] of plain) {
    t.metric(
      name,
      'counter',
      help,
      queues.map((q) => [{ queue: q.queue }, q.totals[field] ?? 0]),
    )
  }
  const hist = (name: string) =>
    queues.map((q) => ({
      queue: q.queue,
      buckets: Array.from(
        { length: HISTOGRAM_BUCKETS_MS.length + 1 },
        (_, i) => q.totals[`h|${name}|${i + 1}`] ?? 0,
      ),
      sumMs: q.totals[`h|${name}|sum_ms`] ?? 0,
    }))
  t.histogram('job_run_duration_seconds', 'time from start to end of an attempt', hist('run'))
  t.histogram('job_wait_duration_seconds', 'time from ready to started', hist('wait'))
  t.metric(
    'jobs',
    'gauge',
    'jobs by state',
    queues.flatMap((q) =>
      STATES.map((s): [Record<string, string>, number] => [{ queue: q.queue, state: s }, q.counts[s]]),
    ),
  )
  // A value Redis left unknown (a stream's lag: null) has no sample, rather than a made-up one.
  const perPriority = (pick: (s: QueueStats['streams']['high']) => number | null) =>
    queues.flatMap((q) =>
      (['high', 'normal', 'low'] as const).flatMap((p): Array<[Record<string, string>, number]> => {
        const v = pick(q.streams[p])
        return v === null ? [] : [[{ queue: q.queue, priority: p }, v]]
      }),
    )
  t.metric(
    'stream_length',
    'gauge',
    'entries in a priority stream (waiting + pending)',
    perPriority((s) => s.length),
  )
  t.metric(
    'stream_pending',
    'gauge',
    'delivered entries not yet acknowledged (running jobs)',
    perPriority((s) => s.pending),
  )
  t.metric(
    'stream_lag',
    'gauge',
    'entries not yet delivered (waiting jobs)',
    perPriority((s) => s.lag),
  )
  t.metric(
    'delayed_jobs',
    'gauge',
    'scheduled and retrying jobs',
    queues.map((q) => [{ queue: q.queue }, q.delayed]),
  )
  t.metric(
    'dlq_jobs',
    'gauge',
    'dead-lettered jobs',
    queues.map((q) => [{ queue: q.queue }, q.dlq]),
  )
  t.metric(
    'oldest_waiting_job_age_seconds',
    'gauge',
    'age of the oldest job waiting to be delivered',
    queues.map((q) => [{ queue: q.queue }, (q.oldest_waiting_ms ?? 0) / 1000]),
  )
  t.metric(
    'queue_paused',
    'gauge',
    '1 when the queue is paused',
    queues.map((q) => [{ queue: q.queue }, q.paused ? 1 : 0]),
  )
  t.metric('workers_live', 'gauge', 'workers with a recent heartbeat', [[{}, workers.length]])
  seedMetrics(t, queues, workers)
  limitMetrics(t, limits)
  return t.toString()
}
