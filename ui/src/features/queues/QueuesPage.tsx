/** Queues: depth and state per queue, pause / resume. */
import { QueueTable } from '../../components/QueueTable'
import { Card, Empty, ErrorBox, Loading } from '../../components/ui'
import { useAuth } from '../../lib/auth'
import { useQueues, useToggleQueue } from './api/queues'

export function QueuesPage() {
  const q = useQueues()
  const toggle = useToggleQueue()
  const { can } = useAuth()
  return (
    <Card title="Queues">
      {toggle.error && <ErrorBox error={toggle.error} />}
      {q.isPending ? (
        <Loading what="Loading queues" />
      ) : q.error ? (
        <ErrorBox error={q.error} retry={() => q.refetch()} />
      ) : !q.data.items.length ? (
        <Empty>No queues yet: they appear with their first job.</Empty>
      ) : (
        <QueueTable
          queues={q.data.items}
          canPause={can('admin')}
          onToggle={(queue, pause) => toggle.mutate({ queue, pause })}
        />
      )}
    </Card>
  )
}
