/**
 * Admission control: with QUEUE_MAX_DEPTH, a new job for a queue already holding that many
 * waiting jobs is refused (429 QUEUE_FULL). The depth is read per queue at most every 250 ms per
 * process (a partitioned queue's is its partitions' sum). Used by POST /jobs (and its dry run)
 * and by replays.
 */
import type { Config } from '../config.ts'
import { DtqError } from '../errors.ts'
import type { Queue } from '../queue/queue.ts'

export function admission(queue: Queue, config: Config): (queueName: string) => Promise<void> {
  const depthCache = new Map<string, { depth: number; at: number }>()
  return async function admit(queueName: string): Promise<void> {
    if (config.queueMaxDepth <= 0) return
    const now = Date.now()
    let c = depthCache.get(queueName)
    if (!c || now - c.at > 250) {
      // A partitioned queue's depth is its partitions' (read at once: one round trip per node).
      const parts = await queue.store.physicalQueues(queueName)
      const depths = await Promise.all(parts.map((q) => queue.store.queuedCount(q)))
      const depth = depths.reduce((a, b) => a + b, 0)
      c = { depth, at: now }
      if (depthCache.size >= 2 * config.maxQueues) depthCache.clear() // bounded like the registry
      depthCache.set(queueName, c)
    }
    if (c.depth >= config.queueMaxDepth) {
      const err = new DtqError(
        'QUEUE_FULL',
        `queue ${queueName} holds ${c.depth} waiting jobs (limit ${config.queueMaxDepth})`,
      )
      ;(err as unknown as { retryAfter: string }).retryAfter = '1'
      throw err
    }
  }
}
