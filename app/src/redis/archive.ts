/**
 * The archiver's side of Redis (ADR 0027): each queue's archive stream `<base>:archive` -- the
 * ids of the jobs that finished while archiving was on, one entry per finishing call -- read
 * through the consumer group `archiver`, and the switch `<base>:archive:on` the finishing
 * scripts read. An entry is deleted when an archiver acknowledges it (archive_ack), after its
 * jobs are committed to PostgreSQL: the stream holds exactly what is not archived yet, and
 * nothing else ever trims it.
 */
import { F, pairsToRecord } from '../queue/job.ts'
import { StoreBase } from './store-base.ts'

export const ARCHIVE_GROUP = 'archiver'

/** One archive entry: the jobs of one finishing call, and the end they reached. */
export interface ArchiveEntry {
  entry: string
  jobs: string[]
  event: string
}

type Entries = Array<[string, string[] | null]>

function toEntries(rows: Entries): ArchiveEntry[] {
  const out: ArchiveEntry[] = []
  for (const [entry, fields] of rows) {
    // An entry of this consumer's pending list deleted since (another archiver took it over and
    // acknowledged it) comes back without fields: kept, with no jobs, so it is acknowledged too.
    const f = pairsToRecord(fields ?? [])
    out.push({ entry, jobs: (f.job ?? '').split(' ').filter(Boolean), event: f.event ?? '' })
  }
  return out
}

export interface ArchiveQueueStatus {
  queue: string
  enabled: boolean
  /** Entries not yet acknowledged (read or not). */
  backlog: number
  /** Entries read by an archiver and not yet acknowledged. */
  pending: number
  /** When the oldest unarchived entry was written (ms), or null. */
  oldest_at: number | null
}

/** An archiver's report in the registry (`<prefix>:archivers`), written every few seconds. */
export interface ArchiverReport {
  consumer: string
  at: number
  archived: number
  entries: number
  missing: number
  failures: number
  last_archived_at: number | null
  last_error: string | null
}

/** A report older than this is removed by the next archiver that writes its own (it stopped). */
export const ARCHIVER_REPORT_TTL_MS = 3_600_000

export class ArchiveStore extends StoreBase {
  /** Writes this archiver's report; reports of archivers silent for an hour are removed. */
  async report(r: ArchiverReport): Promise<void> {
    const key = this.keys.archivers()
    await this.redis.hset(key, r.consumer, JSON.stringify(r))
    const all = await this.redis.hgetall(key)
    const stale = Object.entries(all)
      .filter(([, v]) => {
        try {
          return (JSON.parse(v) as ArchiverReport).at < r.at - ARCHIVER_REPORT_TTL_MS
        } catch {
          return true
        }
      })
      .map(([k]) => k)
    if (stale.length) await this.redis.hdel(key, ...stale)
  }

  async reports(): Promise<ArchiverReport[]> {
    const all = await this.redis.hgetall(this.keys.archivers())
    return Object.values(all)
      .flatMap((v) => {
        try {
          return [JSON.parse(v) as ArchiverReport]
        } catch {
          return []
        }
      })
      .sort((a, b) => a.consumer.localeCompare(b.consumer))
  }

  /**
   * Switches archiving on in the queue (idempotent). The first time, up to `backfill` finished
   * jobs of each state still in Redis join the archive. True when it was off.
   */
  async enable(queue: string, backfill = 1000): Promise<boolean> {
    return (await this.run<number>('archive_on', queue, [backfill])) === 1
  }

  /** Switches archiving off in the queue: the held jobs get their retention back, the stream goes. */
  async disable(queue: string): Promise<void> {
    while ((await this.run<number>('archive_off', queue, [500])) === 1) {}
  }

  async enabled(queue: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.archiveOn(queue))) === 1
  }

  /**
   * Entries for this consumer, at most `count`, without waiting: new ones (`from` '>'), or its
   * own read and not yet acknowledged after the id `from` ('0': from the start).
   */
  async read(queue: string, consumer: string, count: number, from: string): Promise<ArchiveEntry[]> {
    const reply = (await this.redis.xreadgroup(
      'GROUP',
      ARCHIVE_GROUP,
      consumer,
      'COUNT',
      count,
      'STREAMS',
      this.keys.archive(queue),
      from,
    )) as Array<[string, Entries]> | null
    return reply?.[0] ? toEntries(reply[0][1]) : []
  }

  /**
   * Entries another archiver read and has not acknowledged for `minIdleMs` (it died, or cannot
   * reach PostgreSQL), taken over by this consumer: one XAUTOCLAIM pass from the start, at most
   * `count`.
   */
  async claim(queue: string, consumer: string, minIdleMs: number, count: number): Promise<ArchiveEntry[]> {
    const reply = (await this.redis.xautoclaim(
      this.keys.archive(queue),
      ARCHIVE_GROUP,
      consumer,
      minIdleMs,
      '0-0',
      'COUNT',
      count,
    )) as [string, Entries, string[]?]
    return toEntries(reply[1])
  }

  /** The job hashes of `ids` (one pipeline: a queue's keys share its slot), null for gone ones. */
  async jobs(queue: string, ids: readonly string[]): Promise<Array<Record<string, string> | null>> {
    if (ids.length === 0) return []
    const p = this.redis.pipeline()
    for (const id of ids) p.hgetall(this.keys.job(queue, id))
    const res = (await p.exec()) ?? []
    return res.map(([err, h]) => {
      if (err) throw err
      const rec = h as Record<string, string>
      return rec && Object.keys(rec).length > 0 ? rec : null
    })
  }

  /**
   * After the commit: acknowledges and deletes the entries (which moves the watermark past the
   * completed jobs they held: ADR 0031), and lets go of the holds of the failed and cancelled
   * jobs archived as they are now (`written`: id, finished_at and state as written; completed
   * ones are only counted, they need no per-job work).
   */
  async ack(
    queue: string,
    entries: readonly string[],
    written: ReadonlyArray<readonly [string, string, string]>,
  ): Promise<number> {
    const held = written.filter((w) => w[2] !== 'completed')
    return this.run<number>('archive_ack', queue, [
      entries.length,
      ...entries,
      held.length,
      ...held.flat(),
      written.length - held.length,
    ])
  }

  async status(queue: string): Promise<ArchiveQueueStatus> {
    const key = this.keys.archive(queue)
    const [on, len, head] = await Promise.all([
      this.redis.exists(this.keys.archiveOn(queue)),
      this.redis.xlen(key),
      this.redis.xrange(key, '-', '+', 'COUNT', 1) as Promise<Entries>,
    ])
    let pending = 0
    if (len > 0) {
      const summary = (await this.redis.xpending(key, ARCHIVE_GROUP).catch(() => null)) as [number] | null
      pending = Number(summary?.[0] ?? 0)
    }
    const oldest = head[0]?.[0]
    return {
      queue,
      enabled: on === 1,
      backlog: len,
      pending,
      oldest_at: oldest ? Number(oldest.slice(0, oldest.indexOf('-'))) : null,
    }
  }
}

/** The finished_at a job hash holds (as stored: the archive hold is released against it). */
export const finishedOf = (h: Record<string, string>): string => h[F.finished_at] ?? ''
