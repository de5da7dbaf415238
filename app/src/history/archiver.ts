/**
 * The archiver (`dtq archiver`, ADR 0027): copies every finished job into PostgreSQL, off the hot
 * path. It switches archiving on in every queue of the registry, then reads the queues' archive
 * streams through the consumer group `archiver` -- its own unacknowledged entries first (after a
 * failed write, or a restart under the same name), then new ones, and every half claim-window the
 * entries another archiver left unacknowledged for ARCHIVER_CLAIM_IDLE_MS (XAUTOCLAIM) -- reads
 * the jobs' hashes, writes them in one transaction, and only then acknowledges: an entry is
 * deleted, and its jobs' retention hold released, after the commit. A crash or an outage at any
 * point leaves the entries pending, to be written again (the write is idempotent). Several
 * archivers share the entries through the group. Memory is one batch: nothing is read while a
 * batch waits for PostgreSQL.
 */
import { hostname } from 'node:os'
import { type ArchiveEntry, type ArchiveStore, finishedOf } from '../redis/archive.ts'
import type { History } from './db.ts'
import { type AttemptRow, historyRows, type JobRow } from './rows.ts'

export interface ArchiverLog {
  info(fields: object, message: string): void
  warn(fields: object, message: string): void
}
const silent: ArchiverLog = { info: () => {}, warn: () => {} }

export interface ArchiverOptions {
  store: ArchiveStore
  history: History
  /** About how many jobs per transaction (ARCHIVER_BATCH). */
  batch?: number
  /** Another archiver's entries are taken over after this long unacknowledged (ARCHIVER_CLAIM_IDLE_MS). */
  claimIdleMs?: number
  /** Day partitions older than this are dropped (HISTORY_RETENTION_DAYS). */
  retentionDays?: number
  /** How long it waits when there is nothing to archive. */
  pollMs?: number
  /** How often the queue registry is read for new queues. */
  scanMs?: number
  /** The consumer name in the group (unique per process by default). */
  consumer?: string
  log?: ArchiverLog
}

export interface ArchiverStats {
  /** Jobs written (a job whose entry came twice counts twice). */
  archived: number
  /** Entries acknowledged. */
  entries: number
  /** Jobs whose hash was gone when their entry was read (deleted by an operator). */
  missing: number
  /** Failed write cycles (PostgreSQL or Redis unreachable). */
  failures: number
  last_archived_at: number | null
  last_error: string | null
}

const HOUR_MS = 3_600_000
/** How often an archiver writes its counters to the registry (GET /history/status reads them). */
const REPORT_EVERY_MS = 5000
/** How often every queue's switch is set again (new queues are looked for every scanMs). */
const RESCAN_MS = 30_000
/** Entries read at a time (an entry holds the jobs of one finishing call: up to ~100 each). */
const ENTRIES_PER_READ = 10

export class Archiver {
  readonly consumer: string
  readonly stats: ArchiverStats = {
    archived: 0,
    entries: 0,
    missing: 0,
    failures: 0,
    last_archived_at: null,
    last_error: null,
  }
  private readonly store: ArchiveStore
  private readonly history: History
  private readonly batch: number
  private readonly claimIdleMs: number
  private readonly retentionDays: number
  private readonly pollMs: number
  private readonly scanMs: number
  private readonly log: ArchiverLog
  /** Queues archived, and whether this consumer may hold unacknowledged entries there. */
  private readonly queues = new Map<string, { ownPending: boolean }>()
  private lastScan = Number.NEGATIVE_INFINITY
  private lastClaim = 0
  private lastRetention = Number.NEGATIVE_INFINITY
  private lastReport = Number.NEGATIVE_INFINITY
  private lastRescan = Number.NEGATIVE_INFINITY
  private next = 0
  private running = false
  private loop: Promise<void> | undefined
  private wake: (() => void) | undefined

