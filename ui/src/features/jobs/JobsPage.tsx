/** Jobs: filter by state, type and queue (kept in the URL), search by id or idempotency key,
 * page with a cursor, select rows for bulk cancel / retry. */
import type { JobDto } from '@dtq/app/schemas'
import { useState } from 'react'
import { Link, useSearchParams } from 'react-router'
import {
  Card,
  ConfirmButton,
  Empty,
  ErrorBox,
  FilterInput,
  Loading,
  Pager,
  StateBadge,
} from '../../components/ui'
import { useAuth } from '../../lib/auth'
import { ago } from '../../lib/format'
import { useBulk } from './api/job-actions'
import { useJobs } from './api/list-jobs'
import { useJobSearch } from './api/search-jobs'

const STATES = ['queued', 'scheduled', 'active', 'retrying', 'completed', 'failed', 'cancelled']

export function JobsPage() {
  const [params, setParams] = useSearchParams()
  const filters = {
    status: params.get('status') ?? undefined,
    task_type: params.get('type') ?? undefined,
    queue: params.get('queue') ?? undefined,
    cursor: params.get('cursor') ?? undefined,
  }
  const term = params.get('q') ?? ''
  const [history, setHistory] = useState<string[]>([])
  const [selected, setSelected] = useState<Set<string>>(new Set())
  const list = useJobs(filters)
  const search = useJobSearch(term)
  const { can } = useAuth()
  const bulkCancel = useBulk('cancel')
  const bulkRetry = useBulk('retry')
  const [notice, setNotice] = useState<string | null>(null)

  const set = (k: string, v: string | undefined) => {
    const next = new URLSearchParams(params)
    if (v) next.set(k, v)
    else next.delete(k)
    if (k !== 'cursor') {
      next.delete('cursor')
      setHistory([])
    }
    setSelected(new Set())
    setParams(next)
  }

  const rows: JobDto[] | undefined = term ? search.data : list.data?.items
  const loading = term ? search.isPending : list.isPending
  const error = term ? search.error : list.error

  const runBulk = async (kind: 'cancel' | 'retry') => {
    const r = await (kind === 'cancel' ? bulkCancel : bulkRetry).mutateAsync([...selected])
    setNotice(
      `${kind === 'cancel' ? 'Cancelled' : 'Retried'} ${r.ok} job(s)${r.failed ? `; ${r.failed} refused (${r.firstError?.message})` : ''}`,
    )
    setSelected(new Set())
  }

  return (
    <Card
      title="Jobs"
      actions={
        <Link className="button primary" to="/jobs/new">
          New job
        </Link>
      }
    >
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault()
          const v = new FormData(e.currentTarget).get('q')
          set('q', String(v ?? '').trim() || undefined)
        }}
      >
        <label>
          State
          <select value={filters.status ?? ''} onChange={(e) => set('status', e.target.value || undefined)}>
            <option value="">any</option>
            {STATES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <FilterInput label="Type" value={filters.task_type} onChange={(v) => set('type', v)} />
        <FilterInput label="Queue" value={filters.queue} onChange={(v) => set('queue', v)} />
        <label className="grow">
          Search
          <input name="q" type="search" defaultValue={term} placeholder="job id or idempotency key" />
        </label>
        <button type="submit">Search</button>
      </form>

      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      <fieldset className="bulk">
        <legend className="sr-only">Bulk actions</legend>
        <span className="muted">{selected.size} selected</span>
        <ConfirmButton
          disabled={!selected.size || !can('write')}
          title="Cancel jobs"
          body={`Cancel ${selected.size} selected job(s)? Running ones are asked to stop.`}
          confirmLabel="Cancel jobs"
          danger
          onConfirm={() => runBulk('cancel')}
        >
          Cancel selected
        </ConfirmButton>
        <ConfirmButton
          disabled={!selected.size || !can('write')}
          title="Retry jobs"
          body={`Retry ${selected.size} selected job(s)? Only failed and cancelled jobs can be retried.`}
          confirmLabel="Retry jobs"
          onConfirm={() => runBulk('retry')}
        >
          Retry selected
        </ConfirmButton>
      </fieldset>

      {loading ? (
        <Loading what="Loading jobs" />
      ) : error ? (
        <ErrorBox error={error} retry={() => (term ? search.refetch() : list.refetch())} />
      ) : !rows?.length ? (
        <Empty>
          {term ? `No job with id or idempotency key “${term}”.` : 'No jobs match these filters.'}
        </Empty>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>
                  <input
                    type="checkbox"
                    aria-label="select all"
                    checked={rows.every((j) => selected.has(j.id))}
                    onChange={(e) =>
                      setSelected(e.target.checked ? new Set(rows.map((j) => j.id)) : new Set())
                    }
                  />
                </th>
                <th>Job</th>
                <th>Type</th>
                <th>Queue</th>
                <th>State</th>
                <th>Attempts</th>
                <th>Updated</th>
                <th>Error</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((j) => (
                <tr key={`${j.queue}/${j.id}`}>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`select job ${j.id}`}
                      checked={selected.has(j.id)}
                      onChange={(e) => {
                        const next = new Set(selected)
                        if (e.target.checked) next.add(j.id)
                        else next.delete(j.id)
                        setSelected(next)
                      }}
                    />
                  </td>
                  <td className="mono">
                    <Link to={`/jobs/${encodeURIComponent(j.id)}`}>{j.id}</Link>
                  </td>
                  <td>{j.task_type}</td>
                  <td>{j.queue}</td>
                  <td>
                    <StateBadge state={j.state} />
                  </td>
                  <td>{j.attempts}</td>
                  <td title={new Date(j.updated_at).toLocaleString()}>{ago(j.updated_at)}</td>
                  <td className="error-text">
                    {j.state === 'failed' || j.state === 'retrying' ? j.error : ''}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {!term && (
        <Pager
          onPrev={
            history.length
              ? () => {
                  const prev = history.slice(0, -1)
                  setHistory(prev)
                  const next = new URLSearchParams(params)
                  const c = history[history.length - 1]
                  if (c) next.set('cursor', c)
                  else next.delete('cursor')
                  setParams(next)
                }
              : undefined
          }
          onNext={
            list.data?.next_cursor
              ? () => {
                  setHistory([...history, filters.cursor ?? ''])
                  set('cursor', list.data?.next_cursor ?? undefined)
                }
              : undefined
          }
        />
      )}
    </Card>
  )
}
