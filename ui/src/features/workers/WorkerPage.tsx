/**
 * One worker (`/workers/:id`, GET /workers/{id}): what it is and its state, its commands (pause,
 * resume, drain, concurrency: each confirmed), the jobs it runs now and for how long, its
 * outcomes per minute, its latest failures. As its last heartbeat (every 2 s) wrote them.
 */
import type { WorkerDetailDto } from '@dtq/app/schemas'
import { useEffect, useState } from 'react'
import { Link, useNavigate, useParams } from 'react-router'
import { type Column, DataTable } from '../../components/DataTable'
import { QueryState } from '../../components/QueryState'
import { Card, ConfirmButton, Empty, ErrorBox, StateBadge } from '../../components/ui'
import { useAuth } from '../../lib/auth'
import { ago, duration, num, time } from '../../lib/format'
import { jobKey, jobPath } from '../../lib/job-ref'
import { useWorker, useWorkerCommand } from './api/workers'
import { ConcurrencyButton } from './WorkersPage'

type Running = WorkerDetailDto['running'][number]
type Failure = WorkerDetailDto['recent_failures'][number]
type Minute = WorkerDetailDto['rates'][number]

/** The time now, every second (how long a job has run). */
function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(Date.now())
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs)
    return () => clearInterval(t)
  }, [everyMs])
  return now
}

/**
 * Outcomes per minute over the last `minutes` minutes, the current one included: the counts of
 * those minute buckets over the time they cover (at least a minute; less than `minutes` for a
 * worker that started since).
 */
export function perMinute(rates: Minute[], now: number, minutes: number, startedAt: number) {
  const from = Math.floor(now / 60_000) * 60_000 - (minutes - 1) * 60_000
  const inWindow = rates.filter((m) => m.minute >= from)
  const covered = Math.min(minutes, Math.max(1, (now - Math.max(startedAt, now - minutes * 60_000)) / 60_000))
  const sum = (k: 'completed' | 'failed') => inWindow.reduce((a, m) => a + m[k], 0)
  return { completed: sum('completed') / covered, failed: sum('failed') / covered }
}

function Commands({ worker: w }: { worker: WorkerDetailDto }) {
  const cmd = useWorkerCommand()
  const { can } = useAuth()
  const admin = can('admin')
  const pausing = w.state !== 'paused'
  return (
    <>
      <ConfirmButton
        disabled={!admin || (pausing && w.state !== 'running')}
        title={pausing ? `Pause worker ${w.id}` : `Resume worker ${w.id}`}
        body={
          pausing
            ? 'The worker takes no new jobs; the ones it runs go on. Resume it to take jobs again.'
            : 'The worker takes jobs again.'
        }
        confirmLabel={pausing ? 'Pause' : 'Resume'}
        onConfirm={() => cmd.mutateAsync({ id: w.id, command: pausing ? 'pause' : 'resume' }).catch(() => {})}
      >
        {pausing ? 'Pause' : 'Resume'}
      </ConfirmButton>
      <ConcurrencyButton worker={w} disabled={!admin} />
      <ConfirmButton
        danger
        disabled={!admin || w.state === 'stopping' || w.state === 'draining'}
        title={`Drain worker ${w.id}`}
        body="The worker takes no new jobs, finishes what it runs, then stops."
        confirmLabel="Drain"
        onConfirm={() => cmd.mutateAsync({ id: w.id, command: 'drain' }).catch(() => {})}
      >
        Drain
      </ConfirmButton>
      {cmd.error && <ErrorBox error={cmd.error} />}
    </>
  )
}

