/**
 * Partitioned queues (ADR 0017): one logical queue spread over N physical queues, each in its own
 * hash tag -- so on a Redis Cluster over N slots, usually on different primaries. Partition 0 is
 * the queue itself (a queue gains partitions without moving a job); partition i > 0 is `<queue>~i`
 * (`~` is never in a queue name, so no queue a user names can collide with a partition). Every
 * partition is an ordinary queue to the engine: its own streams, indexes, DLQ, stats and scripts.
 * What makes them one queue: producers route each job to one partition, workers serving the
 * queue serve every partition, and reads given the queue's name read all of them.
 *
 * The counts live in one hash (`<prefix>:partitions`: queue → N, absent: 1) and only ever grow:
 * a reader with an older, smaller count still reads or writes partitions that exist and are
 * served, just fewer of them. Shrinking would strand the jobs of the dropped partitions.
 */
import { NAME_PATTERN } from '../config.ts'

export const PARTITION_SEP = '~'
/** Partitions one queue may have. */
export const MAX_PARTITIONS = 128

/** A physical queue: a queue name, or a partition of one (`name~i`, 1 <= i < MAX_PARTITIONS). */
export const PHYSICAL_QUEUE_PATTERN = new RegExp(
  `${NAME_PATTERN.source.slice(0, -1)}(?:${PARTITION_SEP}[1-9][0-9]{0,2})?$`,
)

/** Partition i of a queue: the queue itself for 0. */
export function partitionName(queue: string, i: number): string {
  return i === 0 ? queue : `${queue}${PARTITION_SEP}${i}`
}

/** The queue a physical queue belongs to. */
export function logicalQueue(physical: string): string {
  const k = physical.indexOf(PARTITION_SEP)
  return k < 0 ? physical : physical.slice(0, k)
}

/** Which partition of its queue a physical queue is. */
export function partitionIndex(physical: string): number {
  const k = physical.indexOf(PARTITION_SEP)
  return k < 0 ? 0 : Number(physical.slice(k + 1))
}

/** Every partition of a queue with `count` partitions, in order. */
export function partitionsOf(queue: string, count: number): string[] {
  return Array.from({ length: Math.max(1, count) }, (_, i) => partitionName(queue, i))
}

/**
 * FNV-1a (32 bit) of a routing key: stable across processes and releases, so a key always lands
 * in the same partition while the count stays the same.
 */
export function routingHash(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

/**
 * The partition of a job: by its routing key when it has one -- `partition_key`, else its
 * idempotency key, else its own id, so that a job sent again lands where its first copy is and
 * is recognised there -- or `roundRobin` when it has none.
 */
export function pickPartition(
  count: number,
  job: { partition_key?: string; idempotency_key?: string; id?: string },
  roundRobin: number,
): number {
  if (count <= 1) return 0
  const key = job.partition_key || job.idempotency_key || job.id
  return key ? routingHash(key) % count : roundRobin % count
}
