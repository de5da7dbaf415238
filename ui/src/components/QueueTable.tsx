/** Queues (a partitioned one as one row, with its partition count) with depth per priority, pending, delayed, lag, oldest waiting job, paused; pause and
 * resume (admins). */
import type { QueueStatsDto } from '@dtq/app/schemas'
import { Link, useNavigate } from 'react-router'
import { useAuth } from '../lib/auth'
import { duration, num } from '../lib/format'
import { useDeleteQueue, useEmptyQueue, usePauseQueue } from '../lib/queue-actions'
import { useConfirm } from './confirm'
import { type Column, DataTable } from './DataTable'
import { QueueLink, QueueStateBadge } from './QueueLink'
import { ConfirmButton, ErrorBox } from './ui'

const PRIORITIES = ['high', 'normal', 'low'] as const
export const sumStreams = (q: QueueStatsDto, field: 'lag' | 'pending'): number | null => {
  const v = PRIORITIES.map((p) => q.streams[p][field])
  return v.some((x) => x === null) ? null : v.reduce<number>((a, x) => a + (x ?? 0), 0)
}
/** A count the server could not know (a stream's lag: null) shows as "—". */
const count = (n: number | null) =>
  n === null ? (
    <span className="muted" title="unknown: Redis did not report it and it was too costly to count">
      —
    </span>
  ) : (
    num(n)
  )

export function QueueTable({ queues }: { queues: QueueStatsDto[] }) {
  const pause = usePauseQueue()
  const { can } = useAuth()
  const navigate = useNavigate()
  const { ask, dialog } = useConfirm()
  const columns: Column<QueueStatsDto>[] = [
    {
      header: 'Queue',
      sortValue: (q) => q.queue,
      cell: (q) => (
        <>
          <strong>
            <QueueLink queue={q.queue} />
          </strong>{' '}
          {q.partitions === undefined && (
            <Link
              to={`/queues/${encodeURIComponent(q.queue)}/limits`}
              aria-label={`Limits of queue ${q.queue}`}
            >
              limits
            </Link>
          )}
          {q.partitions !== undefined && (
            <span
              className="muted"
              title={`spread over ${q.partitions} partitions (Redis Cluster slots); the row sums them`}
            >
              {' '}
              × {q.partitions} partitions
            </span>
          )}
        </>
      ),
    },
    {
      header: 'Waiting (h / n / l)',
      headerTitle: 'waiting per priority: high / normal / low',
      cell: ({ streams: s }) => (
        <>
          {count(s.high.lag)} / {count(s.normal.lag)} / {count(s.low.lag)}
        </>
      ),
    },
    { header: 'Running', cell: (q) => count(sumStreams(q, 'pending')) },
    { header: 'Delayed', cell: (q) => num(q.delayed) },
    { header: 'Lag', cell: (q) => count(sumStreams(q, 'lag')) },
    {
      header: 'Oldest waiting',
      cell: (q) => (q.oldest_waiting_ms === null ? '—' : duration(q.oldest_waiting_ms)),
    },
    { header: 'DLQ', cell: (q) => num(q.dlq), sortValue: (q) => q.dlq },
    {
      header: 'Workers',
      headerTitle: 'live workers consuming the queue',
      cell: (q) => (q.live_workers === undefined ? '—' : num(q.live_workers)),
    },
    { header: 'State', cell: (q) => <QueueStateBadge q={q} /> },
    {
      header: 'Actions',
      hideHeader: true,
      cell: (q) => (
        <>
          <button
            type="button"
            disabled={!can('admin')}
            onClick={() => pause.mutate({ queue: q.queue, pause: !q.paused })}
            aria-label={`${q.paused ? 'Resume' : 'Pause'} queue ${q.queue}`}
          >
            {q.paused ? 'Resume' : 'Pause'}
          </button>
          <EmptyQueueButton queue={q} disabled={!can('admin')} />
          <DeleteQueueButton queue={q} disabled={!can('admin')} />
        </>
      ),
    },
  ]
  return (
    <>
      {pause.error && <ErrorBox error={pause.error} />}
      {dialog}
      <DataTable
        caption="Queues"
        rows={queues}
        columns={columns}
        rowKey={(q) => q.queue}
        defaultSort={{ header: 'Queue', dir: 'ascending' }}
        rowNav={{
          label: (q) => `queue ${q.queue}, ${q.paused ? 'paused' : q.no_workers ? 'no workers' : 'running'}`,
          open: (q) => navigate(`/queues/${encodeURIComponent(q.queue)}`),
          openLabel: "open the queue's jobs",
          keys: can('admin')
            ? [
                {
                  key: 'p',
                  label: 'pause or resume the queue (confirmed)',
                  run: (q) =>
                    ask({
                      title: `${q.paused ? 'Resume' : 'Pause'} queue ${q.queue}`,
                      body: q.paused
                        ? 'Workers take jobs from it again.'
                        : 'Workers take no jobs from it; running jobs go on.',
                      confirmLabel: q.paused ? 'Resume' : 'Pause',
                      onConfirm: () =>
                        pause.mutateAsync({ queue: q.queue, pause: !q.paused }).catch(() => {}),
                    }),
                },
              ]
            : [],
        }}
      />
    </>
  )
}

/** Empties a queue's jobs waiting to run, one bounded call per confirmation (ADR 0020). */
function EmptyQueueButton({ queue: q, disabled }: { queue: QueueStatsDto; disabled: boolean }) {
  const empty = useEmptyQueue()
  // Its queued jobs (entries not delivered) when the lag is unknown.
  const waiting = (sumStreams(q, 'lag') ?? q.counts.queued ?? 0) + q.delayed
  return (
    <>
      <ConfirmButton
        danger
        disabled={disabled}
        title={`Empty queue ${q.queue}`}
        body={`Its ${num(waiting)} jobs waiting to run (queued, scheduled, retrying) are deleted, up to 1000 per confirmation; running and finished jobs stay. Flow members are cancelled instead.`}
        confirmLabel="Empty queue"
        onConfirm={() => empty.mutateAsync(q.queue).catch(() => {})}
      >
        Empty
      </ConfirmButton>
      {empty.data && (
        <span className="muted" role="status">
          {' '}
          removed {num(empty.data.removed)}
          {empty.data.more ? ', more left' : ''}
        </span>
      )}
      {empty.error && <ErrorBox error={empty.error} />}
    </>
  )
}

/** Deletes a queue and all its keys; with jobs running, only when forced (ADR 0020). */
function DeleteQueueButton({ queue: q, disabled }: { queue: QueueStatsDto; disabled: boolean }) {
  const del = useDeleteQueue()
  const running = sumStreams(q, 'pending') ?? 0
  return (
    <>
      <ConfirmButton
        danger
        disabled={disabled}
        title={`Delete queue ${q.queue}`}
        body={
          running > 0
            ? `${num(running)} jobs are running in it: their workers' results will be rejected. Every job, log, DLQ entry, stat and schedule of the queue is deleted for good.`
            : 'Every job, log, DLQ entry, stat and schedule of the queue is deleted for good.'
        }
        confirmLabel="Delete queue"
        onConfirm={() => del.mutateAsync({ queue: q.queue, force: running > 0 }).catch(() => {})}
      >
        Delete
      </ConfirmButton>
      {del.error && <ErrorBox error={del.error} />}
    </>
  )
}
