/**
 * Every Redis key DTQ uses is built here. A queue's keys share the hash tag `{<queue>}`, so each
 * queue lives in one Redis Cluster slot and every script touches one queue only. The Lua
 * library gets the same spellings as constants (luaKeyConstants(): `K_JOB = ':job:'`, ...,
 * `GROUP`, `PRIORITIES`, `BUCKETS_MS`), so the two cannot disagree.
 */
import { PRIORITIES, type Priority } from '../queue/job.ts'

export const GROUP = 'workers'

/** Upper bounds (ms) of the duration histograms kept per queue (Lua: BUCKETS_MS). */
export const HISTOGRAM_BUCKETS_MS = [
  5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
] as const

/** What follows a queue's base (`<prefix>:{<queue>}`) in each of its keys (Lua: `K_<NAME>`). */
export const QUEUE_KEY = {
  job: ':job:',
  logs: ':logs:',
  stream: ':stream:',
  idx: ':idx:',
  idem: ':idem:',
  tp: ':tp:',
  delayed: ':delayed',
  dlq: ':dlq',
  events: ':events',
  stats: ':stats',
  meta: ':meta',
  types: ':types',
  /** The error classes with failure counts of their own in `stats` (at most 50; metrics). */
  classes: ':classes',
  flow_out: ':flow_out',
  /** Ids of jobs that joined a flow while a worker ran them (ADR 0019: their worker does not know). */
  flow_late: ':flow_late',
  /** Flow-control limits (hash) and their state (`:fc:*`): ADR 0022. */
  limits: ':limits',
  fc: ':fc:',
  /** A schedule (hash) of the queue's template, and its fire history (list): ADR 0018. */
  sched: ':sched:',
  schist: ':schist:',
  /** A dedup key: the job holding the place of a (task type, payload) or caller's key (ADR 0021). */
  dedup: ':dd:',
  /** Jobs with a start deadline, scored by it (ADR 0021). */
  deadlines: ':deadlines',
  /** Run/wait histogram snapshots by minute (string) and their index (zset), kept 25 h (ADR 0026). */
  hs: ':hs:',
  hsi: ':hsi',
  /** Per task type completed / failed totals as they were at a minute (hash), written with the histogram snapshot, kept 25 h (ADR 0032). */
  ts: ':ts:',
  /** Finished jobs for the archiver (stream, group `archiver`) and its switch (ADR 0027). */
  archive: ':archive',
  archive_on: ':archive:on',
  /** The archive stream's unacknowledged entries scored by their jobs' end: the watermark (ADR 0031). */
  archive_at: ':archive:at',
  /** The created-time index (zset: job id scored by created_at), while its switch is set (ADR 0035). */
  created: ':created',
} as const

