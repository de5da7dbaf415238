/** Dead letters grouped by queue, type, priority and error class (exact counts from the server),
 * with filters; retry one, selected, or all matching at a chosen rate; delete; purge older than
 * N days (of one priority or all). Every destructive action is confirmed. */
import type { DlqJobDto, DlqStatsDto } from '@dtq/app/schemas'
import { useState } from 'react'
import { Link } from 'react-router'
import { type Column, DataTable, selectColumn } from '../../components/DataTable'
import { useNarrowDisclosure } from '../../components/NarrowDisclosure'
import { QueryState } from '../../components/QueryState'
import { QueueLink } from '../../components/QueueLink'
import { Card, ConfirmButton, ErrorBox, FilterInput, Pager } from '../../components/ui'
import { useAuth } from '../../lib/auth'
import { ago, num } from '../../lib/format'
import { jobKey, jobPath, parseJobKey } from '../../lib/job-ref'
import { useUrlParams } from '../../lib/url-params'

import {
  useDeleteDead,
  useDeleteMatching,
  useDlq,
  useDlqStats,
  usePurge,
  useRetryDead,
  useRetryMatching,
} from './api/dlq'

import { useDlqRowNav } from './dlq-row-nav'

type Group = DlqStatsDto['groups'][number]
const groupKey = (g: Group) => [g.queue, g.task_type, g.priority, g.error_class].join('\u0000')

