/**
 * `dtq search` (ADR 0029): the search of `GET /search` from the command line -- live jobs and,
 * with DATABASE_URL, archived ones -- as a table, JSON, or a streamed CSV / NDJSON export.
 */
import type { Command } from 'commander'
import type { Config } from '../config.ts'
import { DtqError } from '../errors.ts'
import type { Queue } from '../queue/queue.ts'
import { SearchEngine } from '../search/engine.ts'
import { EXPORT_FORMATS, type ExportFormat, startExport } from '../search/export.ts'
import { parseFilters } from '../search/filters.ts'

type WithQueue = <T>(fn: (q: Queue) => Promise<T>) => Promise<T>

interface SearchOptions {
  queue?: string
  type?: string
  state?: string
  worker?: string
  from?: string
  to?: string
  text?: string
  where: string[]
  limit?: string
  format: 'table' | 'json' | ExportFormat
}

/** ms since the epoch, or an ISO 8601 time. */
function timeOf(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v)
  if (!Number.isSafeInteger(ms) || ms < 0)
    throw new DtqError('VALIDATION', `--${name}: ms since the epoch or an ISO time`)
  return ms
}

async function write(text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise((r) => process.stdout.once('drain', r))
}

export function searchCommands(program: Command, withQueue: WithQueue, config: () => Config): void {
  program
    .command('search')
    .description(
      'search live and archived jobs (payload paths, free text, type, queue, state, worker, time); export CSV / NDJSON',
    )
    .option('--queue <q>', 'queue')
    .option('--type <t>', 'task type')
    .option('--state <s>', 'state')
    .option('--worker <w>', 'worker id')
    .option(
      '--from <time>',
      'from (ms or ISO); without it the history searched is the last SEARCH_DEFAULT_DAYS',
    )
    .option('--to <time>', 'to (ms or ISO), exclusive')
    .option('--text <q>', 'free text over payloads and errors')
    .option(
      '--where <path=value>',
      'payload filter: path=value or path~text (repeatable)',
      (v, a: string[]) => [...a, v],
      [],
    )
    .option(
      '--limit <n>',
      'results (table, json: one page, at most 500; csv, ndjson: rows, at most SEARCH_EXPORT_MAX)',
    )
    .option('--format <f>', `table | json | ${EXPORT_FORMATS.join(' | ')}`, 'table')
    .action(async (o: SearchOptions) =>
      withQueue(async (q) => {
        const cfg = config()
        const filters = parseFilters({
          queue: o.queue,
          task_type: o.type,
          state: o.state as never,
          worker: o.worker,
          from: timeOf('from', o.from),
          to: timeOf('to', o.to),
          q: o.text,
          where: o.where,
        })
        const { engine, close } = SearchEngine.fromConfig(q, cfg)
        try {
          const exporting = o.format === 'csv' || o.format === 'ndjson'
          const limit = o.limit === undefined ? (exporting ? cfg.searchExportMax : 50) : Number(o.limit)
          const cap = exporting ? cfg.searchExportMax : 500
          if (!Number.isSafeInteger(limit) || limit < 1 || limit > cap)
            throw new DtqError('VALIDATION', `--limit must be 1 to ${cap}`)
          if (exporting) {
            const { lines } = await startExport(engine, filters, o.format as ExportFormat, limit)
            for await (const line of lines) await write(line)
            return
          }
          const page = await engine.page(filters, undefined, limit)
          if (o.format === 'json') return void (await write(`${JSON.stringify(page, null, 2)}\n`))
          for (const i of page.items) {
            const j = i.job
            await write(
              `${i.source === 'live' ? 'live    ' : 'archived'} ${j.queue}/${j.id}  ${j.state.padEnd(9)} ${j.task_type}  ${new Date(i.at).toISOString()}  ${JSON.stringify(j.payload)?.slice(0, 80) ?? ''}\n`,
            )
          }
          const notes = [
            page.history === 'disabled' ? 'history off (no DATABASE_URL): live jobs only' : '',
            page.history === 'unavailable' ? `history unavailable: ${page.history_error}` : '',
            page.range.defaulted && page.history === 'enabled'
              ? `history since ${new Date(page.range.from).toISOString()} (no --from)`
              : '',
            page.live.capped ? `live part capped at ${page.live.scanned} jobs (SEARCH_LIVE_SCAN)` : '',
            page.next_cursor ? 'more results: raise --limit, or export with --format csv' : '',
          ].filter(Boolean)
          for (const n of notes) process.stderr.write(`${n}\n`)
        } finally {
          await close()
        }
      }),
    )
}
