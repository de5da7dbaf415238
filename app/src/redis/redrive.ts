/**
 * Reads of a DLQ redrive (Queue.retryDlqMany): its bounds -- each queue's last DLQ entry at the
 * moment it was asked for -- and the entries at or below a bound, newest first. DLQ entry ids
 * only grow (dead_letter in the prelude), so every failure after the bounds were taken, among
 * them jobs the redrive itself requeued that failed again, lies above them.
 */
import { F, pairsToRecord } from '../queue/job.ts'
import type { JobStore } from './store.ts'

export interface DlqEntry {
  /** The DLQ stream entry id. */
  entry: string
  id: string
  type: string
  /** The job's priority (normal when it has none). */
  priority: string
  error: string
  failed_at: number
  /** The job is failed and this is still its DLQ entry (not retried, expired or replaced since). */
  current: boolean
}

/** Each queue's last DLQ entry id; queues with an empty DLQ are left out. */
export async function dlqTails(store: JobStore, queues: readonly string[]): Promise<Record<string, string>> {
  // Separate commands sent together (autopipelined: one round trip per node), never one
  // pipeline: on a Redis Cluster the queues' DLQs live in different slots (ADR 0017).
  const res = await Promise.all(
    queues.map((q) => store.redis.xrevrange(store.keys.dlq(q), '+', '-', 'COUNT', 1)),
  )
  const tails: Record<string, string> = {}
  queues.forEach((q, i) => {
    const top = res[i]?.[0]
    if (top) tails[q] = top[0]
  })
  return tails
}

/**
 * Up to `count` entries of a queue's DLQ at or below `hi` (an entry id; `(<id>` for strictly
 * below), newest first.
 */
export async function dlqPage(
  store: JobStore,
  queue: string,
  hi: string,
  count: number,
): Promise<DlqEntry[]> {
  const raw = (await store.redis.xrevrange(store.keys.dlq(queue), hi, '-', 'COUNT', count)) as Array<
    [string, string[]]
  >
  if (!raw.length) return []
  const entries = raw.map(([entry, fields]) => ({ entry, f: pairsToRecord(fields) }))
  const p = store.redis.pipeline()
  for (const e of entries) p.hmget(store.keys.job(queue, e.f.id ?? ''), F.state, F.dlq_entry, F.priority)
  const jobs = (await p.exec()) ?? []
  return entries.map(({ entry, f }, i) => {
    const [state, current, priority] = (jobs[i]?.[1] as Array<string | null> | undefined) ?? []
    return {
      entry,
      id: f.id ?? '',
      type: f.type ?? '',
      priority: priority || 'normal',
      error: f.error ?? '',
      failed_at: Number(f.failed_at),
      current: state === 'failed' && current === entry,
    }
  })
}