export function DlqPage() {
  const { get, update } = useUrlParams()
  const filters = {
    queue: get('queue'),
    task_type: get('type'),
    priority: get('priority'),
    error_class: get('class'),
    error: get('error'),
    older_than_days: get('older'),
    cursor: get('cursor'),
  }
  // The cursors of the pages before this one (Newer goes back through them).
  const [history, setHistory] = useState<string[]>([])
  const q = useDlq(filters)
  const stats = useDlqStats({
    queue: filters.queue,
    task_type: filters.task_type,
    priority: filters.priority,
  })
  const { can } = useAuth()
  const retry = useRetryDead()
  const del = useDeleteDead()
  const retryMatching = useRetryMatching()
  const purge = usePurge()
  const [selected, setSelected] = useState<Set<string>>(new Set())
  const [rate, setRate] = useState(20)
  const [days, setDays] = useState(7)
  const [notice, setNotice] = useState<string | null>(null)
  const deleteMatching = useDeleteMatching()
  /** Changes one filter: the list starts again from its first page. */
  const filtersToggle = useNarrowDisclosure('Filters', Object.values(filters).filter(Boolean).length)
  const rows = useDlqRowNav({ selected, onSelect: setSelected, onNotice: setNotice })
  const set = (k: string, v?: string) => {
    update({ [k]: v, cursor: undefined })
    setHistory([])
    setSelected(new Set())
  }
  const err = retry.error ?? del.error ?? retryMatching.error ?? purge.error ?? deleteMatching.error
  /** The exact count of the dead letters the filters select, from the server's groups (null: unknown). */
  const matchingCount =
    stats.data && !filters.error && !filters.older_than_days
      ? stats.data.groups
          .filter((g) => !filters.error_class || g.error_class === filters.error_class)
          .reduce((n, g) => n + g.count, 0)
      : null
  /** Applies a mutation to the selected dead letters, says how many, clears the selection. */
  const onSelected = async (m: typeof retry, done: string) => {
    const n = await m.mutateAsync([...selected].map(parseJobKey))
    setNotice(`${done} ${n} job(s).`)
    setSelected(new Set())
  }
  const groupColumns: Column<Group>[] = [
    { header: 'Queue', cell: (g) => <QueueLink queue={g.queue} /> },
    { header: 'Type', cell: (g) => g.task_type },
    { header: 'Priority', cell: (g) => g.priority },
    { header: 'Error class', className: 'error-text', cell: (g) => g.error_class },
    { header: 'Count', cell: (g) => num(g.count), sortValue: (g) => g.count },
    { header: 'Newest', cell: (g) => ago(g.newest), sortValue: (g) => g.newest },
    {
      header: 'Actions',
      hideHeader: true,
      cell: (g) => (
        <button
          type="button"
          className="link"
          onClick={() => {
            setHistory([])
            update({
              queue: g.queue,
              type: g.task_type,
              priority: g.priority,
              class: g.error_class,
              cursor: undefined,
            })
          }}
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
    { header: 'Queue', cell: (j) => <QueueLink queue={j.queue} /> },
    { header: 'Priority', cell: (j) => j.priority },
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
        {filtersToggle.button}
        <div className={`filters ${filtersToggle.className}`} id={filtersToggle.id}>
          <FilterInput label="Type" value={filters.task_type} onChange={(v) => set('type', v)} />
          <FilterInput label="Error class" value={filters.error_class} onChange={(v) => set('class', v)} />
          <FilterInput label="Error contains" value={filters.error} onChange={(v) => set('error', v)} />
          <FilterInput label="Queue" value={filters.queue} onChange={(v) => set('queue', v)} />
          <label>
            Priority
            <select
              value={filters.priority ?? ''}
              onChange={(e) => set('priority', e.target.value || undefined)}
            >
              <option value="">any</option>
              <option value="high">high</option>
              <option value="normal">normal</option>
              <option value="low">low</option>
            </select>
          </label>
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
        {rows.dialog}
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
            // The redrive filters by type, priority, error text, queue and age, not by class: with
            // a class filter it would retry more than the page shows.
            disabled={!can('write') || !q.data?.items.length || !!filters.error_class}
            title="Retry all matching"
            body={`Retry every dead letter matching the filters, at ${rate} per second (so the downstream is not flooded)?`}
            confirmLabel="Retry all"
            onConfirm={async () => {
              const r = await retryMatching.mutateAsync({
                task_type: filters.task_type,
                priority: filters.priority,
                error: filters.error,
                queue: filters.queue,
                rate_per_sec: rate,
              })
              setNotice(r.message)
            }}
          >
            Retry all matching
          </ConfirmButton>
          <span
            title={
              !filters.queue
                ? 'a bulk delete is per queue: filter by queue first'
                : filters.error_class || filters.priority || filters.older_than_days
                  ? 'deletes by queue, type and error text only: clear the class, priority and age filters'
                  : undefined
            }
          >
            <ConfirmButton
              danger
              // POST /jobs/bulk filters by queue, type and error text: not by class, priority or age.
              disabled={
                !can('admin') ||
                !filters.queue ||
                !!filters.error_class ||
                !!filters.priority ||
                !!filters.older_than_days ||
                !q.data?.items.length
              }
              title="Delete all matching"
              body={`Delete ${matchingCount === null ? 'every' : num(matchingCount)} dead letter(s) of queue ${filters.queue} matching the filters, at ${rate} per second, for good?`}
              confirmLabel={`Delete ${matchingCount === null ? 'all' : num(matchingCount)}`}
              onConfirm={async () => {
                const r = await deleteMatching.mutateAsync({
                  queue: filters.queue ?? '',
                  task_type: filters.task_type,
                  error_contains: filters.error,
                  rate_per_sec: rate,
                })
                setNotice(r.message)
              }}
            >
              Delete {matchingCount === null ? 'all' : num(matchingCount)} matching
            </ConfirmButton>
          </span>
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
            body={`${
              days === 0
                ? 'Delete every dead letter, in every queue'
                : `Delete every dead letter that failed more than ${days} day(s) ago`
            }${filters.priority ? ` of priority ${filters.priority}` : ''}?`}
            confirmLabel="Purge"
            onConfirm={async () => {
              const r = await purge.mutateAsync({ days, priority: filters.priority })
              setNotice(`Purged ${r.deleted} job(s).`)
            }}
          >
            Purge
          </ConfirmButton>
        </div>
      </Card>

      <QueryState query={stats} loading="Counting dead letters">
        {(d) =>
          d.groups.length > 0 && (
            <Card title={`Grouped by queue, type, priority and error class (${num(d.total)} in all)`}>
              <DataTable
                caption="Dead letters grouped by queue, type, priority and error class"
                rows={d.groups}
                columns={groupColumns}
                rowKey={groupKey}
                defaultSort={{ header: 'Count', dir: 'descending' }}
                rowNav={{
                  label: (g) =>
                    `${num(g.count)} dead letters: ${g.queue}, ${g.task_type}, ${g.priority}, ${g.error_class}`,
                  open: (g) =>
                    update({ queue: g.queue, type: g.task_type, priority: g.priority, class: g.error_class }),
                  openLabel: 'show only the dead letters of the group',
                }}
              />
            </Card>
          )
        }
      </QueryState>
      <QueryState
        query={q}
        loading="Loading dead letters"
        isEmpty={(d) => !d.items.length}
        empty={<>No dead letters{Object.values(filters).some(Boolean) ? ' match these filters' : ''}. </>}
      >
        {(d) => (
          <>
            <Card
              title={`Jobs${matchingCount === null ? '' : ` (${num(matchingCount)} matching)`}, newest first — page ${history.length + 1}`}
            >
              <DataTable
                caption="Dead letters, newest first"
                rows={d.items}
                columns={jobColumns}
                rowKey={jobKey}
                rowNav={rows.rowNav}
              />
              <Pager
                onPrev={
                  history.length
                    ? () => {
                        setHistory(history.slice(0, -1))
                        update({ cursor: history[history.length - 1] || undefined })
                        setSelected(new Set())
                      }
                    : undefined
                }
                onNext={
                  d.next_cursor
                    ? () => {
                        setHistory([...history, filters.cursor ?? ''])
                        update({ cursor: d.next_cursor ?? undefined })
                        setSelected(new Set())
                      }
                    : undefined
                }
              />
            </Card>
          </>
        )}
      </QueryState>
    </div>
  )
}
