/**
 * A job's timeline (ADR 0028): every state change and attempt on record, from the job's record
 * and its queue's events stream, loaded on demand (the scan is bounded; the answer says when it is
 * partial and why). Under 640 px each entry is a card, its cells named by `data-label` (ADR 0034).
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
          <div className="table-wrap">
            <table className="table data-table timeline-table">
              <caption className="sr-only">Timeline of job {job.id}, oldest first</caption>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Event</th>
                  <th scope="col">Attempt</th>
                  <th scope="col">Worker</th>
                  <th scope="col">Detail</th>
                  <th scope="col">From</th>
                </tr>
              </thead>
              <tbody>
                {q.data.entries.map((e) => (
                  <tr
                    key={`${e.source}-${e.event_id ?? ''}-${e.at}-${e.event}-${e.attempt ?? ''}-${e.message ?? ''}`}
                    className={`tl-${e.event}`}
                  >
                    <td className="mono" data-label="Time">
                      {time(e.at)}
                    </td>
                    <td data-label="Event">{e.event.replaceAll('_', ' ')}</td>
                    <td data-label="Attempt">{e.attempt ?? ''}</td>
                    <td className="mono" data-label="Worker">
                      {e.worker ?? ''}
                    </td>
                    <td className={e.event.endsWith('failed') ? 'error-text' : ''} data-label="Detail">
                      {e.message ?? ''}
                    </td>
                    <td className="muted" data-label="From">
                      {e.source === 'events' ? 'events stream' : e.source}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <p className="muted">{q.data.events_scanned} events-stream entries read.</p>
        </>
      )}
    </Card>
  )
}
