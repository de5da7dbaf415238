/**
 * A job's timeline (ADR 0028): every state change and attempt on record, from the job's record
 * and its queue's events stream, loaded on demand (the scan is bounded; the answer says when it is
 * partial and why).
 */
import { useState } from 'react'
import { Card, ErrorBox, Loading } from '../../components/ui'
import { time } from '../../lib/format'
import type { JobRef } from '../../lib/job-ref'
import { useTimeline } from './api/replay'

export function JobTimeline({ job }: { job: JobRef }) {
  const [open, setOpen] = useState(false)
  const q = useTimeline(job, open)
  return (
    <Card
      title="Timeline"
      actions={
        open ? (
          <button type="button" onClick={() => q.refetch()} disabled={q.isFetching}>
            Refresh timeline
          </button>
        ) : (
          <button type="button" onClick={() => setOpen(true)}>
            Show timeline
          </button>
        )
      }
    >
      {!open && <p className="muted">Every state change and attempt, with times and workers.</p>}
      {open && q.isPending && <Loading what="Loading the timeline" />}
      {open && q.error && <ErrorBox error={q.error} retry={() => q.refetch()} />}
      {q.data && (
        <>
          {q.data.partial && (
            <div className="notice" role="note" aria-label="timeline is partial">
              <strong>Partial:</strong>
              <ul>
                {q.data.gaps.map((g) => (
                  <li key={g}>{g}</li>
                ))}
              </ul>
            </div>
          )}
          <table className="table timeline-table" aria-label="timeline">
            <thead>
              <tr>
                <th>Time</th>
                <th>Event</th>
                <th>Attempt</th>
                <th>Worker</th>
                <th>Detail</th>
                <th>From</th>
              </tr>
            </thead>
            <tbody>
              {q.data.entries.map((e) => (
                <tr
                  key={`${e.source}-${e.event_id ?? ''}-${e.at}-${e.event}-${e.attempt ?? ''}-${e.message ?? ''}`}
                  className={`tl-${e.event}`}
                >
                  <td className="mono">{time(e.at)}</td>
                  <td>{e.event.replaceAll('_', ' ')}</td>
                  <td>{e.attempt ?? ''}</td>
                  <td className="mono">{e.worker ?? ''}</td>
                  <td className={e.event.endsWith('failed') ? 'error-text' : ''}>{e.message ?? ''}</td>
                  <td className="muted">{e.source === 'events' ? 'events stream' : e.source}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="muted">{q.data.events_scanned} events-stream entries read.</p>
        </>
      )}
    </Card>
  )
}
