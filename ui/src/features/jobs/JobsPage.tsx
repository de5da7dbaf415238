/** Jobs: filter by state, type and queue (kept in the URL), search by id or idempotency key,
 * page with a cursor, select rows for bulk cancel / retry, or cancel / retry / delete every job
 * matching the filters at a rate (a system job on the workers, ADR 0020), its progress shown.
 * At any size (ADR 0033): "N jobs" from the per-state counts, jump to a time, a bounded payload
 * filter; sorted by updated or, within a queue whose created-time index is on, created time
 * (ADR 0035). Under 640 px the filters fold behind a button. */

import type { JobDto, JobPageDto } from '@dtq/app/schemas'
import { useState } from 'react'
import { Link, useNavigate } from 'react-router'
import { type Column, DataTable, selectColumn } from '../../components/DataTable'
import { useNarrowDisclosure } from '../../components/NarrowDisclosure'
import { QueryState } from '../../components/QueryState'
import { QueueLink } from '../../components/QueueLink'
import { Card, ConfirmButton, FilterInput, Pager, Progress, StateBadge } from '../../components/ui'
import { qs } from '../../lib/api'
import { useAuth } from '../../lib/auth'
import { ago, num } from '../../lib/format'
import { type JobRef, jobKey, jobPath, parseJobKey } from '../../lib/job-ref'
import { useCreatedIndex } from '../../lib/queue-actions'
import { useQueues } from '../../lib/queues'
import { JOB_STATES as STATES } from '../../lib/states'
import { useUrlParams } from '../../lib/url-params'
import { useJob } from './api/get-job'
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
    from: get('from'),
    order: get('order'),
    sort: get('sort'),
    where: get('where'),
  }
  const term = get('q') ?? ''
  const [history, setHistory] = useState<string[]>([])
  const [selected, setSelected] = useState<Set<string>>(new Set())
  // A payload filter lists newest first only (the search's order): its order is left out.
  const list = useJobs(filters.where ? { ...filters, order: undefined, sort: undefined } : filters)
  const filtersToggle = useNarrowDisclosure(
    'Filters',
    [filters.status, filters.task_type, filters.queue, filters.from, filters.where].filter(Boolean).length,
  )
  const search = useJobSearch(term, filters.queue)
  const { can } = useAuth()
  const bulkCancel = useBulk('cancel')
  const bulkRetry = useBulk('retry')
  const [notice, setNotice] = useState<string | null>(null)
  const byFilter = useBulkByFilter()
  const [rate, setRate] = useState('100')
  const [bulkJob, setBulkJob] = useState<(JobRef & { action: string; count: number | null }) | null>(null)
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
    { header: 'Queue', cell: (j) => <QueueLink queue={j.queue} /> },
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
  const runByFilter = async (action: BulkAction) => {
    const body: BulkByFilter = { action, rate_per_sec: Number(rate) }
    if (filters.queue) body.queue = filters.queue
    if (filters.status) body.state = filters.status as BulkByFilter['state']
    if (filters.task_type) body.task_type = filters.task_type
    try {
      const r = await byFilter.mutateAsync(body)
      setNotice(`${r.message}`)
      setBulkJob({ id: r.job.id, queue: r.job.queue, action, count: matching(action) })
    } catch (err) {
      setNotice(`Refused: ${(err as Error).message}`)
    }
  }
  const filterText = `state ${filters.status ?? 'any'}, type ${filters.task_type ?? 'any'}, queue ${filters.queue ?? 'any'}`
  /** How many jobs an action by filter would touch: the per-state counts of its states, when known. */
  const matching = (action: BulkAction): number | null => {
    const by = list.data?.by_state
    if (!by || filters.where) return null
    return BULK_STATES[action].reduce((n, st) => n + (by[st] ?? 0), 0)
  }
  /** Why an action by filter cannot run now (the button's title), or null. */
  const blocked = (action: BulkAction): string | null => {
    if (!can(action === 'delete' ? 'admin' : 'write'))
      return `needs the ${action === 'delete' ? 'admin' : 'write'} role`
    if (filters.where) return 'a payload filter cannot drive a bulk action: narrow by state, type or queue'
    if (filters.status && !BULK_STATES[action].includes(filters.status as never))
      return `${action} applies to ${BULK_STATES[action].join(', ')} jobs`
    if (action === 'delete' && !filters.queue) return 'a bulk delete is per queue: filter by queue first'
    if (matching(action) === 0) return 'no job matches'
    return null
  }
  const countText = (action: BulkAction) => {
    if (filters.status && !BULK_STATES[action].includes(filters.status)) return 'all'
    const n = matching(action)
    return n === null ? 'all' : `all ${num(n)}`
  }
  const byFilterButton = (action: BulkAction, verb: string, danger: boolean, extra: string) => (
    <span title={blocked(action) ?? undefined}>
      <ConfirmButton
        danger={danger}
        disabled={blocked(action) !== null}
        title={`${verb} all matching jobs`}
        body={`${verb} ${matching(action) === null ? 'every' : num(matching(action) ?? 0)} job(s) matching ${filterText} (${BULK_STATES[action].join(', ')}), ${rate} per second, on the workers? ${extra} Follow the system job it starts; cancel that job to stop.`}
        confirmLabel={`${verb} ${matching(action) === null ? 'matching' : num(matching(action) ?? 0)}`}
        onConfirm={() => runByFilter(action)}
      >
        {verb} {countText(action)} matching
      </ConfirmButton>
    </span>
  )
  const fromValue = filters.from ? toLocalInput(Number(filters.from)) : ''
  const sortValue = `${filters.sort === 'created' ? 'created' : 'updated'}-${filters.order === 'asc' ? 'asc' : 'desc'}`

  return (
    <Card
      title="Jobs"
      actions={
        <Link className="button primary" to="/jobs/new">
          New job
        </Link>
      }
    >
      {filtersToggle.button}
      <form
        className={`filters ${filtersToggle.className}`}
        id={filtersToggle.id}
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
        <label>
          From
          <input
            type="datetime-local"
            step={1}
            aria-label="list from this time (local)"
            value={fromValue}
            onChange={(e) => {
              const t = e.target.value ? new Date(e.target.value).getTime() : Number.NaN
              set('from', Number.isFinite(t) ? String(t) : undefined)
            }}
          />
        </label>
        <SortControl
          value={sortValue}
          queue={filters.queue}
          onChange={(v) => {
            const [sort, order] = v.split('-')
            setHistory([])
            setSelected(new Set())
            update({
              sort: sort === 'created' ? 'created' : undefined,
              order: order === 'asc' ? 'asc' : undefined,
              cursor: undefined,
            })
          }}
        />
        <FilterInput label="Payload (field=value)" value={filters.where} onChange={(v) => set('where', v)} />
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
        {byFilterButton('cancel', 'Cancel', true, 'Running ones are asked to stop.')}
        {byFilterButton('retry', 'Retry', false, '')}
        {byFilterButton('delete', 'Delete', true, 'Only finished jobs are deleted, for good.')}
      </fieldset>
      {bulkJob && <BulkProgress job={bulkJob} onClose={() => setBulkJob(null)} />}
      {!term && list.data && <ListSummary page={list.data} where={filters.where} />}

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
          oldestFirst={filters.order === 'asc'}
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

/**
 * Sort: by updated (the time a job entered its state) or created time, newest or oldest first.
 * Created needs one queue whose created-time index is on (ADR 0035): otherwise its options are
 * disabled, with why, and an admin can turn the index on from here.
 */
function SortControl({
  value,
  queue,
  onChange,
}: {
  value: string
  queue?: string
  onChange: (v: string) => void
}) {
  const queues = useQueues()
  const { can } = useAuth()
  const turnOn = useCreatedIndex()
  const state = queue ? queues.data?.items.find((q) => q.queue === queue)?.created_index : undefined
  const why = !queue
    ? 'sorting by created time needs one queue: filter by queue'
    : state === 'on'
      ? null
      : state === 'building'
        ? `the created-time index of ${queue} is building`
        : `the created-time index of ${queue} is off`
  return (
    <>
      <label title={why ?? undefined}>
        Sort
        <select value={value} onChange={(e) => onChange(e.target.value)}>
          <option value="updated-desc">Updated, newest first</option>
          <option value="updated-asc">Updated, oldest first</option>
          <option value="created-desc" disabled={why !== null}>
            Created, newest first
          </option>
          <option value="created-asc" disabled={why !== null}>
            Created, oldest first
          </option>
        </select>
      </label>
      {why && queue && (
        <span className="muted sort-why">
          Created order: {why}.{' '}
          {state !== 'building' &&
            (can('admin') ? (
              <ConfirmButton
                title={`Turn on the created-time index of ${queue}`}
                body={`Index ${queue}'s jobs by created time? It costs about 1 µs of Redis CPU and 100 B of memory per job while on; existing jobs are indexed now, in pages.`}
                confirmLabel="Turn on"
                onConfirm={() => turnOn.mutateAsync({ queue, on: true }).catch(() => {})}
              >
                Turn on
              </ConfirmButton>
            ) : (
              'An admin can turn it on.'
            ))}
        </span>
      )}
    </>
  )
}

type BulkAction = BulkByFilter['action']
/** The states an action by filter walks (as the server's BULK_STATES). */
const BULK_STATES: Record<BulkAction, readonly string[]> = {
  cancel: ['waiting', 'queued', 'scheduled', 'retrying', 'active'],
  retry: ['failed', 'cancelled'],
  delete: ['completed', 'failed', 'cancelled'],
}

/** A time as a datetime-local input shows it (local, to the second). */
function toLocalInput(ms: number): string {
  if (!Number.isFinite(ms)) return ''
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000)
  return d.toISOString().slice(0, 19)
}