/** The key spellings and shared constants for the Lua library (see scripts.ts). */
export function luaKeyConstants(): string {
  const names = Object.keys(QUEUE_KEY).map((k) => `K_${k.toUpperCase()}`)
  const values = Object.values(QUEUE_KEY).map((v) => `'${v}'`)
  return [
    `local ${names.join(', ')} = ${values.join(', ')}`,
    `local GROUP = '${GROUP}'`,
    `local PRIORITIES = { ${PRIORITIES.map((p) => `'${p}'`).join(', ')} }`,
    `local BUCKETS_MS = { ${HISTOGRAM_BUCKETS_MS.join(', ')} }`,
  ].join('\n')
}

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
    return this.base(queue) + QUEUE_KEY.stream + priority
  }
  job(queue: string, id: string): string {
    return this.base(queue) + QUEUE_KEY.job + id
  }
  logs(queue: string, id: string): string {
    return this.base(queue) + QUEUE_KEY.logs + id
  }
  /** A dedup key (ADR 0021): `<job id>` or `<job id> <until ms>` (read by dry runs; written in Lua). */
  dedup(queue: string, hash: string): string {
    return this.base(queue) + QUEUE_KEY.dedup + hash
  }
  delayed(queue: string): string {
    return this.base(queue) + QUEUE_KEY.delayed
  }
  dlq(queue: string): string {
    return this.base(queue) + QUEUE_KEY.dlq
  }
  events(queue: string): string {
    return this.base(queue) + QUEUE_KEY.events
  }
  stats(queue: string): string {
    return this.base(queue) + QUEUE_KEY.stats
  }
  /** Per-minute throughput bucket (hash: completed, failed), expires after 25 hours (ADR 0026). */
  throughput(queue: string, minute: number): string {
    return this.base(queue) + QUEUE_KEY.tp + minute
  }
  /** The queue's run/wait histograms as they were at a minute (history_snapshot, ADR 0026). */
  histogramSnapshot(queue: string, minute: number): string {
    return this.base(queue) + QUEUE_KEY.hs + minute
  }
  /** The queue's per-type completed / failed totals at a minute (history_snapshot, ADR 0032). */
  typeSnapshot(queue: string, minute: number): string {
    return this.base(queue) + QUEUE_KEY.ts + minute
  }
  /** Which minutes have a histogram snapshot (zset, score = minute). */
  histogramSnapshots(queue: string): string {
    return this.base(queue) + QUEUE_KEY.hsi
  }
  index(queue: string, state: string): string {
    return this.base(queue) + QUEUE_KEY.idx + state
  }
  idempotency(queue: string, keyHash: string): string {
    return this.base(queue) + QUEUE_KEY.idem + keyHash
  }
  /** Finished jobs waiting for the archiver (stream, group `archiver`; ADR 0027). */
  archive(queue: string): string {
    return this.base(queue) + QUEUE_KEY.archive
  }
  /** Present while the queue is archived: the finishing scripts read it (ADR 0027). */
  archiveOn(queue: string): string {
    return this.base(queue) + QUEUE_KEY.archive_on
  }
  /** The archive's unacknowledged entries by the time their jobs ended: retention's watermark (ADR 0031). */
  archiveAt(queue: string): string {
    return this.base(queue) + QUEUE_KEY.archive_at
  }
  /** The created-time index: every job of the queue by created_at, opt-in (ADR 0035). */
  created(queue: string): string {
    return this.base(queue) + QUEUE_KEY.created
  }
  /** Queue settings: paused flag, the created-time index's switch (`created_index`). */
  meta(queue: string): string {
    return this.base(queue) + QUEUE_KEY.meta
  }
  /** Task types with their own per-type totals in the stats hash (set, at most 200: the Lua prelude). */
  types(queue: string): string {
    return this.base(queue) + QUEUE_KEY.types
  }

  /** A schedule whose jobs go to `queue`: its definition, next_fire, counters (ADR 0018). */
  schedule(queue: string, name: string): string {
    return this.base(queue) + QUEUE_KEY.sched + name
  }
  /** The schedule's last fires, newest first: `<fire ms> <job id|-> <outcome>` (capped). */
  scheduleHistory(queue: string, name: string): string {
    return this.base(queue) + QUEUE_KEY.schist + name
  }

  /** Outbox of finished flow members (stream: f flow, n node, j job, o outcome, r result; ADR 0019). */
  flowOut(queue: string): string {
    return this.base(queue) + QUEUE_KEY.flow_out
  }
  /** The pseudo-queue a flow's record lives under: its key is `base(flowQueue(id))`, a slot of its own. */
  flowQueue(flowId: string): string {
    return `flow:${flowId}`
  }
  /** A flow's record (hash: state, nodes, edges; ADR 0019). */
  flow(flowId: string): string {
    return this.base(this.flowQueue(flowId))
  }
  /** Flows being created (zset: flow id → when creation began): the leader rolls stale ones forward. */
  flowsCreating(): string {
    return `${this.prefix}:flows:creating`
  }

  // Registry keys: not per queue, so never touched by a queue script.
  /** Counter of generated job ids (INCRBY, a block per process and queue: app/src/redis/id-allocator.ts). */
  ids(): string {
    return `${this.prefix}:ids`
  }
  queues(): string {
    return `${this.prefix}:queues`
  }
  /** Live archivers (hash: consumer → JSON of its counters and when it wrote them; ADR 0027). */
  archivers(): string {
    return `${this.prefix}:archivers`
  }
  /** Saved search filter presets (hash: name → JSON of the filters; capped: app/src/redis/search-store.ts). */
  searchPresets(): string {
    return `${this.prefix}:search:presets`
  }
  /** Partition counts of partitioned queues (hash: queue → N; app/src/queue/partitions.ts). */
  partitions(): string {
    return `${this.prefix}:partitions`
  }
  /**
   * The counts a partitioned queue had before its last growths (hash: queue → "1 3"): the
   * partitions its keys routed to then, where an earlier copy of a keyed job may be.
   */
  partitionsBefore(): string {
    return `${this.prefix}:partitions:before`
  }
  /** Every schedule (hash: name → its queue): single-key commands only, never in a script. */
  schedules(): string {
    return `${this.prefix}:schedules`
  }
  /** Paused queue names (set): what workers read each heartbeat, one command for all their queues. */
  paused(): string {
    return `${this.prefix}:paused`
  }
  /** Operator actions (stream, MAXLEN ~ AUDIT_MAX_LEN; single-key commands only): ADR 0026. */
  audit(): string {
    return `${this.prefix}:audit`
  }
  /** The maintenance lease: the one worker that runs scheduler, reclaimer and janitor for all queues. */
  /**
   * The alerts' keys (ADR 0025): `<prefix>:{:alerts}<suffix>`, one slot of their own (no queue
   * name holds a colon, so no queue shares the tag); suffixes in redis/alerts.ts.
   */
  alerts(suffix = ''): string {
    return `${this.prefix}:{:alerts}${suffix}`
  }

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
