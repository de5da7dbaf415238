/**
 * One search over live jobs (Redis) and archived ones (PostgreSQL), merged (ADR 0029).
 *
 * - Live: the existing listing (`list` function: queue, state and type filtered in Redis), read
 *   up to `liveScan` jobs, the other filters applied here; the answer says when that cap cut it.
 * - Archive: keyset batches (archive-query.ts) over a time range that is always bounded: without
 *   `from`, the last `defaultDays` days (the answer says so).
 * - Dedupe by (queue, job id), the live copy winning: an archived row whose job hash is still in
 *   Redis is dropped (the live copy is in the live part if it matches, and is the truth if not).
 * - One order: time desc (finished_at, or created_at for a job not finished), queue desc, id desc;
 *   a cursor is a position in it, so pages neither repeat nor skip what stayed put.
 */

import type { Config } from '../config.ts'
import type { Job } from '../queue/job.ts'
import type { Queue } from '../queue/queue.ts'
import { SearchStore } from '../redis/search-store.ts'
import { ArchiveSearch, FINISHED } from './archive-query.ts'
import {
  ahead,
  decodeSearchCursor,
  encodeSearchCursor,
  matcher,
  type SearchFilters,
  type SearchKey,
  sortTime,
} from './filters.ts'

const DAY_MS = 86_400_000

export interface SearchItem {
  source: 'live' | 'archive'
  at: number
  job: Job
}
type Found = SearchItem & { key: SearchKey }
/** Where an archive scan stopped on its budget: the page ends there. */
type Stop = { source: 'stop'; key: SearchKey }

export interface HistoryInfo {
  history: 'enabled' | 'disabled' | 'unavailable'
  history_error?: string
}

export interface SearchPage extends HistoryInfo {
  items: SearchItem[]
  next_cursor: string | null
  live: { scanned: number; capped: boolean }
  range: { from: number; to: number; defaulted: boolean }
}

export interface SearchOptions {
  /** Live jobs read at most per search (SEARCH_LIVE_SCAN). */
  liveScan: number
  /** The archive's range when no `from` is given (SEARCH_DEFAULT_DAYS). */
  defaultDays: number
  now: () => number
}

const keyOf = (queue: string, id: string, at: number): SearchKey => ({ at, queue, id })

/** What went wrong with the archive, said so an operator knows what to do. */
export function historyError(err: unknown): string {
  const e = err as { code?: string; message?: string }
  if (e.code === '42P01' || e.code === '3F000')
    return 'the history has no tables yet: run `dtq archiver` once (it creates them)'
  if (e.code === '57014')
    return 'the archive query ran longer than SEARCH_TIMEOUT_MS: narrow the time range or add filters'
  return `PostgreSQL is unreachable: ${e.message ?? String(err)}`
}

export class SearchEngine {
  private readonly queue: Queue
  private readonly store: SearchStore
  private readonly archive: ArchiveSearch | null
  private readonly opts: SearchOptions

  constructor(queue: Queue, store: SearchStore, archive: ArchiveSearch | null, opts: SearchOptions) {
    this.queue = queue
    this.store = store
    this.archive = archive
    this.opts = opts
  }

  /** The engine the settings describe (a PostgreSQL pool when DATABASE_URL is set) and its closer. */
  static fromConfig(
    queue: Queue,
    config: Config,
  ): { engine: SearchEngine; store: SearchStore; close(): Promise<void> } {
    const store = new SearchStore(queue.store.redis, config.keyPrefix)
    const pool = config.databaseUrl ? ArchiveSearch.pool(config.databaseUrl, config.searchTimeoutMs) : null
    const engine = new SearchEngine(
      queue,
      store,
      pool ? new ArchiveSearch(pool, config.historySchema) : null,
      {
        liveScan: config.searchLiveScan,
        defaultDays: config.searchDefaultDays,
        now: () => queue.store.clock.now(),
      },
    )
    return { engine, store, close: async () => void (await pool?.end().catch(() => {})) }
  }

