/** Queues with depth per priority, pending, delayed, lag, oldest waiting job, paused. */
import type { QueueStatsDto } from '@dtq/app/schemas'
import { duration, num } from '../lib/format'

export function QueueTable({
  queues,
  canPause,
  onToggle,
}: {
  queues: QueueStatsDto[]
  canPause: boolean
  onToggle: (queue: string, pause: boolean) => void
}) {
  return (
    <div className="table-wrap">
      <table>
        <thead>
          <tr>
            <th>Queue</th>
            <th title="waiting per priority: high / normal / low">Waiting (h / n / l)</th>
            <th>Running</th>
            <th>Delayed</th>
            <th>Lag</th>
            <th>Oldest waiting</th>
            <th>DLQ</th>
            <th>State</th>
            <th>
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {queues.map((q) => {
            const s = q.streams
            const lag = s.high.lag + s.normal.lag + s.low.lag
            const pending = s.high.pending + s.normal.pending + s.low.pending
            return (
              <tr key={q.queue}>
                <td>
                  <strong>{q.queue}</strong>
                </td>
                <td>
                  {num(s.high.lag)} / {num(s.normal.lag)} / {num(s.low.lag)}
                </td>
                <td>{num(pending)}</td>
                <td>{num(q.delayed)}</td>
                <td>{num(lag)}</td>
                <td>{q.oldest_waiting_ms === null ? '—' : duration(q.oldest_waiting_ms)}</td>
                <td>{num(q.dlq)}</td>
                <td>
                  {q.paused ? (
                    <span className="badge state-cancelled">paused</span>
                  ) : (
                    <span className="badge state-completed">running</span>
                  )}
                </td>
                <td>
                  <button
                    type="button"
                    disabled={!canPause}
                    onClick={() => onToggle(q.queue, !q.paused)}
                    aria-label={`${q.paused ? 'Resume' : 'Pause'} queue ${q.queue}`}
                  >
                    {q.paused ? 'Resume' : 'Pause'}
                  </button>
                </td>
              </tr>
            )
          })}
        </tbody>
      </table>
    </div>
  )
}
