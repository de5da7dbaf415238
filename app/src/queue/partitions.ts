/**
 * Partitioned queues (ADR 0017): one logical queue spread over N physical queues, each in its own
 * hash tag -- on a Redis Cluster, its own slot. Partition 0 is the queue itself (a queue gains
 * partitions without moving a job); partition i > 0 is `<queue>~i`, or `<queue>~i.s` when a salt
 * `s` was needed to place it on the primary with the fewest of the queue's partitions (`~` is
 * never in a queue name, so no queue a user names can collide with a partition). Every
 * partition is an ordinary queue to the engine: its own streams, indexes, DLQ, stats and scripts.
 * What makes them one queue: producers route each job to one partition, workers serving the
 * queue serve every partition, and reads given the queue's name read all of them.
 *
 * The partitions' names live in one hash (`<prefix>:partitions`: queue → names, space-separated;
 * absent: the queue alone) and the list only ever grows: a reader with an older, shorter list
 * still reads or writes partitions that exist and are served, just fewer of them. Shrinking
 * would strand the jobs of the dropped partitions.
 */
import { NAME_PATTERN } from '../config.ts'

export const PARTITION_SEP = '~'
/** Partitions one queue may have. */
export const MAX_PARTITIONS = 128

/** The largest salt tried when placing a partition (each salt moves its slot). */
export const MAX_SALT = 999

/** A physical queue: a queue name, or a partition of one (`name~i` or `name~i.s`). */
export const PHYSICAL_QUEUE_PATTERN = new RegExp(
  `${NAME_PATTERN.source.slice(0, -1)}(?:${PARTITION_SEP}[1-9][0-9]{0,2}(?:\\.[1-9][0-9]{0,2})?)?$`,
)

/** Partition i of a queue (the queue itself for 0), with a placement salt when s > 0. */
export function partitionName(queue: string, i: number, s = 0): string {
  if (i === 0) return queue
  return s > 0 ? `${queue}${PARTITION_SEP}${i}.${s}` : `${queue}${PARTITION_SEP}${i}`
}

/** The queue a physical queue belongs to. */
export function logicalQueue(physical: string): string {
  const k = physical.indexOf(PARTITION_SEP)
  return k < 0 ? physical : physical.slice(0, k)
}

/** Which partition of its queue a physical queue is. */
export function partitionIndex(physical: string): number {
  const k = physical.indexOf(PARTITION_SEP)
  return k < 0 ? 0 : Number.parseInt(physical.slice(k + 1), 10)
}

/**
 * The partitions of a queue raised to `count`: the ones it has, then new ones, each placed --
 * when `nodeOf` says where a partition would live (a Redis Cluster) -- on a primary holding the
 * fewest of this queue's partitions so far, by trying salts until its slot lands there. Without
 * `nodeOf` (one primary), plain names.
 */
export function placePartitions(
  queue: string,
  existing: readonly string[],
  count: number,
  nodeOf: ((partition: string) => string) | null,
  nodes: readonly string[] = [],
): string[] {
  const names = existing.length ? [...existing] : [queue]
  const load = new Map<string, number>(nodes.map((n) => [n, 0]))
  if (nodeOf) for (const n of names) load.set(nodeOf(n), (load.get(nodeOf(n)) ?? 0) + 1)
  for (let i = names.length; i < count; i++) {
    let pick = partitionName(queue, i)
    if (nodeOf && load.size) {
      const least = Math.min(...load.values())
      for (let s = 0; s <= MAX_SALT; s++) {
        const name = partitionName(queue, i, s)
        if ((load.get(nodeOf(name)) ?? 0) === least) {
          pick = name
          break
        }
      }
      load.set(nodeOf(pick), (load.get(nodeOf(pick)) ?? 0) + 1)
    }
    names.push(pick)
  }
  return names
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
