/** Dead letters grouped by error and type, with filters; retry one, selected, or all matching
 * at a chosen rate; delete; purge older than N days. Every destructive action is confirmed. */
import type { DlqJobDto } from '@dtq/app/schemas'
import { useMemo, useState } from 'react'
import { Link } from 'react-router'
import { type Column, DataTable, selectColumn } from '../../components/DataTable'
import { QueryState } from '../../components/QueryState'
import { Card, ConfirmButton, ErrorBox, FilterInput } from '../../components/ui'
import { useAuth } from '../../lib/auth'
import { ago, num } from '../../lib/format'
import { jobKey, jobPath, parseJobKey } from '../../lib/job-ref'
import { useUrlParams } from '../../lib/url-params'
import { useDeleteDead, useDlq, usePurge, useRetryDead, useRetryMatching } from './api/dlq'

interface Group {
  key: string
  task_type: string
  error: string
  count: number
  newest: number
}

function groupBy(items: DlqJobDto[]): Group[] {
  const m = new Map<string, Group>()
  for (const j of items) {
    const error = j.error ?? ''
    const key = `${j.task_type}\u0000${error}`
    const g = m.get(key) ?? { key, task_type: j.task_type, error, count: 0, newest: 0 }
    g.count++
    g.newest = Math.max(g.newest, j.failed_at)
    m.set(key, g)
  }
  return [...m.values()].sort((a, b) => b.count - a.count)
}