function WorkerView({ worker: w }: { worker: WorkerDetailDto }) {
  const now = useNow()
  const navigate = useNavigate()
  const last5 = perMinute(w.rates, now, 5, w.started_at)
  const last15 = perMinute(w.rates, now, 15, w.started_at)
  const running: Column<Running>[] = [
    { header: 'Job', className: 'mono', cell: (j) => <Link to={jobPath(j)}>{j.id}</Link> },
    { header: 'Type', cell: (j) => j.task_type, sortValue: (j) => j.task_type },
    { header: 'Queue', cell: (j) => j.queue, sortValue: (j) => j.queue },
    { header: 'Attempt', cell: (j) => j.attempt },
    {
      header: 'Running for',
      cellTitle: (j) => `since ${time(j.started_at)}`,
      cell: (j) => duration(Math.max(0, now - j.started_at)),
      sortValue: (j) => j.started_at,
    },
  ]
  const failures: Column<Failure>[] = [
    { header: 'When', cellTitle: (f) => time(f.at), cell: (f) => ago(f.at, now) },
    { header: 'Job', className: 'mono', cell: (f) => <Link to={jobPath(f)}>{f.id}</Link> },
    { header: 'Type', cell: (f) => f.task_type },
    { header: 'Outcome', cell: (f) => <StateBadge state={f.outcome} /> },
    { header: 'Error class', className: 'error-text', cell: (f) => f.error_class },
    { header: 'Error', className: 'error-text', cell: (f) => f.error },
  ]
  const minutes: Column<Minute>[] = [
    { header: 'Minute', cell: (m) => new Date(m.minute).toLocaleTimeString([], { timeStyle: 'short' }) },
    { header: 'Completed', cell: (m) => num(m.completed) },
    { header: 'Failed', cell: (m) => num(m.failed) },
  ]
  const fmt = (n: number) => (n >= 10 ? num(Math.round(n)) : n.toFixed(1))
  return (
    <div className="stack">
      <Card
        title={
          <>
            Worker <span className="mono">{w.id}</span> <StateBadge state={w.state} />
          </>
        }
        actions={<Commands worker={w} />}
      >
        <dl className="summary-grid">
          {(
            [
              ['Host', w.host],
              ['PID', w.pid],
              ['Queues', w.queues.join(', ')],
              ['Running', `${w.active} / ${w.concurrency}`],
              ['Processed', num(w.processed)],
              ['Failed', num(w.failed)],
              ['Completed / min (5 min)', fmt(last5.completed)],
              ['Failed / min (5 min)', fmt(last5.failed)],
              ['Completed / min (15 min)', fmt(last15.completed)],
              ['Failed / min (15 min)', fmt(last15.failed)],
              ['Started', ago(w.started_at, now)],
              ['Heartbeat', ago(w.heartbeat_at, now)],
            ] as const
          ).map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{v}</dd>
            </div>
          ))}
        </dl>
      </Card>
      <Card title={`Running now (${num(w.active)})`}>
        {w.running.length ? (
          <>
            <DataTable
              caption={`Jobs worker ${w.id} runs now`}
              rows={w.running}
              columns={running}
              rowKey={jobKey}
              defaultSort={{ header: 'Running for', dir: 'ascending' }}
              rowNav={{
                label: (j) =>
                  `job ${j.id} in ${j.queue}, ${j.task_type}, running for ${duration(now - j.started_at)}`,
                open: (j) => navigate(jobPath(j)),
                openLabel: 'open the job',
              }}
            />
            {w.active > w.running.length && (
              <p className="muted">The {num(w.running.length)} longest-running are listed.</p>
            )}
          </>
        ) : (
          <Empty>No job running on this worker now.</Empty>
        )}
      </Card>
      <div className="grid2">
        <Card title="Latest failures">
          {w.recent_failures.length ? (
            <DataTable
              caption={`Latest failed attempts on worker ${w.id}, newest first`}
              rows={w.recent_failures}
              columns={failures}
              rowKey={(f) => `${f.at}-${jobKey(f)}-${f.attempt}`}
              rowNav={{
                label: (f) => `job ${f.id} failed ${ago(f.at, now)}: ${f.error}`,
                open: (f) => navigate(jobPath(f)),
                openLabel: 'open the job',
              }}
            />
          ) : (
            <Empty>No failure since the worker started.</Empty>
          )}
        </Card>
        <Card title="Outcomes per minute (last 15 min)">
          {w.rates.length ? (
            <DataTable
              caption={`Jobs completed and failed per minute on worker ${w.id}`}
              rows={[...w.rates].reverse()}
              columns={minutes}
              rowKey={(m) => String(m.minute)}
            />
          ) : (
            <Empty>No job finished in the last 15 minutes.</Empty>
          )}
        </Card>
      </div>
    </div>
  )
}

export function WorkerPage() {
  const { id = '' } = useParams()
  const q = useWorker(id)
  return (
    <QueryState
      query={q}
      loading="Loading the worker"
      notFound={
        <Card title="Worker not found">
          <p>
            No live worker is called <code>{id}</code>: it may have stopped (a worker is forgotten 5
            heartbeats after its last). <Link to="/workers">All workers</Link>
          </p>
        </Card>
      }
    >
      {(w) => <WorkerView worker={w} />}
    </QueryState>
  )
}
