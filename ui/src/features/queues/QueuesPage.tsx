/** Queues: depth and state per queue, pause / resume. */
import { QueryState } from '../../components/QueryState'
import { QueueTable } from '../../components/QueueTable'
import { Card } from '../../components/ui'
import { useQueues } from '../../lib/queues'

export function QueuesPage() {
  const q = useQueues()
  return (
    <Card title="Queues">
      <QueryState
        query={q}
        loading="Loading queues"
        isEmpty={(d) => !d.items.length}
        empty="No queues yet: they appear with their first job."
      >
        {(d) => <QueueTable queues={d.items} />}
      </QueryState>
    </Card>
  )
}
