/**
 * The task metrics the seeds name (`task_submissions_total`, `task_failures_total`, …: README,
 * "Metrics"), each with the seed's labels plus `queue`, and the run time per task type. All come
 * from the queues' stats hashes and the worker registry at scrape time, like the rest of
 * /metrics. Cardinality is bounded where the counts are kept: task types at 200 per queue (later
 * ones count as `_other`), error classes at 50 per queue (`_other`), priorities 3, workers the
 * live ones only (docs/decisions/0024).
 */

import { logicalQueue } from '../queue/partitions.ts'
import { HISTOGRAM_BUCKETS_MS } from '../redis/keys.ts'
import type { WorkerInfo } from '../redis/registry.ts'
import type { QueueStats } from '../redis/store.ts'
import type { Text } from './metrics.ts'

type Rows = Array<[Record<string, string>, number]>

/** Stats fields `<field>|<a>` or `<field>|<a>|<b>` of one queue, split (types and labels hold no `|`). */
function fieldsOf(q: QueueStats, field: string): Array<[string[], number]> {
  const out: Array<[string[], number]> = []
  const pre = `${field}|`
  for (const [k, v] of Object.entries(q.totals))
    if (k.startsWith(pre)) out.push([k.slice(pre.length).split('|'), v])
  return out
}

/** A counter per (queue, type) from the typed field `<field>|<type>`. */
const byType = (queues: QueueStats[], field: string): Rows =>
  queues.flatMap((q) =>
    fieldsOf(q, field)
      .filter(([p]) => p.length === 1)
      .map(([[type], v]): [Record<string, string>, number] => [{ queue: q.queue, type: type! }, v]),
  )

export function seedMetrics(t: Text, queues: QueueStats[], workers: WorkerInfo[]): void {
  t.metric(
    'task_submissions_total',
    'counter',
    'jobs accepted, by priority and task type',
    queues.flatMap((q) => {
      // Counted by priority only when not normal (the plain enqueue pays nothing): normal is the rest.
      const rows: Rows = []
      const other = new Map<string, number>()
      for (const [[type, priority], v] of fieldsOf(q, 'cp')) {
        if (!type || (priority !== 'high' && priority !== 'low')) continue
        rows.push([{ queue: q.queue, priority, type }, v])
        other.set(type, (other.get(type) ?? 0) + v)
      }
      for (const [[type], v] of fieldsOf(q, 'created'))
        if (type)
          rows.push([{ queue: q.queue, priority: 'normal', type }, Math.max(0, v - (other.get(type) ?? 0))])
      return rows
    }),
  )
  const completions: Rows = []
  for (const [field, status] of [
    ['completed', 'completed'],
    ['failed', 'failed'],
    ['cancelled', 'cancelled'],
  ] as const) {
    for (const [l, v] of byType(queues, field)) completions.push([{ ...l, status }, v])
  }
  t.metric(
    'task_completions_total',
    'counter',
    'jobs that ended, by task type and status (completed; failed: dead-lettered; cancelled)',
    completions,
  )
  t.histogram(
    'task_duration_seconds',
    'run time of an attempt (start to end), by task type',
    queues.flatMap((q) => {
      const per = new Map<string, { buckets: number[]; sumMs: number }>()
      for (const [[type, b], v] of fieldsOf(q, 'hr')) {
        if (!type || !b) continue
        let h = per.get(type)
        if (!h) {
          h = { buckets: new Array(HISTOGRAM_BUCKETS_MS.length + 1).fill(0), sumMs: 0 }
          per.set(type, h)
        }
        if (b === 'sum_ms') h.sumMs = v
        else if (Number(b) >= 1 && Number(b) <= h.buckets.length) h.buckets[Number(b) - 1] = v
      }
      return [...per].map(([type, h]) => ({ queue: q.queue, labels: { type }, ...h }))
    }),
  )
  const retried = byType(queues, 'retried')
  t.metric('task_retries_total', 'counter', 'failed attempts scheduled for a retry, by task type', retried)
  t.metric(
    'task_retry_attempts_total',
    'counter',
    'failed attempts scheduled for a retry, by task type (the denominator of the retry success rate)',
    retried,
  )
  t.metric(
    'task_retry_success_total',
    'counter',
    'jobs completed on a later attempt than their first, by task type',
    byType(queues, 'retry_ok'),
  )
  t.metric(
    'task_failures_total',
    'counter',
    'failed attempts and dead letters, by task type and error class (a code or a name, never a message)',
    queues.flatMap((q) =>
      fieldsOf(q, 'ef')
        .filter(([p]) => p.length === 2)
        .map(([[type, cls], v]): [Record<string, string>, number] => [
          { queue: q.queue, type: type!, error_class: cls! },
          v,
        ]),
    ),
  )
  t.metric(
    'dlq_items_total',
    'counter',
    'jobs dead-lettered, by priority (the DLQ now: tasks_in_dlq_total)',
    queues.flatMap((q) => {
      const per = { high: 0, normal: 0, low: 0 } as Record<string, number>
      for (const [[, prio], v] of fieldsOf(q, 'dp')) if (prio) per[prio] = (per[prio] ?? 0) + v
      return Object.entries(per).map(([priority, v]): [Record<string, string>, number] => [
        { queue: q.queue, priority },
        v,
      ])
    }),
  )
  t.metric(
    'tasks_in_dlq_total',
    'gauge',
    'jobs in the DLQ now',
    queues.map((q) => [{ queue: q.queue }, q.dlq]),
  )
  t.metric(
    'pending_tasks_total',
    'gauge',
    'jobs waiting to be delivered, by priority',
    queues.flatMap((q) =>
      // An unknown lag (null) has no sample.
      (['high', 'normal', 'low'] as const).flatMap((p): Array<[Record<string, string>, number]> => {
        const lag = q.streams[p].lag
        return lag === null ? [] : [[{ queue: q.queue, priority: p }, lag]]
      }),
    ),
  )
  t.metric(
    'retry_tasks_total',
    'gauge',
    'jobs waiting for a retry (their backoff)',
    queues.map((q) => [{ queue: q.queue }, q.counts.retrying]),
  )
  const serving = new Map<string, number>()
  for (const w of workers) {
    for (const name of new Set(w.queues.map(logicalQueue))) serving.set(name, (serving.get(name) ?? 0) + 1)
  }
  t.metric(
    'active_workers_total',
    'gauge',
    'live workers serving the queue (every registered queue, 0 included)',
    queues.map((q) => [{ queue: q.queue }, serving.get(q.queue) ?? 0]),
  )
  t.metric(
    'worker_errors_total',
    'counter',
    'failed attempts a live worker recorded since it started, by task type',
    workers.flatMap((w) =>
      Object.entries(w.failed_by_type ?? {}).map(([type, v]): [Record<string, string>, number] => [
        { worker: w.id, type },
        v,
      ]),
    ),
  )
}
