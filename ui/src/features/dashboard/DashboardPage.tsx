/**
 * Dashboard: counts by state, queues without workers, what is failing now, throughput, failure rate
 * and latency over 1/6/24 hours, queues, DLQ depth, live workers.
 */

import type { StatsDto } from '@dtq/app/schemas'
import { Link } from 'react-router'
import { HistoryCharts } from '../../components/HistoryCharts'
import { QueryState } from '../../components/QueryState'
import { QueueLink } from '../../components/QueueLink'
import { QueueTable } from '../../components/QueueTable'
import { Card } from '../../components/ui'
import { num } from '../../lib/format'
import { taskTypesOf } from '../../lib/history'
import { JOB_STATES as STATES } from '../../lib/states'
import { useStats } from './api/stats'
import { FailingNow } from './FailingNow'

export function DashboardPage() {
  const q = useStats()
  return (
    <QueryState query={q} loading="Loading the dashboard">
      {(s) => <Dashboard s={s} />}
    </QueryState>
  )
}

function Dashboard({ s }: { s: StatsDto }) {
  return (
    <div className="stack">
      <section className="tiles" aria-label="jobs by state">
        {STATES.map((st) => (
          <Link key={st} to={`/jobs?status=${st}`} className={`tile state-${st}`}>
            <span className="tile-n">{num(s.totals[st] ?? 0)}</span>
            <span className="tile-l">{st}</span>
          </Link>
        ))}
        <Link to="/dlq" className="tile state-failed">
          <span className="tile-n">{num(s.totals.dlq ?? 0)}</span>
          <span className="tile-l">dead letters</span>
        </Link>
        <Link to="/workers" className="tile">
          <span className="tile-n">{num(s.workers)}</span>
          <span className="tile-l">live workers</span>
        </Link>
      </section>
      <NoWorkers s={s} />
      <FailingNow />
      <HistoryCharts queues={s.queues.map((q) => q.queue)} types={taskTypesOf(s.queues)} />
      <Card title="Queues">
        {s.queues.length ? (
          <QueueTable queues={s.queues} />
        ) : (
          <p className="muted">
            No queues yet. <Link to="/jobs/new">Create a job</Link>.
          </p>
        )}
      </Card>
    </div>
  )
}

/** Queues with work and no live consumer (ADR 0032): said first, not left to a badge in the table. */
function NoWorkers({ s }: { s: StatsDto }) {
  const stuck = s.queues.filter((q) => q.no_workers)
  if (!stuck.length) return null
  return (
    <p className="no-workers-note" role="status">
      <span className="badge no-workers">no workers</span> {stuck.length === 1 ? 'Queue' : 'Queues'}{' '}
      {stuck.map((q, i) => (
        <span key={q.queue}>
          {i > 0 && ', '}
          <QueueLink queue={q.queue} /> ({num(q.counts.queued ?? 0)} waiting)
        </span>
      ))}{' '}
      {stuck.length === 1 ? 'has' : 'have'} work and no live worker consuming{' '}
      {stuck.length === 1 ? 'it' : 'them'}.
    </p>
  )
}
