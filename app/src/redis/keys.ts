/**
 * Every Redis key DTQ uses is built here (and mirrored by the Lua prelude, scripts/_prelude.lua;
 * a test checks that both agree). A queue's keys share the hash tag `{<queue>}`, so each queue
 * lives in one Redis Cluster slot and every script touches one queue only.
 */
import type { Priority } from '../queue/job.ts'

export const GROUP = 'workers'

/** Upper bounds (ms) of the duration histograms kept per queue; the Lua prelude has the same list. */
export const HISTOGRAM_BUCKETS_MS = [
  5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
] as const

export class Keys {
  readonly prefix: string

  constructor(prefix: string) {
    this.prefix = prefix
  }

  /** `<prefix>:{<queue>}`: KEYS[1] of every script; the scripts derive the rest from it. */
  base(queue: string): string {
    return `${this.prefix}:{${queue}}`
  }
  stream(queue: string, priority: Priority): string {
    return `${this.base(queue)}:stream:${priority}`
  }
  job(queue: string, id: string): string {
    return `${this.base(queue)}:job:${id}`
  }
  logs(queue: string, id: string): string {
    return `${this.base(queue)}:logs:${id}`
  }
  delayed(queue: string): string {
    return `${this.base(queue)}:delayed`
  }
  dlq(queue: string): string {
    return `${this.base(queue)}:dlq`
  }
  events(queue: string): string {
    return `${this.base(queue)}:events`
  }
  stats(queue: string): string {
    return `${this.base(queue)}:stats`
  }
  /** Per-minute throughput bucket (hash: completed, failed), expires after two hours. */
  throughput(queue: string, minute: number): string {
    return `${this.base(queue)}:tp:${minute}`
  }
  index(queue: string, state: string): string {
    return `${this.base(queue)}:idx:${state}`
  }
  idempotency(queue: string, keyHash: string): string {
    return `${this.base(queue)}:idem:${keyHash}`
  }
  /** Queue settings: paused flag. */
  meta(queue: string): string {
    return `${this.base(queue)}:meta`
  }
  /** Task types with their own per-type totals in the stats hash (set, at most 200: the Lua prelude). */
  types(queue: string): string {
    return `${this.base(queue)}:types`
  }

  // Registry keys: not per queue, so never touched by a queue script.
  /** Counter of generated job ids (INCRBY, a block per process and queue: app/src/queue/ids.ts). */
  ids(): string {
    return `${this.prefix}:ids`
  }
  queues(): string {
    return `${this.prefix}:queues`
  }
  /** Paused queue names (set): what workers read each heartbeat, one command for all their queues. */
  paused(): string {
    return `${this.prefix}:paused`
  }
  /** The maintenance lease: the one worker that runs scheduler, reclaimer and janitor for all queues. */
  leader(): string {
    return `${this.prefix}:leader`
  }
  /** Function libraries loaded by this deployment (hash: name → last seen ms), so old ones can go. */
  functionLibraries(): string {
    return `${this.prefix}:functions`
  }
  // Locator hint: which queue holds a generated id, so that a lookup without its queue reads one
  // key instead of every queue (JobStore.findJobs). A plain string with a TTL, written when the
  // block is reserved, before any of its jobs, and only ever read by single-key commands: no hash
  // tag, hints spread over the cluster's slots; no script builds them. A hint is only a hint: a
  // lookup that misses falls back to reading every queue and writes it again.
  /** Queue whose generated ids are `<block>001` to `<block+1>000` (a block is reserved per queue). */
  locBlock(block: string): string {
    return `${this.prefix}:loc:b:${block}`
  }
  workers(): string {
    return `${this.prefix}:workers`
  }
  worker(id: string): string {
    return `${this.prefix}:worker:${id}`
  }
  /** Pub/sub channel: `<queue> <jobId>` asks whoever runs that job to abort it. */
  cancelChannel(): string {
    return `${this.prefix}:cancel`
  }
  /** Pub/sub channel: `<workerId|*> <pause|resume|drain>`. */
  controlChannel(): string {
    return `${this.prefix}:control`
  }
}
