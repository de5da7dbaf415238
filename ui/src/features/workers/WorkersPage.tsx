/** Live workers: host, pid, queues, concurrency, active, processed, failed, heartbeat, state. */
import { Card, ConfirmButton, Empty, ErrorBox, Loading, StateBadge } from '../../components/ui'
import { useAuth } from '../../lib/auth'
import { ago, num } from '../../lib/format'
import { useWorkerCommand, useWorkers } from './api/workers'

export function WorkersPage() {
  const q = useWorkers()
  const cmd = useWorkerCommand()
  const { can } = useAuth()
  return (
    <Card title="Workers">
      {cmd.error && <ErrorBox error={cmd.error} />}
      {q.isPending ? (
        <Loading what="Loading workers" />
      ) : q.error ? (
        <ErrorBox error={q.error} retry={() => q.refetch()} />
      ) : !q.data.items.length ? (
        <Empty>
          No live workers. Start one with <code>pnpm dtq worker</code>.
        </Empty>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Worker</th>
                <th>Host</th>
                <th>PID</th>
                <th>Queues</th>
                <th>Active</th>
                <th>Processed</th>
                <th>Failed</th>
                <th>Heartbeat</th>
                <th>State</th>
                <th>
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {q.data.items.map((w) => (
                <tr key={w.id}>
                  <td className="mono">{w.id}</td>
                  <td>{w.host}</td>
                  <td>{w.pid}</td>
                  <td>{w.queues.join(', ')}</td>
                  <td>
                    {w.active} / {w.concurrency}
                  </td>
                  <td>{num(w.processed)}</td>
                  <td>{num(w.failed)}</td>
                  <td>{ago(w.heartbeat_at)}</td>
                  <td>
                    <StateBadge state={w.state} />
                  </td>
                  <td>
                    {w.state === 'paused' ? (
                      <button
                        type="button"
                        disabled={!can('admin')}
                        onClick={() => cmd.mutate({ id: w.id, command: 'resume' })}
                        aria-label={`resume ${w.id}`}
                      >
                        Resume
                      </button>
                    ) : (
                      <button
                        type="button"
                        disabled={!can('admin') || w.state !== 'running'}
                        onClick={() => cmd.mutate({ id: w.id, command: 'pause' })}
                        aria-label={`pause ${w.id}`}
                      >
                        Pause
                      </button>
                    )}
                    <ConfirmButton
                      danger
                      disabled={!can('admin') || w.state === 'stopping' || w.state === 'draining'}
                      title="Drain worker"
                      body="The worker takes no new jobs, finishes what it runs, then stops."
                      confirmLabel="Drain"
                      onConfirm={() => cmd.mutateAsync({ id: w.id, command: 'drain' })}
                    >
                      Drain
                    </ConfirmButton>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  )
}
