/**
 * A search's export formats (ADR 0029): CSV (RFC 4180: every field quoted when it holds a quote,
 * comma, CR or LF, quotes doubled, CRLF line ends) and NDJSON (one JSON object per line). A row
 * is formatted as it streams: nothing is gathered.
 */
import { DtqError } from '../errors.ts'
import { historyError, type SearchEngine, type SearchItem } from './engine.ts'
import type { SearchFilters } from './filters.ts'

export const EXPORT_FORMATS = ['csv', 'ndjson'] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]

export const CSV_COLUMNS = [
  'source',
  'queue',
  'job_id',
  'task_type',
  'state',
  'created_at',
  'finished_at',
  'attempts',
  'worker',
  'error_class',
  'error',
  'payload',
  'result',
] as const

/** One CSV field (RFC 4180). */
export function csvField(v: unknown): string {
  const s = v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v)
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s
}

const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? '' : new Date(ms).toISOString()

export function csvHeader(): string {
  return `${CSV_COLUMNS.join(',')}\r\n`
}

export function csvRow(x: SearchItem): string {
  const j = x.job
  const cells = [
    x.source,
    j.queue,
    j.id,
    j.task_type,
    j.state,
    iso(j.created_at),
    iso(j.finished_at),
    j.attempts,
    j.worker,
    j.error_class,
    j.error,
    j.payload === undefined ? null : JSON.stringify(j.payload),
    j.result === undefined || j.result === null ? null : JSON.stringify(j.result),
  ]
  return `${cells.map(csvField).join(',')}\r\n`
}

export function ndjsonRow(x: SearchItem): string {
  return `${JSON.stringify({ source: x.source, at: x.at, job: x.job })}\n`
}

/**
 * Starts an export of `f`: the live part (bounded) once, then the archive in batches of 1000,
 * merged, as text lines read one at a time -- a batch is read only when the lines before it
 * were taken (backpressure), so memory is a few batches whatever the size. The first result is
 * read here, before anything is sent: PostgreSQL failing is a HISTORY_UNAVAILABLE error, not a
 * cut file.
 */
export async function startExport(engine: SearchEngine, f: SearchFilters, format: ExportFormat, max: number) {
  const live = await engine.liveMatches(f)
  const results = engine.merged(f, engine.range(f), null, live.items, { batch: 1000, budget: Infinity })
  let first: IteratorResult<unknown>
  try {
    first = await results.next()
  } catch (err) {
    throw new DtqError('HISTORY_UNAVAILABLE', historyError(err))
  }
  const row = format === 'csv' ? csvRow : ndjsonRow
  async function* lines(): AsyncGenerator<string> {
    if (format === 'csv') yield csvHeader()
    let r = first
    for (let n = 0; !r.done; ) {
      yield row(r.value as SearchItem)
      if (++n >= max) break
      r = await results.next()
    }
    await results.return(undefined)
  }
  return { live: { scanned: live.scanned, capped: live.capped }, lines: lines() }
}
