/**
 * A queue's page (issue 22, point 3): its state (running, paused, "no workers" -- ADR 0032) with
 * pause/resume, its counts and latency, its jobs by state in tabs, throughput / failure rate /
 * latency over time, its dead letters grouped by error (links to the DLQ page filtered), and the
 * live workers consuming it. First render: the queues read, a page of 20 jobs, the charts' one
 * read, the DLQ stats walk of this queue, the workers list.
 */
import type { DlqStatsDto, JobDto, QueueStatsDto, WorkerDto } from '@dtq/app/schemas'
import { Link, useParams } from 'react-router'
import { type Column, DataTable } from '../../components/DataTable'
import { HistoryCharts } from '../../components/HistoryCharts'
import { QueryState } from '../../components/QueryState'
import { QueueStateBadge } from '../../components/QueueLink'
import { sumStreams } from '../../components/QueueTable'
import { Card, ConfirmButton, ErrorBox, StateBadge } from '../../components/ui'
import { useAuth } from '../../lib/auth'
import { ago, duration, num } from '../../lib/format'
import { taskTypesOf, useHistory } from '../../lib/history'
import { jobPath } from '../../lib/job-ref'
import { useCreatedIndex, usePauseQueue } from '../../lib/queue-actions'
import { useQueues } from '../../lib/queues'
import { JOB_STATES } from '../../lib/states'
import { useUrlParams } from '../../lib/url-params'
import { useLiveWorkers, useQueueDeadLetters, useQueueJobs } from './api/queue-page'

type Group = DlqStatsDto['groups'][number]

/** The jobs tab shown (in the URL: `state`, default queued). */
function useTabState(): string {
  const { get } = useUrlParams()
  return (JOB_STATES as readonly string[]).includes(get('state') ?? '') ? get('state')! : 'queued'
}

export function QueuePage() {
  const name = useParams().queue ?? ''
  const q = useQueues()
  // The first rows are asked for beside the queues' stats, not after them (same cache entry).
  useQueueJobs(name, useTabState())
  return (
    <QueryState query={q} loading={`Loading queue ${name}`}>
      {(d) => {
        const row = d.items.find((r) => r.queue === name)
        return row ? (
          <Queue q={row} />
        ) : (
          <Card title={`Queue ${name}`}>
            <p className="muted">
              No queue named {name}: it appears with its first job (and leaves once it has held nothing for a
              day). <Link to="/queues">All queues</Link>
            </p>
          </Card>
        )
      }}
    </QueryState>
  )
}

const enc = encodeURIComponent
const work = (q: QueueStatsDto) => {
  const n = (q.counts.queued ?? 0) + (q.counts.active ?? 0)
  return n === 1 ? '1 job is' : `${num(n)} jobs are`
}

function Queue({ q }: { q: QueueStatsDto }) {
  return (
    <div className="stack">
      <Card title={`Queue ${q.queue}`} actions={<QueueActions q={q} />}>
        {q.no_workers && (
          <p className="no-workers-note" role="status">
            {work(q)} waiting or running and no live worker consumes this queue: start one with{' '}
            <code>dtq worker</code> and <code>WORKER_QUEUES={q.queue}</code>.
          </p>
        )}
        <Facts q={q} />
      </Card>
      <JobTabs q={q} />
      <HistoryCharts queue={q.queue} types={taskTypesOf([q])} />
      <DeadLetters q={q} />
      <Consumers q={q} />
    </div>
  )
}

