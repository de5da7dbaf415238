/**
 * Which queues have a live consumer (ADR 0032): the one definition behind GET /queues' and
 * /stats' `live_workers` / `no_workers` and the built-in alert `no_worker`. Pure: the callers read
 * the worker registry (`Registry.list()`: a worker is live while its registry hash exists, i.e. it
 * has beaten within its TTL, 10 s) and the queue's counts.
 */
import { logicalQueue } from './partitions.ts'

/** What a worker's registry entry says about the queues it consumes. */
export interface Consumer {
  queues: readonly string[]
  state: string
}

/**
 * Live workers per queue (a partition counts for its queue). A worker that is `stopping` no
 * longer takes work and does not count; a `paused` or `draining` one still consumes the queue
 * (an operator's choice, reversible) and counts.
 */
export function liveWorkersByQueue(workers: readonly Consumer[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const w of workers) {
    if (w.state === 'stopping') continue
    for (const q of new Set(w.queues.map(logicalQueue))) out.set(q, (out.get(q) ?? 0) + 1)
  }
  return out
}

/**
 * A queue with work (jobs waiting or running) that is not paused and that no live worker
 * consumes: nothing will ever run its jobs until a worker comes (the "no workers" badge; the
 * alert `no_worker` once it lasts ALERT_NO_WORKER_FOR_MS).
 */
export function lacksWorkers(
  q: { paused: boolean; waiting: number; active: number },
  liveWorkers: number,
): boolean {
  return !q.paused && q.waiting + q.active > 0 && liveWorkers === 0
}
