/**
 * Search: live jobs (Redis) and archived ones (PostgreSQL history) in one list (ADR 0029). Filters
 * -- queue, type, state, worker, time range, free text, payload `path = value` / `path ~ text`
 * rows -- are kept in the URL; presets save and load them; "More" reads the next page; exports
 * stream CSV or NDJSON. Without a history, a notice says how to enable it and live search works.
 */
import type { SearchFiltersDto, SearchItemDto, SearchReplyBody } from '@dtq/app/search-schemas'
import { useState } from 'react'
import { Link, useSearchParams } from 'react-router'
import { type Column, DataTable } from '../../components/DataTable'
import { QueryState } from '../../components/QueryState'
import { Card, ConfirmButton, StateBadge } from '../../components/ui'
import { useAuth } from '../../lib/auth'
import { ago } from '../../lib/format'
import { jobKey, jobPath } from '../../lib/job-ref'
import { JOB_STATES } from '../../lib/states'
import { downloadExport, useDeletePreset, usePresets, useSavePreset, useSearch } from './api/search'

interface WhereRow {
  path: string
  op: '=' | '~'
  value: string
}
const WHERE = /^([^=~]+)([=~])(.*)$/s

/** The filters in the URL: `where` repeated, times in ms. */
function filtersFrom(p: URLSearchParams): SearchFiltersDto {
  const f: SearchFiltersDto = {}
  for (const k of ['queue', 'task_type', 'worker', 'q'] as const) {
    const v = p.get(k)
    if (v) f[k] = v
  }
  const state = p.get('state')
  if (state) f.state = state as SearchFiltersDto['state']
  for (const k of ['from', 'to'] as const) {
    const v = Number(p.get(k))
    if (p.get(k) && Number.isFinite(v)) f[k] = v
  }
  const where = p.getAll('where')
  if (where.length) f.where = where
  return f
}

function toParams(f: SearchFiltersDto): URLSearchParams {
  const p = new URLSearchParams()
  for (const [k, v] of Object.entries(f)) {
    if (v === undefined || v === '') continue
    for (const x of Array.isArray(v) ? v : [v]) p.append(k, String(x))
  }
  return p
}

const rowsOf = (f: SearchFiltersDto): WhereRow[] =>
  (Array.isArray(f.where) ? f.where : f.where ? [f.where] : []).map((w) => {
    const m = WHERE.exec(w)
    return m ? { path: m[1]!, op: m[2] as WhereRow['op'], value: m[3]! } : { path: w, op: '=', value: '' }
  })

/** `datetime-local` text ↔ ms (the browser's zone). */
const localText = (ms: number | undefined) =>
  ms === undefined ? '' : new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 16)
const fromLocal = (s: string) => (s ? new Date(s).getTime() : undefined)

function Notices({ reply }: { reply: SearchReplyBody | undefined }) {
  if (!reply) return null
  return (
    <>
      {reply.history === 'disabled' && (
        <p className="notice" role="note">
          History is off: only live jobs (still in Redis) are searched. To search finished jobs after Redis
          forgets them, set <code>DATABASE_URL</code> (PostgreSQL) and run <code>dtq archiver</code> (README,
          “History”).
        </p>
      )}
      {reply.history === 'unavailable' && (
        <p className="notice error-text" role="alert">
          The history could not be searched: {reply.history_error}. Live jobs are shown.
        </p>
      )}
      {reply.history === 'enabled' && reply.range.defaulted && (
        <p className="muted">
          Archived jobs since {new Date(reply.range.from).toLocaleString()} (no “From” given: the default
          range); set “From” to search further back.
        </p>
      )}
      {reply.live.capped && (
        <p className="notice" role="note">
          Only the newest {reply.live.scanned} live jobs were searched (SEARCH_LIVE_SCAN): narrow the queue,
          type or state to search them all.
        </p>
      )}
    </>
  )
}