function QueueActions({ q }: { q: QueueStatsDto }) {
  const pause = usePauseQueue()
  const { can } = useAuth()
  const verb = q.paused ? 'Resume' : 'Pause'
  return (
    <div className="queue-head">
      <QueueStateBadge q={q} />
      <ConfirmButton
        disabled={!can('admin')}
        title={`${verb} queue ${q.queue}`}
        body={
          q.paused
            ? 'Workers take its jobs again.'
            : 'Workers take no new jobs from it; running jobs finish. Jobs can still be added.'
        }
        confirmLabel={`${verb} queue`}
        onConfirm={() => pause.mutateAsync({ queue: q.queue, pause: !q.paused }).catch(() => {})}
      >
        {verb}
      </ConfirmButton>
      {q.partitions === undefined && <Link to={`/queues/${enc(q.queue)}/limits`}>Limits</Link>}
      <Link to={`/jobs?queue=${enc(q.queue)}`}>Jobs</Link>
      <Link to={`/dlq?queue=${enc(q.queue)}`}>Dead letters</Link>
      <CreatedIndexSwitch q={q} />
      {pause.error && <ErrorBox error={pause.error} />}
    </div>
  )
}

/** The created-time index (ADR 0035): its state, and for admins the switch; on, a link to the jobs by created time. */
function CreatedIndexSwitch({ q }: { q: QueueStatsDto }) {
  const change = useCreatedIndex()
  const { can } = useAuth()
  const state = q.created_index ?? 'off'
  const on = state !== 'off'
  return (
    <span className="created-index">
      <span className="muted">Created index: {state}</span>{' '}
      {state === 'on' && <Link to={`/jobs?queue=${enc(q.queue)}&sort=created`}>Jobs by created time</Link>}{' '}
      <ConfirmButton
        disabled={!can('admin')}
        title={`${on ? 'Turn off' : 'Turn on'} the created-time index of ${q.queue}`}
        body={
          on
            ? 'The index is deleted; the jobs list can no longer sort this queue by created time.'
            : 'Index its jobs by created time (the jobs list can then sort by it)? It costs about 1 µs of Redis CPU and 100 B of memory per job while on; existing jobs are indexed now, in pages.'
        }
        confirmLabel={on ? 'Turn off' : 'Turn on'}
        onConfirm={() => change.mutateAsync({ queue: q.queue, on: !on }).catch(() => {})}
      >
        {on ? 'Turn off created index' : 'Turn on created index'}
      </ConfirmButton>
      {change.error && <ErrorBox error={change.error} />}
    </span>
  )
}

