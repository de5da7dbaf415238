/** Dead letters grouped by error and type, with filters; retry one, selected, or all matching
 * at a chosen rate; delete; purge older than N days. Every destructive action is confirmed. */
import type { DlqJobDto } from '@dtq/app/schemas'
import { useMemo, useState } from 'react'
import { Link, useSearchParams } from 'react-router'
import { Card, ConfirmButton, Empty, ErrorBox, FilterInput, Loading } from '../../components/ui'
import { useAuth } from '../../lib/auth'
import { ago, num } from '../../lib/format'
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
  const [params, setParams] = useSearchParams()
  const filters = {
    queue: params.get('queue') ?? undefined,
    task_type: params.get('type') ?? undefined,
    error: params.get('error') ?? undefined,
    older_than_days: params.get('older') ?? undefined,
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
    const next = new URLSearchParams(params)
    if (v) next.set(k, v)
    else next.delete(k)
    setParams(next)
    setSelected(new Set())
  }
  const err = retry.error ?? del.error ?? retryMatching.error ?? purge.error

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
            onConfirm={async () => {
              const n = await retry.mutateAsync([...selected])
              setNotice(`Retried ${n} job(s).`)
              setSelected(new Set())
            }}
          >
            Retry selected
          </ConfirmButton>
          <ConfirmButton
            danger
            disabled={!selected.size || !can('admin')}
            title="Delete selected"
            body={`Delete ${selected.size} dead letter(s) for good?`}
            confirmLabel="Delete"
            onConfirm={async () => {
              const n = await del.mutateAsync([...selected])
              setNotice(`Deleted ${n} job(s).`)
              setSelected(new Set())
            }}
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

      {q.isPending ? (
        <Loading what="Loading dead letters" />
      ) : q.error ? (
        <ErrorBox error={q.error} retry={() => q.refetch()} />
      ) : !q.data.items.length ? (
        <Empty>No dead letters{Object.values(filters).some(Boolean) ? ' match these filters' : ''}. </Empty>
      ) : (
        <>
          <Card title={`Grouped by error (${num(q.data.items.length)}${q.data.next_cursor ? '+' : ''})`}>
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th>Type</th>
                    <th>Error</th>
                    <th>Count</th>
                    <th>Newest</th>
                    <th>
                      <span className="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {groups.map((g) => (
                    <tr key={g.key}>
                      <td>{g.task_type}</td>
                      <td className="error-text">{g.error}</td>
                      <td>{num(g.count)}</td>
                      <td>{ago(g.newest)}</td>
                      <td>
                        <button
                          type="button"
                          className="link"
                          onClick={() => {
                            const next = new URLSearchParams(params)
                            next.set('type', g.task_type)
                            next.set('error', g.error.slice(0, 200))
                            setParams(next)
                          }}
                        >
                          Show only these
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </Card>
          <Card title="Jobs">
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th>
                      <input
                        type="checkbox"
                        aria-label="select all dead letters"
                        checked={q.data.items.every((j) => selected.has(j.id))}
                        onChange={(e) =>
                          setSelected(e.target.checked ? new Set(q.data.items.map((j) => j.id)) : new Set())
                        }
                      />
                    </th>
                    <th>Job</th>
                    <th>Type</th>
                    <th>Queue</th>
                    <th>Attempts</th>
                    <th>Failed</th>
                    <th>Error</th>
                    <th>
                      <span className="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {q.data.items.map((j) => (
                    <tr key={`${j.queue}/${j.id}`}>
                      <td>
                        <input
                          type="checkbox"
                          aria-label={`select dead letter ${j.id}`}
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
                      <td>{j.attempts}</td>
                      <td>{ago(j.failed_at)}</td>
                      <td className="error-text">{j.error}</td>
                      <td>
                        <button
                          type="button"
                          disabled={!can('write')}
                          onClick={() => retry.mutate([j.id])}
                          aria-label={`retry ${j.id}`}
                        >
                          Retry
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </Card>
        </>
      )}
    </div>
  )
}