export function SearchPage() {
  const [params, setParams] = useSearchParams()
  const filters = filtersFrom(params)
  const [rows, setRows] = useState<WhereRow[]>(() => rowsOf(filters))
  const search = useSearch(filters)
  const presets = usePresets()
  const save = useSavePreset()
  const remove = useDeletePreset()
  const { can } = useAuth()
  const [presetName, setPresetName] = useState('')
  const [chosen, setChosen] = useState('')
  const [message, setMessage] = useState<string | null>(null)

  const apply = (f: SearchFiltersDto) => {
    setRows(rowsOf(f))
    setParams(toParams(f))
  }

  const submit = (form: HTMLFormElement) => {
    const d = new FormData(form)
    const text = (k: string) => String(d.get(k) ?? '').trim() || undefined
    const where = rows.filter((r) => r.path.trim()).map((r) => `${r.path.trim()}${r.op}${r.value}`)
    apply({
      queue: text('queue'),
      task_type: text('task_type'),
      state: text('state') as SearchFiltersDto['state'],
      worker: text('worker'),
      q: text('q'),
      from: fromLocal(String(d.get('from') ?? '')),
      to: fromLocal(String(d.get('to') ?? '')),
      where: where.length ? where : undefined,
    })
  }

  const columns: Column<SearchItemDto>[] = [
    {
      header: 'Job',
      className: 'mono',
      // An archived job opens on its job page too (GET /jobs/{id} falls back to the archive: ADR 0028).
      cell: (i) => <Link to={jobPath(i.job)}>{i.job.id}</Link>,
    },
    {
      header: 'Source',
      cell: (i) => (
        <span
          className="badge source"
          title={i.source === 'live' ? 'in Redis now' : 'from the history (PostgreSQL)'}
        >
          {i.source === 'live' ? 'live' : 'archived'}
        </span>
      ),
    },
    { header: 'Type', cell: (i) => i.job.task_type },
    { header: 'Queue', cell: (i) => i.job.queue },
    { header: 'State', cell: (i) => <StateBadge state={i.job.state} /> },
    { header: 'Worker', className: 'mono', cell: (i) => i.job.worker ?? '' },
    { header: 'When', cellTitle: (i) => new Date(i.at).toLocaleString(), cell: (i) => ago(i.at) },
    { header: 'Payload', className: 'mono', cell: (i) => JSON.stringify(i.job.payload)?.slice(0, 120) },
    { header: 'Error', className: 'error-text', cell: (i) => i.job.error ?? '' },
  ]

  const pages = search.data?.pages ?? []
  const items = pages.flatMap((p) => p.items)
  const first = pages[0]

  const run = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn()
      setMessage(what)
    } catch (err) {
      setMessage(`Refused: ${(err as Error).message}`)
    }
  }

  return (
    <Card title="Search">
      <form
        className="filters"
        aria-label="search filters"
        key={params.toString()}
        onSubmit={(e) => {
          e.preventDefault()
          submit(e.currentTarget)
        }}
      >
        <label>
          Queue
          <input name="queue" defaultValue={filters.queue} placeholder="any" />
        </label>
        <label>
          Type
          <input name="task_type" defaultValue={filters.task_type} placeholder="any" />
        </label>
        <label>
          State
          <select name="state" defaultValue={filters.state ?? ''}>
            <option value="">any</option>
            {JOB_STATES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Worker
          <input name="worker" defaultValue={filters.worker} placeholder="any" />
        </label>
        <label>
          From
          <input name="from" type="datetime-local" defaultValue={localText(filters.from)} />
        </label>
        <label>
          To
          <input name="to" type="datetime-local" defaultValue={localText(filters.to)} />
        </label>
        <label className="grow">
          Text
          <input
            name="q"
            type="search"
            defaultValue={filters.q}
            placeholder='words in payloads and errors: "a phrase", -not'
          />
        </label>
        <fieldset className="where">
          <legend>Payload</legend>
          {rows.map((r, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: rows have no identity but their place
            <div className="row" key={i}>
              <input
                aria-label={`payload path ${i + 1}`}
                placeholder="path, e.g. user.id or items[0].sku"
                value={r.path}
                onChange={(e) => setRows(rows.map((x, k) => (k === i ? { ...x, path: e.target.value } : x)))}
              />
              <select
                aria-label={`payload operator ${i + 1}`}
                value={r.op}
                onChange={(e) =>
                  setRows(rows.map((x, k) => (k === i ? { ...x, op: e.target.value as WhereRow['op'] } : x)))
                }
              >
                <option value="=">equals</option>
                <option value="~">contains</option>
              </select>
              <input
                aria-label={`payload value ${i + 1}`}
                placeholder='42, "42", true, text'
                value={r.value}
                onChange={(e) => setRows(rows.map((x, k) => (k === i ? { ...x, value: e.target.value } : x)))}
              />
              <button type="button" className="link" onClick={() => setRows(rows.filter((_, k) => k !== i))}>
                Remove
              </button>
            </div>
          ))}
          <button
            type="button"
            onClick={() => setRows([...rows, { path: '', op: '=', value: '' }])}
            disabled={rows.length >= 8}
          >
            Add payload filter
          </button>
        </fieldset>
        <button type="submit" className="primary">
          Search
        </button>
      </form>

      <fieldset className="bulk">
        <legend className="sr-only">Presets and export</legend>
        <label>
          Preset
          <select aria-label="preset" value={chosen} onChange={(e) => setChosen(e.target.value)}>
            <option value="">choose…</option>
            {presets.data?.items.map((p) => (
              <option key={p.name}>{p.name}</option>
            ))}
          </select>
        </label>
        <button
          type="button"
          disabled={!chosen}
          onClick={() => {
            const p = presets.data?.items.find((x) => x.name === chosen)
            if (p) apply(p.filters)
          }}
        >
          Load
        </button>
        <ConfirmButton
          danger
          disabled={!chosen || !can('write')}
          title="Delete preset"
          body={`Delete the preset “${chosen}”?`}
          confirmLabel="Delete preset"
          onConfirm={() =>
            run(`Deleted preset ${chosen}`, async () => {
              await remove.mutateAsync(chosen)
              setChosen('')
            })
          }
        >
          Delete
        </ConfirmButton>
        <label>
          Name
          <input
            aria-label="preset name"
            value={presetName}
            onChange={(e) => setPresetName(e.target.value)}
            placeholder="e.g. failed mail"
          />
        </label>
        <button
          type="button"
          disabled={!presetName.trim() || !can('write')}
          onClick={() =>
            run(`Saved preset ${presetName.trim()}`, () =>
              save.mutateAsync({ name: presetName.trim(), filters }),
            )
          }
        >
          Save current filters
        </button>
        <span className="grow" />
        <button type="button" onClick={() => run('Exported CSV', () => downloadExport(filters, 'csv'))}>
          Export CSV
        </button>
        <button type="button" onClick={() => run('Exported NDJSON', () => downloadExport(filters, 'ndjson'))}>
          Export NDJSON
        </button>
      </fieldset>

      {message && (
        <p className="notice" role="status">
          {message}
        </p>
      )}
      <Notices reply={first} />
      <QueryState
        query={{ ...search, data: first ? { items } : undefined }}
        loading="Searching"
        isEmpty={(d) => !d.items.length}
        empty="No job matches these filters."
      >
        {(d) => (
          <DataTable
            caption="Search results"
            rows={d.items}
            columns={columns}
            rowKey={(i) => `${i.source}:${jobKey(i.job)}`}
          />
        )}
      </QueryState>
      {search.hasNextPage && (
        <nav className="pager" aria-label="more results">
          <button type="button" onClick={() => search.fetchNextPage()} disabled={search.isFetchingNextPage}>
            {search.isFetchingNextPage ? 'Loading…' : `More (${items.length} shown)`}
          </button>
        </nav>
      )}
    </Card>
  )
}