  constructor(opts: ArchiverOptions) {
    this.store = opts.store
    this.history = opts.history
    this.batch = opts.batch ?? 500
    this.claimIdleMs = opts.claimIdleMs ?? 60_000
    this.retentionDays = opts.retentionDays ?? 90
    this.pollMs = opts.pollMs ?? 250
    this.scanMs = opts.scanMs ?? 2000
    this.log = opts.log ?? silent
    const host = hostname()
      .replace(/[^A-Za-z0-9_.-]/g, '-')
      .slice(0, 100)
    this.consumer = opts.consumer ?? `${host}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.loop = this.run()
  }

  /** Stops after the cycle in progress (its batch committed and acknowledged, or left pending). */
  async stop(): Promise<void> {
    this.running = false
    this.wake?.()
    await this.loop
  }

  private async run(): Promise<void> {
    let failures = 0
    while (this.running) {
      let n = 0
      try {
        n = await this.cycle()
        failures = 0
      } catch (err) {
        failures++
        this.stats.failures++
        this.stats.last_error = (err as Error).message
        // Nothing was acknowledged: the batch stays pending and is read again (ownPending).
        for (const q of this.queues.values()) q.ownPending = true
        const backoff = Math.min(30_000, 250 * 2 ** Math.min(failures, 7))
        this.log.warn(
          { err: (err as Error).message, retry_in_ms: backoff },
          'archiver: write failed, will retry',
        )
        await this.sleep(backoff)
        continue
      }
      if (n === 0) await this.sleep(this.pollMs)
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms)
      this.wake = () => {
        clearTimeout(t)
        resolve()
      }
    })
  }

  /**
   * Switches archiving on in queues the registry has and this archiver has not seen yet -- and,
   * every RESCAN_MS, in all of them again (idempotent): a queue the janitor forgot (its switch
   * deleted with its other keys) and that came back is switched on again.
   */
  async scan(now = this.store.clock.now()): Promise<void> {
    const all = now - this.lastRescan >= RESCAN_MS
    if (all) this.lastRescan = now
    for (const q of await this.store.queues()) {
      if (this.queues.has(q) && !all) continue
      if (await this.store.enable(q)) this.log.info({ queue: q }, 'archiver: archiving switched on')
      if (!this.queues.has(q)) this.queues.set(q, { ownPending: true })
    }
  }

  /**
   * One round: the registry (every scanMs), retention (hourly), then one batch read, written
   * and acknowledged. Returns the number of entries handled (0: nothing to do).
   */
  async cycle(now = this.store.clock.now()): Promise<number> {
    if (now - this.lastScan >= this.scanMs) {
      await this.scan(now)
      this.lastScan = now
    }
    if (now - this.lastRetention >= HOUR_MS) {
      const dropped = await this.history.dropOlderThan(this.retentionDays, now)
      if (dropped.length) this.log.info({ dropped }, 'archiver: history partitions past retention dropped')
      this.lastRetention = now
    }
    if (now - this.lastReport >= REPORT_EVERY_MS) {
      await this.store.report({ consumer: this.consumer, at: now, ...this.stats })
      this.lastReport = now
    }
    const byQueue = await this.readBatch(now)
    if (byQueue.size === 0) return 0
    return this.archive(byQueue)
  }

  /**
   * About `batch` jobs over the queues, taking turns: own pending first, then claimed, then new.
   * Entries are read ENTRIES_PER_READ at a time and counted by their jobs (one entry of a bulk
   * cancel may hold thousands), so a batch is at most one read past `batch` jobs.
   */
  private async readBatch(now: number): Promise<Map<string, ArchiveEntry[]>> {
    const out = new Map<string, ArchiveEntry[]>()
    const names = [...this.queues.keys()]
    if (names.length === 0) return out
    let left = this.batch
    const claim = now - this.lastClaim >= this.claimIdleMs / 2
    if (claim) this.lastClaim = now
    const start = this.next++ % names.length
    for (let i = 0; i < names.length && left > 0; i++) {
      const q = names[(start + i) % names.length]!
      const state = this.queues.get(q)!
      const got: ArchiveEntry[] = []
      let pendingFrom = '0' // this consumer's own unacknowledged entries, from the start
      let claimed = !claim
      // In reads of a few entries, until the batch is full or the queue has none left.
      while (left > 0) {
        const count = Math.min(left, ENTRIES_PER_READ)
        let page: ArchiveEntry[] = []
        if (state.ownPending) {
          page = await this.store.read(q, this.consumer, count, pendingFrom)
          if (page.length === 0) state.ownPending = false
          else pendingFrom = page[page.length - 1]!.entry
        }
        if (page.length === 0 && !claimed) {
          page = await this.store.claim(q, this.consumer, this.claimIdleMs, count)
          if (page.length < count) claimed = true
        }
        if (page.length === 0) page = await this.store.read(q, this.consumer, count, '>')
        if (page.length === 0) break
        got.push(...page)
        left -= page.reduce((n, e) => n + Math.max(1, e.jobs.length), 0)
      }
      if (got.length) out.set(q, got)
    }
    return out
  }

  private async archive(byQueue: Map<string, ArchiveEntry[]>): Promise<number> {
    const jobs: JobRow[] = []
    const attempts: AttemptRow[] = []
    const acks: Array<[string, string[], Array<[string, string, string]>]> = []
    for (const [q, entries] of byQueue) {
      const ids = [...new Set(entries.flatMap((e) => e.jobs))]
      const hashes = await this.store.jobs(q, ids)
      const written: Array<[string, string, string]> = []
      ids.forEach((id, i) => {
        const h = hashes[i]
        if (!h) {
          this.stats.missing++
          this.log.warn({ queue: q, job_id: id }, 'archiver: a finished job was gone before it was archived')
          return
        }
        const rows = historyRows(q, id, h)
        // Not finished any more (retried since): its next end has an entry of its own.
        if (!rows) return
        jobs.push(rows.job)
        attempts.push(...rows.attempts)
        written.push([id, finishedOf(h), rows.job.state])
      })
      acks.push([q, entries.map((e) => e.entry), written])
    }
    await this.history.write(jobs, attempts)
    let n = 0
    for (const [q, entries, written] of acks) {
      await this.store.ack(q, entries, written)
      n += entries.length
    }
    this.stats.archived += jobs.length
    this.stats.entries += n
    if (jobs.length) this.stats.last_archived_at = this.store.clock.now()
    return n
  }
}