/** "N jobs" (a cheap exact total), or what a payload filter scanned and whether it was cut short. */
function ListSummary({ page, where }: { page: JobPageDto; where?: string }) {
  if (where && page.scan) {
    return (
      <p className="muted list-summary" role="status">
        Payload filter: {num(page.scan.scanned)} live job(s) scanned
        {page.scan.capped
          ? ` — cut short at ${num(page.scan.limit)} (older live jobs not read: narrow by state or type)`
          : ' — all of them'}
        {page.history === 'enabled' ? '; the history searched too' : ''}.
      </p>
    )
  }
  if (page.total === undefined || page.total === null) return null
  return (
    <p className="muted list-summary" role="status">
      <strong>{num(page.total)}</strong> job{page.total === 1 ? '' : 's'}
    </p>
  )
}

/** The system job of an action by filter: its state and progress, live, with a link to it. */
function BulkProgress({
  job,
  onClose,
}: {
  job: JobRef & { action: string; count: number | null }
  onClose: () => void
}) {
  const q = useJob(job)
  const j = q.data
  const done = typeof j?.progress === 'number' ? j.progress : 0
  return (
    <section className="notice bulk-progress" aria-label="bulk action progress">
      <strong>
        {job.action} by filter: <Link to={jobPath(job)}>system job {job.id}</Link>
      </strong>{' '}
      — {j ? j.state : 'starting'} · {num(done)}
      {job.count !== null ? ` of ${num(job.count)}` : ''} done
      {j?.logs?.length ? <span className="muted"> · {j.logs[j.logs.length - 1]}</span> : null}
      {job.count ? <Progress value={Math.min(100, (done / job.count) * 100)} /> : null}{' '}
      <button type="button" className="link" onClick={onClose}>
        Dismiss
      </button>
    </section>
  )
}
