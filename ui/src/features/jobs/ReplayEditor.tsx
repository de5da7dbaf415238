/**
 * The replay editor (ADR 0028): a finished job run again as a NEW job -- its payload edited as
 * JSON (checked as you type), its options changed, a dry run showing what would be created
 * (nothing written), then Replay, which opens the new job ("replay of …" links back).
 */
import type { DryRunDto, JobDto, ReplayBodyDto } from '@dtq/app/schemas'
import { useState } from 'react'
import { Link, useNavigate } from 'react-router'
import { Card, ErrorBox, JsonView, StateBadge } from '../../components/ui'
import { useAuth } from '../../lib/auth'
import { jobPath } from '../../lib/job-ref'
import { useDryRunReplay, useReplay } from './api/replay'

/** The JSON text's value, or why it is not JSON (with where, as the parser says). */
function parsePayload(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch (err) {
    return { ok: false, error: (err as Error).message }
  }
}

/** The physical queue's logical name: a partition `q~3` replays into `q`. */
const logical = (queue: string) => queue.replace(/~.*$/, '')

export function ReplayEditor({ job, onClose }: { job: JobDto; onClose: () => void }) {
  const { can } = useAuth()
  const navigate = useNavigate()
  const replay = useReplay()
  const dry = useDryRunReplay()
  const [text, setText] = useState(() => JSON.stringify(job.payload, null, 2))
  const [queue, setQueue] = useState(logical(job.queue))
  const [priority, setPriority] = useState(job.priority)
  const [delay, setDelay] = useState('')
  const [retries, setRetries] = useState(String(job.max_retries))
  const [key, setKey] = useState('')
  const parsed = parsePayload(text)

  /** The body: only what differs from the original (the server carries the rest over). */
  const body = (): ReplayBodyDto | null => {
    if (!parsed.ok) return null
    const b: ReplayBodyDto = {}
    if (JSON.stringify(parsed.value) !== JSON.stringify(job.payload)) b.payload = parsed.value
    if (queue.trim() && queue.trim() !== logical(job.queue)) b.queue = queue.trim()
    if (priority !== job.priority) b.priority = priority
    if (delay.trim()) b.delay_ms = Number(delay)
    if (retries.trim() && Number(retries) !== job.max_retries) b.max_retries = Number(retries)
    if (key.trim()) b.idempotency_key = key.trim()
    return b
  }
  const error = replay.error ?? dry.error

  return (
    <Card
      title={
        <>
          Replay job <span className="mono">{job.id}</span> as a new job
        </>
      }
      actions={
        <button type="button" onClick={onClose}>
          Close
        </button>
      }
    >
      <p className="muted">
        A new job with this task type ({job.task_type}) and the payload and options below; this job stays as
        it is and lists the replay. Its idempotency key and dedup are not carried over.
      </p>
      <div className="replay-editor">
        <label className="grow">
          Payload (JSON)
          <textarea
            aria-label="replay payload"
            aria-invalid={!parsed.ok}
            rows={10}
            className="mono"
            value={text}
            onChange={(e) => {
              setText(e.target.value)
              dry.reset()
            }}
          />
          {parsed.ok ? (
            <span className="muted">Valid JSON.</span>
          ) : (
            <span className="error-text" role="alert">
              Not valid JSON: {parsed.error}
            </span>
          )}
        </label>
        <fieldset className="replay-options">
          <legend>Options</legend>
          <label>
            Queue
            <input aria-label="replay queue" value={queue} onChange={(e) => setQueue(e.target.value)} />
          </label>
          <label>
            Priority
            <select
              aria-label="replay priority"
              value={priority}
              onChange={(e) => setPriority(e.target.value as JobDto['priority'])}
            >
              <option value="high">high</option>
              <option value="normal">normal</option>
              <option value="low">low</option>
            </select>
          </label>
          <label>
            Delay (ms)
            <input
              aria-label="replay delay ms"
              type="number"
              min={0}
              value={delay}
              placeholder="run now"
              onChange={(e) => setDelay(e.target.value)}
            />
          </label>
          <label>
            Max retries
            <input
              aria-label="replay max retries"
              type="number"
              min={0}
              value={retries}
              onChange={(e) => setRetries(e.target.value)}
            />
          </label>
          <label>
            Idempotency key
            <input
              aria-label="replay idempotency key"
              value={key}
              placeholder="none"
              onChange={(e) => setKey(e.target.value)}
            />
          </label>
        </fieldset>
      </div>
      <div className="actions">
        <button
          type="button"
          disabled={!parsed.ok || !can('write') || dry.isPending}
          onClick={() => {
            const b = body()
            if (b) dry.mutate({ job, body: b })
          }}
        >
          Dry run
        </button>
        <button
          type="button"
          className="primary"
          disabled={!parsed.ok || !can('write') || replay.isPending}
          onClick={async () => {
            const b = body()
            if (!b) return
            const created = await replay.mutateAsync({ job, body: b }).catch(() => null)
            if (created) navigate(jobPath(created), { state: { replayed: true } })
          }}
        >
          Replay
        </button>
      </div>
      {error && <ErrorBox error={error} />}
      {dry.data && <DryRunResult dry={dry.data} />}
    </Card>
  )
}

/** What a dry run says would happen (a replay's, or the New job form's). */
export function DryRunResult({ dry }: { dry: DryRunDto }) {
  return (
    <section className="dry-run" aria-label="dry run result">
      <h3>Dry run: nothing was written</h3>
      {dry.outcome === 'create' ? (
        <p>
          Would create a <strong>new job</strong> in queue <strong>{dry.queue}</strong>
          {dry.queue_is_new ? ' (a new queue)' : ''}, <StateBadge state={dry.job.state} />
          {dry.generated_id ? (
            ' with an id DTQ numbers'
          ) : (
            <>
              {' '}
              with id <span className="mono">{dry.job.id}</span>
            </>
          )}
          .
        </p>
      ) : (
        <p>
          Would create nothing:{' '}
          {dry.outcome === 'existing' ? 'its id or idempotency key names' : 'its dedup key is held by'} job{' '}
          {dry.existing && (
            <Link className="mono" to={jobPath(dry.existing)}>
              {dry.existing.id}
            </Link>
          )}
          .
        </p>
      )}
      {dry.notes.length > 0 && (
        <ul className="notes">
          {dry.notes.map((n) => (
            <li key={n}>{n}</li>
          ))}
        </ul>
      )}
      <details>
        <summary>The job as it would be stored</summary>
        <JsonView data={dry.job} />
      </details>
    </section>
  )
}
