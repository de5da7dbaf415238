/** Jobs: filter by state, type and queue (kept in the URL), search by id or idempotency key,
 * page with a cursor, select rows for bulk cancel / retry, or cancel / retry every job matching
 * the filters at a rate (a system job on the workers, ADR 0020). */

import type { JobDto } from '@dtq/app/schemas'
import { useState } from 'react'
import { Link, useNavigate } from 'react-router'
import { type Column, DataTable, selectColumn } from '../../components/DataTable'
import { QueryState } from '../../components/QueryState'
import { Card, ConfirmButton, FilterInput, Pager, StateBadge } from '../../components/ui'
import { qs } from '../../lib/api'
import { useAuth } from '../../lib/auth'
import { ago } from '../../lib/format'
import { jobKey, jobPath, parseJobKey } from '../../lib/job-ref'
import { JOB_STATES as STATES } from '../../lib/states'
import { useUrlParams } from '../../lib/url-params'
import { type BulkByFilter, useBulk, useBulkByFilter } from './api/job-actions'
import { useJobs } from './api/list-jobs'
import { useJobSearch } from './api/search-jobs'
import { useJobRowNav } from './job-row-nav'

export function JobsPage() {
  const { get, update } = useUrlParams()
  const filters = {
    status: get('status'),
    task_type: get('type'),
    queue: get('queue'),
    cursor: get('cursor'),
  }
  const term = get('q') ?? ''
  const [history, setHistory] = useState<string[]>([])
  const [selected, setSelected] = useState<Set<string>>(new Set())
  const list = useJobs(filters)
  const search = useJobSearch(term, filters.queue)
  const { can } = useAuth()
  const bulkCancel = useBulk('cancel')
  const bulkRetry = useBulk('retry')
  const [notice, setNotice] = useState<string | null>(null)
  const byFilter = useBulkByFilter()
  const [rate, setRate] = useState('100')
  const navigate = useNavigate()
  const rows = useJobRowNav({ selected, onSelect: setSelected, onNotice: setNotice })

  /** Changes one parameter and clears the selection; a new filter starts from the first page. */
  const set = (k: string, v: string | undefined) => {
    if (k !== 'cursor') setHistory([])
    setSelected(new Set())
    update(k === 'cursor' ? { cursor: v } : { [k]: v, cursor: undefined })
  }

  const columns: Column<JobDto>[] = [
    selectColumn({
      selected,
      onChange: setSelected,
      rowKey: jobKey,
      label: (j) => `select job ${j.id} in ${j.queue}`,
      allLabel: 'select all',
    }),
    {
      header: 'Job',
      className: 'mono',
      cell: (j) => <Link to={jobPath(j)}>{j.id}</Link>,
    },
    { header: 'Type', cell: (j) => j.task_type },
    { header: 'Queue', cell: (j) => j.queue },
    { header: 'State', cell: (j) => <StateBadge state={j.state} /> },
    { header: 'Attempts', cell: (j) => j.attempts },
    {
      header: 'Updated',
      cellTitle: (j) => new Date(j.updated_at).toLocaleString(),
      cell: (j) => ago(j.updated_at),
    },
    {
      header: 'Error',
      className: 'error-text',
      cell: (j) => (j.state === 'failed' || j.state === 'retrying' ? j.error : ''),
    },
  ]

  const runBulk = async (kind: 'cancel' | 'retry') => {
    const r = await (kind === 'cancel' ? bulkCancel : bulkRetry).mutateAsync([...selected].map(parseJobKey))
    setNotice(
      `${kind === 'cancel' ? 'Cancelled' : 'Retried'} ${r.ok} job(s)${r.failed ? `; ${r.failed} refused (${r.firstError?.message})` : ''}`,
    )
    setSelected(new Set())
  }

  /** Every job matching the filters, by the workers at a rate (a system job whose log shows progress). */
  const runByFilter = async (action: 'cancel' | 'retry') => {
    const body: BulkByFilter = { action, rate_per_sec: Number(rate) }
    if (filters.queue) body.queue = filters.queue
    if (filters.status) body.state = filters.status as BulkByFilter['state']
    if (filters.task_type) body.task_type = filters.task_type
    try {
      const r = await byFilter.mutateAsync(body)
      setNotice(`${r.message}`)
    } catch (err) {
      setNotice(`Refused: ${(err as Error).message}`)
    }
  }
  const filterText = `state ${filters.status ?? 'any'}, type ${filters.task_type ?? 'any'}, queue ${filters.queue ?? 'any'}`

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
        <button
          type="button"
          disabled={selected.size !== 2}
          title="Two jobs side by side (select two)"
          onClick={() => {
            const [a, b] = [...selected]
            navigate(`/compare${qs({ a, b })}`)
          }}
        >
          Compare selected
        </button>
        <label>
          Rate/s{' '}
          <input
            aria-label="rate per second"
            type="number"
            min={1}
            className="narrow"
            value={rate}
            onChange={(e) => setRate(e.target.value)}
          />
        </label>
        <ConfirmButton
          danger
          disabled={!can('write')}
          title="Cancel all matching jobs"
          body={`Cancel every job matching ${filterText}, ${rate} per second, on the workers? Running ones are asked to stop. Follow the system job it starts; cancel that job to stop.`}
          confirmLabel="Cancel matching"
          onConfirm={() => runByFilter('cancel')}
        >
          Cancel all matching
        </ConfirmButton>
        <ConfirmButton
          disabled={!can('write')}
          title="Retry all matching jobs"
          body={`Retry every failed or cancelled job matching ${filterText}, ${rate} per second, on the workers? Follow the system job it starts; cancel that job to stop.`}
          confirmLabel="Retry matching"
          onConfirm={() => runByFilter('retry')}
        >
          Retry all matching
        </ConfirmButton>
      </fieldset>

      {rows.dialog}
      <QueryState
        query={term ? search : list}
        loading="Loading jobs"
        isEmpty={(d) => !d.items.length}
        empty={term ? `No job with id or idempotency key “${term}”.` : 'No jobs match these filters.'}
      >
        {(d) => (
          <DataTable caption="Jobs" rows={d.items} columns={columns} rowKey={jobKey} rowNav={rows.rowNav} />
        )}
      </QueryState>
      {!term && (
        <Pager
          onPrev={
            history.length
              ? () => {
                  setHistory(history.slice(0, -1))
                  update({ cursor: history[history.length - 1] })
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
