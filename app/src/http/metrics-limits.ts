/**
 * Flow-control state in /metrics (ADR 0022): breakers, paused types, concurrency slots in use
 * against their limit, held jobs, configured rates. From `LimitStore.views`, so only queues with
 * limits have series; task types are those with limits of their own (at most 200 per queue), and
 * per-key lists are summed into one `reason="key"` series (keys are unbounded, never a label).
 */
import type { LimitsView } from '../redis/limits.ts'
import type { Text } from './metrics.ts'

type Rows = Array<[Record<string, string>, number]>

/** A breaker's state as a number: 0 closed, 1 half-open (one probe running), 2 open. */
const BREAKER_VALUE = { closed: 0, half_open: 1, open: 2 } as const

export function limitMetrics(t: Text, views: LimitsView[]): void {
  const breaker: Rows = []
  const paused: Rows = []
  const conc: Rows = []
  const inUse: Rows = []
  const rate: Rows = []
  const held: Rows = []
  const keyConc: Rows = []
  for (const v of views) {
    const queue = v.queue
    const types = new Set([...Object.keys(v.breakers), ...Object.keys(v.paused)])
    for (const type of types) {
      breaker.push([{ queue, task_type: type }, BREAKER_VALUE[v.breakers[type]?.state ?? 'closed']])
      paused.push([{ queue, task_type: type }, type in v.paused ? 1 : 0])
    }
    const l = v.limits
    if (l.concurrency) {
      conc.push([{ queue, scope: 'queue', task_type: '' }, l.concurrency])
      inUse.push([{ queue, scope: 'queue', task_type: '' }, v.running.queue ?? 0])
    }
    if (l.rate)
      rate.push([{ queue, scope: 'queue', task_type: '' }, (l.rate.limit * 1000) / l.rate.window_ms])
    if (l.key_concurrency) keyConc.push([{ queue }, l.key_concurrency])
    for (const [type, tl] of Object.entries(l.types ?? {})) {
      if (tl.concurrency) {
        conc.push([{ queue, scope: 'type', task_type: type }, tl.concurrency])
        inUse.push([{ queue, scope: 'type', task_type: type }, v.running.types[type] ?? 0])
      }
      if (tl.rate)
        rate.push([{ queue, scope: 'type', task_type: type }, (tl.rate.limit * 1000) / tl.rate.window_ms])
    }
    const h = { concurrency: 0, key: 0 }
    for (const x of v.held) h[x.reason] += x.count
    held.push([{ queue, reason: 'concurrency' }, h.concurrency], [{ queue, reason: 'key' }, h.key])
  }
  t.metric('breaker_state', 'gauge', 'a task type breaker: 0 closed, 1 half-open, 2 open (ADR 0022)', breaker)
  t.metric(
    'task_type_paused',
    'gauge',
    "1 while a task type is paused (an upstream's 429, or a breaker opened by hand)",
    paused,
  )
  t.metric('limit_concurrency', 'gauge', 'a concurrency limit: of the queue, or of a task type in it', conc)
  t.metric(
    'limit_concurrency_in_use',
    'gauge',
    'concurrency slots held now (running jobs, or granted one and about to run)',
    inUse,
  )
  t.metric('limit_key_concurrency', 'gauge', 'jobs of one partition key that may run at once', keyConc)
  t.metric('limit_rate_per_second', 'gauge', 'a rate limit, in starts per second', rate)
  t.metric('limit_held_jobs', 'gauge', 'jobs held waiting for a concurrency or per-key slot', held)
}