  /** Live jobs matching `f`, in the search's order (at most `liveScan` read). */
  async liveMatches(f: SearchFilters): Promise<{ items: Found[]; scanned: number; capped: boolean }> {
    const match = matcher(f)
    const items: Found[] = []
    let scanned = 0
    let cursor: string | undefined
    for (;;) {
      const limit = Math.min(1000, this.opts.liveScan - scanned)
      const page = await this.queue.listJobs({
        queue: f.queue,
        state: f.state,
        task_type: f.task_type,
        cursor,
        limit,
      })
      scanned += page.items.length
      for (const job of page.items) {
        if (!match(job)) continue
        const at = sortTime(job)
        items.push({ source: 'live', at, job, key: keyOf(job.queue, job.id, at) })
      }
      if (!page.next_cursor) return { items: sort(items), scanned, capped: false }
      if (scanned >= this.opts.liveScan) return { items: sort(items), scanned, capped: true }
      cursor = page.next_cursor
    }
  }

  /** The archive's range: always bounded (the last `defaultDays` days unless `from` is given). */
  range(f: SearchFilters): SearchPage['range'] {
    const to = f.to ?? this.opts.now() + 1
    return f.from !== undefined
      ? { from: f.from, to, defaulted: false }
      : { from: Math.max(0, to - this.opts.defaultDays * DAY_MS), to, defaulted: true }
  }

  /**
   * Archived rows matching `f` after `after`, without those still live, in order: batches of
   * `batch`; after `budget` rows examined, a Stop at the last one. A failure ends the scan and is
   * told to `onError` (none: it is thrown).
   */
  private async *archived(
    f: SearchFilters,
    range: SearchPage['range'],
    after: SearchKey | null,
    o: { batch: number; budget: number; onError?: (err: unknown) => void },
  ): AsyncGenerator<Found | Stop> {
    if (!this.archive || (f.state && !FINISHED.includes(f.state))) return
    let pos = after
    let examined = 0
    for (;;) {
      let rows: Awaited<ReturnType<ArchiveSearch['batch']>>
      let live: boolean[]
      try {
        rows = await this.archive.batch(f, range, pos, o.batch)
        live = await this.store.live(rows)
      } catch (err) {
        if (!o.onError) throw err
        o.onError(err)
        return
      }
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i]!
        const at = Number(r.at)
        if (!live[i]) yield { source: 'archive', at, job: r.job as Job, key: keyOf(r.queue, r.job_id, at) }
      }
      if (rows.length < o.batch) return
      const last = rows[rows.length - 1]!
      pos = keyOf(last.queue, last.job_id, Number(last.at))
      examined += rows.length
      if (examined >= o.budget) {
        yield { source: 'stop', key: pos }
        return
      }
    }
  }

  /** Live and archived results after `after`, merged in order. */
  async *merged(
    f: SearchFilters,
    range: SearchPage['range'],
    after: SearchKey | null,
    live: readonly Found[],
    o: { batch: number; budget: number; onError?: (err: unknown) => void },
  ): AsyncGenerator<Found | Stop> {
    const rest = after ? live.filter((x) => ahead(after, x.key)) : live
    const arch = this.archived(f, range, after, o)
    let i = 0
    let a = (await arch.next()).value as Found | Stop | undefined
    while (i < rest.length || a) {
      if (a && (i >= rest.length || ahead(a.key, rest[i]!.key))) {
        yield a
        if (a.source === 'stop') return
        a = (await arch.next()).value as Found | Stop | undefined
      } else yield rest[i++]!
    }
  }

  historyInfo(): HistoryInfo {
    return { history: this.archive ? 'enabled' : 'disabled' }
  }

  /** One page: `limit` results after the cursor, and the cursor of the next page (null: none). */
  async page(f: SearchFilters, cursor: string | undefined, limit: number): Promise<SearchPage> {
    const after = cursor ? decodeSearchCursor(cursor) : null
    const live = await this.liveMatches(f)
    const info = this.historyInfo()
    const range = this.range(f)
    const onError = (err: unknown) => {
      info.history = 'unavailable'
      info.history_error = historyError(err)
    }
    const items: Found[] = []
    let next: SearchKey | null = null
    for await (const x of this.merged(f, range, after, live.items, {
      batch: limit + 1,
      budget: limit * 20,
      onError,
    })) {
      if (x.source === 'stop') {
        next = x.key
        break
      }
      if (items.length === limit) {
        next = items[limit - 1]!.key
        break
      }
      items.push(x)
    }
    return {
      items: items.map(({ source, at, job }) => ({ source, at, job })),
      next_cursor: next ? encodeSearchCursor(next) : null,
      ...info,
      live: { scanned: live.scanned, capped: live.capped },
      range,
    }
  }
}

function sort(items: Found[]): Found[] {
  return items.sort((a, b) => (ahead(a.key, b.key) ? -1 : ahead(b.key, a.key) ? 1 : 0))
}
