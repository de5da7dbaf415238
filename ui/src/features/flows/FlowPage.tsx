/** One flow (ADR 0019): its nodes as a graph with their jobs' live states, each linking to its job. */
import type { FlowDto } from '@dtq/app/schemas'
import { Link, useParams } from 'react-router'
import { QueryState } from '../../components/QueryState'
import { Card, StateBadge } from '../../components/ui'
import { ago, time } from '../../lib/format'
import { jobPath } from '../../lib/job-ref'
import { useFlow } from './api/get-flow'
import { edgePath, layoutFlow, NODE_H, NODE_W } from './layout'

export function FlowPage() {
  const { id = '' } = useParams()
  const q = useFlow(id)
  return (
    <QueryState
      query={q}
      loading="Loading flow"
      notFound={
        <Card title="Flow not found">
          <p>
            No flow <code>{id}</code>. <Link to="/jobs">Back to jobs</Link>
          </p>
        </Card>
      }
    >
      {(flow) => <FlowView flow={flow} />}
    </QueryState>
  )
}

function FlowView({ flow }: { flow: FlowDto }) {
  const { nodes, width, height } = layoutFlow(flow)
  const counts = Object.entries(flow.counts)
  return (
    <div className="stack">
      <Card
        title={
          <>
            Flow <span className="mono">{flow.id}</span>{' '}
            {flow.state === 'creating' && <StateBadge state="creating" />}
          </>
        }
      >
        <dl className="facts">
          <dt>Created</dt>
          <dd title={time(flow.created_at)}>{ago(flow.created_at)}</dd>
          <dt>Nodes</dt>
          <dd>
            {flow.nodes.length} ·{' '}
            {counts.map(([state, n]) => (
              <span key={state}>
                <StateBadge state={state} /> {n}{' '}
              </span>
            ))}
          </dd>
          {flow.idempotency_key && (
            <>
              <dt>Idempotency key</dt>
              <dd className="mono">{flow.idempotency_key}</dd>
            </>
          )}
        </dl>
      </Card>
      <Card title="Graph">
        <nav className="flow-graph" style={{ width, height }} aria-label="flow nodes">
          <svg width={width} height={height} aria-hidden="true">
            {flow.edges.map((e) => {
              const a = nodes.get(e.from)
              const b = nodes.get(e.to)
              if (!a || !b) return null
              return (
                <path key={`${e.from}>${e.to}`} d={edgePath(a, b)} className={`policy-${e.on_failure}`} />
              )
            })}
          </svg>
          {flow.nodes.map((n) => {
            const p = nodes.get(n.key)!
            return (
              <Link
                key={n.key}
                className="flow-node"
                data-node={n.key}
                data-state={n.state ?? 'unknown'}
                to={jobPath({ id: n.job_id, queue: n.queue })}
                style={{ left: p.x, top: p.y, width: NODE_W, height: NODE_H }}
                title={`${n.key} in ${n.queue}: ${n.state ?? 'unknown'}${n.existing ? ' (an existing job this flow waits for)' : ''}`}
              >
                <strong className="mono">
                  {n.key}
                  {n.existing && <span className="muted"> · existing</span>}
                </strong>
                <span>
                  <StateBadge state={n.state ?? 'unknown'} /> <span className="muted">{n.queue}</span>
                </span>
              </Link>
            )
          })}
        </nav>
      </Card>
    </div>
  )
}