/** Counts and latency: oldest waiting now, and the wait percentiles of the last minute measured. */
function Facts({ q }: { q: QueueStatsDto }) {
  const h = useHistory('1h', q.queue)
  const last = [...(h.data?.points ?? [])].reverse().find((p) => p.wait && p.wait.count > 0)
  const lag = sumStreams(q, 'lag')
  const facts: Array<[string, string, string?]> = [
    ['Waiting', num(q.counts.queued ?? 0)],
    ['Running', num(q.counts.active ?? 0)],
    ['Delayed', num(q.delayed)],
    ['Dead letters', num(q.dlq)],
    ['Live workers', q.live_workers === undefined ? '—' : num(q.live_workers)],
    ['Lag', lag === null ? '—' : num(lag)],
    ['Oldest waiting', q.oldest_waiting_ms === null ? '—' : duration(q.oldest_waiting_ms)],
    [
      'Wait p50 / p95 / p99',
      last?.wait
        ? `${duration(last.wait.p50)} / ${duration(last.wait.p95)} / ${duration(last.wait.p99)}`
        : '—',
      last
        ? `the minute from ${new Date(last.at).toLocaleTimeString()} (${last.wait?.count} starts)`
        : 'none measured in the last hour',
    ],
  ]
  return (
    <dl className="queue-facts">
      {facts.map(([k, v, title]) => (
        <div key={k} title={title}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  )
}

/** Jobs by state: a tab per state with its count (the queue's stats), a page of the newest. */
function JobTabs({ q }: { q: QueueStatsDto }) {
  const { update } = useUrlParams()
  const state = useTabState()
  const jobs = useQueueJobs(q.queue, state)
  const columns: Column<JobDto>[] = [
    { header: 'Job', className: 'mono', cell: (j) => <Link to={jobPath(j)}>{j.id}</Link> },
    { header: 'Type', cell: (j) => j.task_type },
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
  const count = q.counts[state] ?? 0
  return (
    <Card title="Jobs">
      <div className="tabs" role="tablist" aria-label="jobs by state">
        {JOB_STATES.map((s) => (
          <button
            key={s}
            type="button"
            role="tab"
            id={`tab-${s}`}
            aria-selected={s === state}
            aria-controls="queue-jobs"
            onClick={() => update({ state: s === 'queued' ? undefined : s })}
          >
            {s}
            <span className="tab-n">{num(q.counts[s] ?? 0)}</span>
          </button>
        ))}
      </div>
      <div role="tabpanel" id="queue-jobs" aria-labelledby={`tab-${state}`}>
        <QueryState
          query={jobs}
          loading={`Loading ${state} jobs`}
          isEmpty={(d) => !d.items.length}
          empty={`No ${state} jobs in ${q.queue}.`}
        >
          {(d) => (
            <>
              <DataTable rows={d.items} columns={columns} rowKey={(j) => j.id} />
              <p className="muted">
                {count > d.items.length || d.next_cursor
                  ? `The newest ${num(d.items.length)} of ${num(count)}. `
                  : ''}
                <Link to={`/jobs?${new URLSearchParams({ queue: q.queue, status: state })}`}>
                  Open in the jobs list
                </Link>
              </p>
            </>
          )}
        </QueryState>
      </div>
    </Card>
  )
}

/** Dead letters grouped by type, priority and error class: exact over the queue's DLQ (GET /dlq/stats). */
function DeadLetters({ q }: { q: QueueStatsDto }) {
  const stats = useQueueDeadLetters(q.queue)
  const columns: Column<Group>[] = [
    { header: 'Count', cell: (g) => <strong>{num(g.count)}</strong> },
    { header: 'Task type', className: 'mono', cell: (g) => g.task_type },
    { header: 'Error', className: 'mono', cell: (g) => g.error_class },
    { header: 'Priority', cell: (g) => g.priority },
    { header: 'Newest', cell: (g) => ago(g.newest) },
    {
      header: 'Open',
      hideHeader: true,
      cell: (g) => (
        <Link
          to={`/dlq?${new URLSearchParams({ queue: g.queue, type: g.task_type, class: g.error_class, priority: g.priority })}`}
          aria-label={`show dead letters of ${g.task_type} ${g.error_class} (${g.priority})`}
        >
          show
        </Link>
      ),
    },
  ]
  return (
    <Card title={`Dead letters by error (${num(q.dlq)})`}>
      <QueryState
        query={stats}
        loading="Counting dead letters"
        isEmpty={(d) => !d.groups.length}
        empty="No dead letters in this queue."
      >
        {(d) => (
          <DataTable
            rows={d.groups}
            columns={columns}
            rowKey={(g) => [g.task_type, g.priority, g.error_class].join('\u0000')}
          />
        )}
      </QueryState>
    </Card>
  )
}

/** The live workers consuming the queue (a partition counts for its queue). */
function Consumers({ q }: { q: QueueStatsDto }) {
  const workers = useLiveWorkers()
  const consumes = (w: WorkerDto) => w.queues.some((name) => name.split('~')[0] === q.queue)
  const columns: Column<WorkerDto>[] = [
    { header: 'Worker', className: 'mono', cell: (w) => w.id },
    { header: 'Host', cell: (w) => `${w.host} (pid ${w.pid})` },
    { header: 'State', cell: (w) => <StateBadge state={w.state} /> },
    { header: 'Running', cell: (w) => `${num(w.active)} / ${num(w.concurrency)}` },
    { header: 'Processed', cell: (w) => num(w.processed) },
    { header: 'Failed', cell: (w) => num(w.failed) },
    { header: 'Heartbeat', cell: (w) => ago(w.heartbeat_at) },
  ]
  return (
    <Card title="Consumers">
      <QueryState
        query={workers}
        loading="Loading workers"
        isEmpty={(d) => !d.items.some(consumes)}
        empty={`No live worker consumes ${q.queue}.`}
      >
        {(d) => <DataTable rows={d.items.filter(consumes)} columns={columns} rowKey={(w) => w.id} />}
      </QueryState>
    </Card>
  )
}
