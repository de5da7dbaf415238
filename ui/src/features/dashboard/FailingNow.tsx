/**
 * "What is failing right now?" (issue 22, ADR 0032): the dead letters of the last 5, 15 or 60
 * minutes grouped by queue, task type and error class, with the newest message and links to the
 * grouped dead letters and the failed jobs; the failure rate overall and per queue. The window is
 * kept in the URL (`failing`).
 */
import type { FailuresDto } from '@dtq/app/schemas'
import { Link } from 'react-router'
import { type Column, DataTable } from '../../components/DataTable'
import { QueryState } from '../../components/QueryState'
import { QueueLink } from '../../components/QueueLink'
import { Card } from '../../components/ui'
import { ago, num } from '../../lib/format'
import { useUrlParams } from '../../lib/url-params'
import { FAILURE_WINDOWS, useFailures } from './api/failures'

type Group = FailuresDto['groups'][number]

const rate = (r: number | null) => (r === null ? '—' : `${(r * 100).toFixed(r > 0 && r < 0.01 ? 2 : 1)} %`)

export const dlqGroupPath = (g: { queue: string; task_type: string; error_class: string }) =>
  `/dlq?${new URLSearchParams({ queue: g.queue, type: g.task_type, class: g.error_class })}`

export function FailingNow() {
  const { get, update } = useUrlParams()
  const minutes = FAILURE_WINDOWS.find((m) => String(m) === get('failing')) ?? 15
  const q = useFailures(minutes)
  const controls = (
    <fieldset className="segmented" aria-label="failing within the last">
      {FAILURE_WINDOWS.map((m) => (
        <button
          key={m}
          type="button"
          aria-pressed={m === minutes}
          onClick={() => update({ failing: m === 15 ? undefined : String(m) })}
        >
          {m} min
        </button>
      ))}
    </fieldset>
  )
  return (
    <Card title="Failing now" actions={controls}>
      <QueryState query={q} loading="Loading recent failures">
        {(f) => <Failures f={f} />}
      </QueryState>
    </Card>
  )
}

function Failures({ f }: { f: FailuresDto }) {
  const columns: Column<Group>[] = [
    { header: 'Count', cell: (g) => <strong>{num(g.count)}</strong> },
    { header: 'Queue', cell: (g) => <QueueLink queue={g.queue} /> },
    { header: 'Task type', cell: (g) => g.task_type, className: 'mono' },
    { header: 'Error', cell: (g) => g.error_class, className: 'mono' },
    { header: 'Last seen', cell: (g) => ago(g.last_seen) },
    {
      header: 'Last message',
      cell: (g) => g.last_message ?? '—',
      className: 'error-text last-message',
    },
    {
      header: 'Open',
      hideHeader: true,
      cell: (g) => (
        <>
          <Link
            to={dlqGroupPath(g)}
            aria-label={`dead letters of ${g.task_type} ${g.error_class} in ${g.queue}`}
          >
            dead letters
          </Link>{' '}
          <Link
            to={`/jobs?${new URLSearchParams({ queue: g.queue, status: 'failed', type: g.task_type })}`}
            aria-label={`failed ${g.task_type} jobs in ${g.queue}`}
          >
            jobs
          </Link>
        </>
      ),
    },
  ]
  const failing = f.queues.filter((r) => r.failed > 0)
  return (
    <div className="stack">
      <p>
        Last {f.minutes} min: <strong>{num(f.total)}</strong> dead letters · failure rate{' '}
        <strong>{rate(f.failure_rate)}</strong> ({num(f.failed)} failed of {num(f.completed + f.failed)}{' '}
        finished)
        {failing.length > 0 && (
          <>
            {' '}
            · by queue:{' '}
            {failing.map((r, i) => (
              <span key={r.queue}>
                {i > 0 && ', '}
                <QueueLink queue={r.queue} /> {rate(r.failure_rate)}
              </span>
            ))}
          </>
        )}
        {f.truncated && <span className="muted"> (a queue had more than 2000: counts are lower bounds)</span>}
      </p>
      {f.groups.length ? (
        <DataTable
          rows={f.groups}
          columns={columns}
          rowKey={(g) => `${g.queue}\u0000${g.task_type}\u0000${g.error_class}`}
        />
      ) : (
        <p className="muted">Nothing dead-lettered in the last {f.minutes} minutes.</p>
      )}
    </div>
  )
}
