/** A queue's name as a link to its page (`/queues/:name`): every place the console names a queue. */
import { Link } from 'react-router'

export const queuePath = (queue: string) => `/queues/${encodeURIComponent(queue)}`

export function QueueLink({ queue }: { queue: string }) {
  return <Link to={queuePath(queue)}>{queue}</Link>
}

/**
 * A queue's state: paused, "no workers" (work waiting or running and no live worker consumes it:
 * `no_workers` of GET /queues, ADR 0032), else running.
 */
export function QueueStateBadge({
  q,
}: {
  q: { paused: boolean; no_workers?: boolean; live_workers?: number }
}) {
  if (q.paused) return <span className="badge state-cancelled">paused</span>
  if (q.no_workers)
    return (
      <span
        className="badge no-workers"
        title="jobs are waiting or running and no live worker consumes this queue"
      >
        no workers
      </span>
    )
  return <span className="badge state-completed">running</span>
}