export function DlqPage() {
  const { get, update } = useUrlParams()
  const filters = {
    queue: get('queue'),
    task_type: get('type'),
    error: get('error'),
    older_than_days: get('older'),
  }
  const q = useDlq(filters)
  const { can } = useAuth()
  const retry = useRetryDead()
  const del = useDeleteDead()
  const retryMatching = useRetryMatching()
  const purge = usePurge()
  const [selected, setSelected] = useState<Set<string>>(new Set())
  const [rate, setRate] = useState(20)
  const [days, setDays] = useState(7)
  const [notice, setNotice] = useState<string | null>(null)
  const groups = useMemo(() => groupBy(q.data?.items ?? []), [q.data])
  const set = (k: string, v?: string) => {
    update({ [k]: v })
    setSelected(new Set())
  }
  const err = retry.error ?? del.error ?? retryMatching.error ?? purge.error
  /** Applies a mutation to the selected dead letters, says how many, clears the selection. */
  const onSelected = async (m: typeof retry, done: string) => {
    const n = await m.mutateAsync([...selected].map(parseJobKey))
    setNotice(`${done} ${n} job(s).`)
    setSelected(new Set())
  }
  const groupColumns: Column<Group>[] = [
    { header: 'Type', cell: (g) => g.task_type },
    { header: 'Error', className: 'error-text', cell: (g) => g.error },
    { header: 'Count', cell: (g) => num(g.count) },
    { header: 'Newest', cell: (g) => ago(g.newest) },
    {
      header: 'Actions',
      hideHeader: true,
      cell: (g) => (
        <button
          type="button"
          className="link"
          onClick={() => update({ type: g.task_type, error: g.error.slice(0, 200) })}
        >
          Show only these
        </button>
      ),
    },
  ]
  const jobColumns: Column<DlqJobDto>[] = [
    selectColumn({
      selected,
      onChange: setSelected,
      rowKey: jobKey,
      label: (j) => `select dead letter ${j.id} in ${j.queue}`,
      allLabel: 'select all dead letters',
    }),
    {
      header: 'Job',
      className: 'mono',
      cell: (j) => <Link to={jobPath(j)}>{j.id}</Link>,
    },
    { header: 'Type', cell: (j) => j.task_type },
    { header: 'Queue', cell: (j) => j.queue },
    { header: 'Attempts', cell: (j) => j.attempts },
    { header: 'Failed', cell: (j) => ago(j.failed_at) },
    { header: 'Error', className: 'error-text', cell: (j) => j.error },
    {
      header: 'Actions',
      hideHeader: true,
      cell: (j) => (
        <button
          type="button"
          disabled={!can('write')}
          onClick={() => retry.mutate([j])}
          aria-label={`retry ${j.id} in ${j.queue}`}
        >
          Retry
        </button>
      ),
    },
    {
      header: 'Replay',
      hideHeader: true,
      // Replay (ADR 0028): a NEW job from this one, edited first in the job page's editor.
      cell: (j) => (
        <Link
          className="button"
          to={`${jobPath(j)}&replay=1`}
          aria-label={`replay ${j.id} in ${j.queue}`}
          aria-disabled={!can('write')}
        >
          Replay
        </Link>
      ),
    },
  ]

  return (
    <div className="stack">
      <Card title="Dead letters">
        <div className="filters">
          <FilterInput label="Type" value={filters.task_type} onChange={(v) => set('type', v)} />
          <FilterInput label="Error contains" value={filters.error} onChange={(v) => set('error', v)} />
          <FilterInput label="Queue" value={filters.queue} onChange={(v) => set('queue', v)} />
          <label>
            Failed more than (days ago)
            <input
              type="number"
              min={0}
              defaultValue={filters.older_than_days}
              onBlur={(e) => set('older', e.target.value || undefined)}
            />
          </label>
        </div>
        {notice && (
          <p className="notice" role="status">
            {notice}
          </p>
        )}
        {err && <ErrorBox error={err} />}
        <div className="bulk">
          <label className="inline">
            Rate (jobs/s)
            <input
              type="number"
              min={1}
              max={100000}
              value={rate}
              onChange={(e) => setRate(Number(e.target.value) || 1)}
            />
          </label>
          <ConfirmButton
            disabled={!can('write') || !q.data?.items.length}
            title="Retry all matching"
            body={`Retry every dead letter matching the filters, at ${rate} per second (so the downstream is not flooded)?`}
            confirmLabel="Retry all"
            onConfirm={async () => {
              const r = await retryMatching.mutateAsync({
                task_type: filters.task_type,
                error: filters.error,
                queue: filters.queue,
                rate_per_sec: rate,
              })
              setNotice(r.message)
            }}
          >
            Retry all matching
          </ConfirmButton>
          <ConfirmButton
            disabled={!selected.size || !can('write')}
            title="Retry selected"
            body={`Retry ${selected.size} selected dead letter(s) now?`}
            confirmLabel="Retry"
            onConfirm={() => onSelected(retry, 'Retried')}
          >
            Retry selected
          </ConfirmButton>
          <ConfirmButton
            danger
            disabled={!selected.size || !can('admin')}
            title="Delete selected"
            body={`Delete ${selected.size} dead letter(s) for good?`}
            confirmLabel="Delete"
            onConfirm={() => onSelected(del, 'Deleted')}
          >
            Delete selected
          </ConfirmButton>
          <label className="inline">
            Older than (days)
            <input
              type="number"
              min={0}
              max={3650}
              value={days}
              onChange={(e) => setDays(Number(e.target.value))}
            />
          </label>
          <ConfirmButton
            danger
            disabled={!can('admin')}
            title="Purge dead letters"
            body={
              days === 0
                ? 'Delete every dead letter, in every queue?'
                : `Delete every dead letter that failed more than ${days} day(s) ago?`
            }
            confirmLabel="Purge"
            onConfirm={async () => {
              const r = await purge.mutateAsync(days)
              setNotice(`Purged ${r.deleted} job(s).`)
            }}
          >
            Purge
          </ConfirmButton>
        </div>
      </Card>

      <QueryState
        query={q}
        loading="Loading dead letters"
        isEmpty={(d) => !d.items.length}
        empty={<>No dead letters{Object.values(filters).some(Boolean) ? ' match these filters' : ''}. </>}
      >
        {(d) => (
          <>
            <Card title={`Grouped by error (${num(d.items.length)}${d.next_cursor ? '+' : ''})`}>
              <DataTable rows={groups} columns={groupColumns} rowKey={(g) => g.key} />
            </Card>
            <Card title="Jobs">
              <DataTable rows={d.items} columns={jobColumns} rowKey={jobKey} />
            </Card>
          </>
        )}
      </QueryState>
    </div>
  )
}
