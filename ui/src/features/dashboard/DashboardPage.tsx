/** Dashboard: counts by state, throughput and latency over 1/6/24 hours, queues, DLQ depth, live workers. */

import type { StatsDto } from '@dtq/app/schemas'
import { Link } from 'react-router'
import { QueryState } from '../../components/QueryState'
import { QueueTable } from '../../components/QueueTable'
import { Card } from '../../components/ui'
import { num } from '../../lib/format'
import { JOB_STATES as STATES } from '../../lib/states'
import { useStats } from './api/stats'
import { HistoryCharts } from './HistoryCharts'

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
      <HistoryCharts queues={s.queues.map((q) => q.queue)} />
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
