/** One job: payload and result, every attempt (worker, times, error and stack), progress,
 * log, cancel / retry, and "copy as curl". */
import type { JobDto } from '@dtq/app/schemas'
import { useQueryClient } from '@tanstack/react-query'
import { useEffect, useState } from 'react'
import { Link, useLocation, useNavigate, useParams } from 'react-router'
import { QueryState } from '../../components/QueryState'
import { QueueLink } from '../../components/QueueLink'
import { Card, ConfirmButton, ErrorBox, JsonView, Progress, StateBadge } from '../../components/ui'
import { API_BASE, qs } from '../../lib/api'
import { useAuth } from '../../lib/auth'
import { ago, duration, time } from '../../lib/format'
import { jobPath } from '../../lib/job-ref'
import { queryKeys } from '../../lib/query-keys'
import { useUrlParams } from '../../lib/url-params'
import { type JobDetail, useJob } from './api/get-job'
import {
  useCancelJob,
  useDeleteJob,
  useEditPayload,
  useRetryJob,
  useRunNow,
  useSetPriority,
} from './api/job-actions'
import { CompareWith } from './CompareWith'
import { JobTimeline } from './JobTimeline'
import { ReplayEditor } from './ReplayEditor'

export function curlFor(job: JobDto, authRequired: boolean): string {
  const body: Record<string, unknown> = {
    task_type: job.task_type,
    payload: job.payload,
    queue: job.queue,
    priority: job.priority,
  }
  if (job.max_retries !== undefined) body.max_retries = job.max_retries
  if (job.timeout_ms) body.timeout_ms = job.timeout_ms
  if (job.partition_key) body.partition_key = job.partition_key
  const base = API_BASE.startsWith('http') ? API_BASE : `${window.location.origin}${API_BASE}`
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`
  return [
    `curl -X POST ${base}/jobs`,
    `-H 'content-type: application/json'`,
    ...(authRequired ? [`-H "authorization: Bearer $DTQ_TOKEN"`] : []),
    `-d ${quote(JSON.stringify(body))}`,
  ].join(' \\\n  ')
}

export function JobDetailPage() {
  const { id = '' } = useParams()
  const queue = useUrlParams().get('queue')
  const q = useJob({ id, queue })
  useCanonicalUrl(queue, q.data)
  return (
    <QueryState
      query={q}
      loading="Loading job"
      notFound={
        <Card title="Job not found">
          <p>
            No job <code>{id}</code>
            {queue && (
              <>
                {' '}
                in queue <code>{queue}</code>
              </>
            )}
            : it never existed, or it finished and its retention passed. <Link to="/jobs">Back to jobs</Link>
          </p>
        </Card>
      }
      ambiguous={(queues) => <PickQueue id={id} queues={queues} />}
    >
      {(job) => <JobView job={job} />}
    </QueryState>
  )
}

/**
 * An old link (no queue) that found one job is replaced by the job's own (`?queue=`), its data
 * kept: the page then reads that one job, and stays on it should another queue get the same id.
 */
function useCanonicalUrl(queue: string | undefined, job: JobDetail | undefined) {
  const navigate = useNavigate()
  const qc = useQueryClient()
  useEffect(() => {
    if (queue || !job) return
    qc.setQueryData(queryKeys.jobs.detail(job), job)
    navigate(jobPath(job), { replace: true })
  }, [queue, job, qc, navigate])
}

/** An id without a queue that names jobs in several queues (ADR 0016): the user picks one. */
function PickQueue({ id, queues }: { id: string; queues: string[] }) {
  return (
    <Card
      title={
        <>
          Job <span className="mono">{id}</span> is in several queues
        </>
      }
    >
      <p>Job ids are unique within a queue only. Which job do you mean?</p>
      <ul aria-label="queues with this job id">
        {queues.map((queue) => (
          <li key={queue}>
            <Link to={jobPath({ id, queue })}>
              Job <span className="mono">{id}</span> in queue <strong>{queue}</strong>
            </Link>
          </li>
        ))}
      </ul>
    </Card>
  )
}

function JobView({ job }: { job: JobDetail }) {
  const { can, authRequired } = useAuth()
  const cancel = useCancelJob()
  const retry = useRetryJob()
  const [copied, setCopied] = useState(false)
  // Past its retention, read from the history (ADR 0028): replay, timeline and compare only.
  const archived = job.source === 'archive'
  const cancellable =
    !archived && ['waiting', 'queued', 'scheduled', 'retrying', 'active'].includes(job.state)
  const retryable = !archived && ['failed', 'cancelled'].includes(job.state)
  const curl = curlFor(job, authRequired)
  const actionError = cancel.error ?? retry.error
  // Set by the New job form when its add was answered by this job's dedup; by the replay editor.
  const navState = useLocation().state as { deduplicated?: boolean; replayed?: boolean } | null
  const deduplicated = navState?.deduplicated
  // Replay (ADR 0028): a finished job; `?replay=1` (the DLQ's Replay) opens the editor.
  const { get, update } = useUrlParams()
  const replayable = ['completed', 'failed', 'cancelled'].includes(job.state)
  const replaying = get('replay') === '1'

  return (
    <div className="stack">
      <Card
        title={
          <>
            Job <span className="mono">{job.id}</span> <StateBadge state={job.state} />
            {job.cancel_requested && <span className="badge state-retrying">cancel requested</span>}
            {archived && (
              <span className="badge source" title="from the history (PostgreSQL): Redis no longer holds it">
                archived
              </span>
            )}
          </>
        }
        actions={
          <>
            <ConfirmButton
              danger
              disabled={!cancellable || !can('write') || job.cancel_requested}
              title="Cancel job"
              body={
                job.state === 'active'
                  ? 'The job is running: its handler will be asked to stop.'
                  : 'The job will not run.'
              }
              confirmLabel="Cancel job"
              onConfirm={() => cancel.mutateAsync(job)}
            >
              Cancel
            </ConfirmButton>
            <button type="button" disabled={!retryable || !can('write')} onClick={() => retry.mutate(job)}>
              Retry
            </button>
            <button
              type="button"
              disabled={!replayable || !can('write')}
              title="Run it again as a new job, with changes"
              onClick={() => update({ replay: replaying ? undefined : '1' })}
            >
              Replay
            </button>
            {!archived && <Day2Actions job={job} />}
            <button
              type="button"
              onClick={async () => {
                try {
                  await navigator.clipboard.writeText(curl)
                  setCopied(true)
                  setTimeout(() => setCopied(false), 2000)
                } catch {
                  setCopied(false)
                  window.prompt('Copy the command', curl)
                }
              }}
            >
              {copied ? 'Copied' : 'Copy as curl'}
            </button>
          </>
        }
      >
        {actionError && <ErrorBox error={actionError} />}
        {archived && (
          <p role="note" className="notice">
            Archived: Redis no longer holds this job (past its retention); this is its record in the history.
            Replay, its timeline and compare work; cancel, retry and edits do not.
          </p>
        )}
        {deduplicated && (
          <p role="status" className="muted">
            Deduplicated: no new job was created; this is the job that answered the add.
          </p>
        )}
        {navState?.replayed && (
          <p role="status" className="notice">
            Replay created: this new job re-runs {job.replay_of}.
          </p>
        )}
        <Outcome job={job} />
        <dl className="facts">
          <dt>Type</dt>
          <dd>{job.task_type}</dd>
          <dt>Queue</dt>
          <dd>
            <QueueLink queue={job.queue} /> · {job.priority}
          </dd>
          <dt>Attempts</dt>
          <dd>
            {job.attempts} (failures {job.failures} of {job.max_retries + 1} allowed
            {job.stalls ? `, ${job.stalls} stalled` : ''})
          </dd>
          <dt>Created</dt>
          <dd title={time(job.created_at)}>{ago(job.created_at)}</dd>
          {job.run_at && (
            <>
              <dt>Due</dt>
              <dd title={time(job.run_at)}>{ago(job.run_at)}</dd>
            </>
          )}
          <dt>Worker</dt>
          <dd className="mono">{job.worker ?? '—'}</dd>
          {job.flow_id && (
            <>
              <dt>Flow</dt>
              <dd>
                <Link to={`/flows/${encodeURIComponent(job.flow_id)}`} className="mono">
                  {job.flow_id}
                </Link>{' '}
                node <span className="mono">{job.flow_node}</span>
              </dd>
            </>
          )}
          {job.replay_of && (
            <>
              <dt>Replay of</dt>
              <dd>
                <ReplayLink refText={job.replay_of} />
              </dd>
            </>
          )}
          {job.replays && (
            <>
              <dt>Replays</dt>
              <dd>
                {job.replays.count}
                {': '}
                {job.replays.last.map((r, i) => (
                  <span key={r.job}>
                    {i > 0 && ', '}
                    <ReplayLink refText={r.job} />
                  </span>
                ))}
                {job.replays.count > job.replays.last.length && ', …'}
              </dd>
            </>
          )}
          {job.idempotency_key && (
            <>
              <dt>Idempotency key</dt>
              <dd className="mono">{job.idempotency_key}</dd>
            </>
          )}
          {job.schedule && (
            <>
              <dt>Schedule</dt>
              <dd className="mono">
                <Link to={`/schedules?name=${encodeURIComponent(job.schedule)}`}>{job.schedule}</Link>
                {job.fired_at ? ` (fire time ${time(job.fired_at)})` : ''}
              </dd>
            </>
          )}
          {job.partition_key && (
            <>
              <dt>Partition key</dt>
              <dd className="mono">{job.partition_key}</dd>
            </>
          )}
          {job.trace && (
            <>
              <dt>Trace</dt>
              {/* The trace id of the traceparent the job carries (tracing on, ADR 0023): search it in Jaeger. */}
              <dd className="mono" title={job.trace}>
                {job.trace.split('-')[1] ?? job.trace}
              </dd>
            </>
          )}
          {job.edits && (
            <>
              <dt>Payload edited</dt>
              <dd>
                {job.edits.count} time{job.edits.count === 1 ? '' : 's'}, last by{' '}
                <span className="mono">{job.edits.by}</span>{' '}
                <span title={time(job.edits.at)}>{ago(job.edits.at)}</span> (replaced payload SHA-1{' '}
                <span className="mono">{job.edits.previous_sha1.slice(0, 12)}</span>)
              </dd>
            </>
          )}
          <dt>Timeout</dt>
          <dd>{job.timeout_ms ? duration(job.timeout_ms) : 'none'}</dd>
          {job.dedup && (
            <>
              <dt>Dedup</dt>
              <dd>
                {job.dedup.mode}
                {job.dedup.ttl_ms ? `, window ${duration(job.dedup.ttl_ms)}` : ', while it lives'}{' '}
                <span className="mono muted" title="SHA-256 of the key, or of task type + payload">
                  {job.dedup.key_hash.slice(0, 12)}…
                </span>
              </dd>
            </>
          )}
          {job.start_by && (
            <>
              <dt>Start by</dt>
              <dd title={time(job.start_by)}>
                {time(job.start_by)}
                {job.expired && <span className="badge state-cancelled">expired</span>}
              </dd>
            </>
          )}
          {job.snoozes > 0 && (
            <>
              <dt>Snoozed</dt>
              <dd>{job.snoozes} times (no attempt used)</dd>
            </>
          )}
        </dl>
        <Progress value={job.progress} />
      </Card>

      {replaying && replayable && <ReplayEditor job={job} onClose={() => update({ replay: undefined })} />}

      <div className="grid2">
        <Card title="Payload">
          <JsonView data={job.payload} />
        </Card>
        <Card title="Result">
          {job.state === 'completed' ? (
            <JsonView data={job.result} />
          ) : (
            <p className="muted">No result yet.</p>
          )}
        </Card>
      </div>

      {job.parent_results && Object.keys(job.parent_results).length > 0 && (
        <Card title="Parents' results">
          <JsonView data={job.parent_results} />
        </Card>
      )}

      <Card title="Attempts">
        <ol className="timeline">
          {job.errors.map((e, i) => (
            <li key={`${e.attempt}-${e.at}`} className="failed">
              <div>
                <strong>Attempt {e.attempt}</strong> failed {ago(e.at)} on{' '}
                <span className="mono">{e.worker}</span>
                {e.started_at ? ` · started ${time(e.started_at)}, ran ${duration(e.at - e.started_at)}` : ''}
              </div>
              <div className="error-text">{e.message}</div>
              {e.stack && (
                // The last attempt's stack is open: it is what a failure is read for.
                <details open={i === job.errors.length - 1}>
                  <summary>Stack</summary>
                  <pre>{e.stack}</pre>
                </details>
              )}
            </li>
          ))}
          {job.started_at && !['failed', 'retrying'].includes(job.state) && (
            <li className={job.state}>
              <strong>Attempt {job.attempts}</strong> {job.state === 'active' ? 'running' : job.state} ·
              started {ago(job.started_at)}
              {job.finished_at ? ` · took ${duration(job.finished_at - job.started_at)}` : ''} on{' '}
              <span className="mono">{job.worker}</span>
            </li>
          )}
          {!job.started_at && !job.errors.length && <li>Not started yet.</li>}
        </ol>
      </Card>

      <JobTimeline job={job} />
      <CompareWith job={job} />

      <Card title="Log">
        {job.logs.length ? (
          <pre className="log">{job.logs.join('\n')}</pre>
        ) : (
          <p className="muted">{job.source === 'archive' ? 'Logs are not archived.' : 'No log lines.'}</p>
        )}
      </Card>
      <details className="card">
        <summary>curl</summary>
        <pre>{curl}</pre>
      </details>
    </div>
  )
}

/** A `<queue>/<id>` link to that job's page (replay_of, replays). */
function ReplayLink({ refText }: { refText: string }) {
  const slash = refText.indexOf('/')
  return (
    <Link className="mono" to={jobPath({ queue: refText.slice(0, slash), id: refText.slice(slash + 1) })}>
      {refText}
    </Link>
  )
}

const NOT_STARTED = ['waiting', 'queued', 'scheduled', 'retrying']

/**
 * Day-2 operations on one job (ADR 0020), each behind a confirmation: run a scheduled or
 * retrying job now, change the priority or edit the payload of one that has not started (a
 * failed one's payload too), delete it in any state. A refusal (409, 400) is shown, nothing changed.
 */
function Day2Actions({ job }: { job: JobDetail }) {
  const { can } = useAuth()
  const navigate = useNavigate()
  const runNow = useRunNow()
  const priority = useSetPriority()
  const edit = useEditPayload()
  const del = useDeleteJob()
  const [prio, setPrio] = useState(job.priority)
  const [text, setText] = useState(() => JSON.stringify(job.payload, null, 2))
  const [parseError, setParseError] = useState<string | null>(null)
  const error = runNow.error ?? priority.error ?? edit.error ?? del.error
  const write = can('write')
  return (
    <>
      <ConfirmButton
        disabled={!write || !['scheduled', 'retrying'].includes(job.state)}
        title="Run job now"
        body="The job leaves its wait and joins the end of its priority's queue now."
        confirmLabel="Run now"
        onConfirm={() => runNow.mutateAsync(job).catch(() => {})}
      >
        Run now
      </ConfirmButton>
      <ConfirmButton
        disabled={!write || !NOT_STARTED.includes(job.state)}
        title="Change priority"
        body={
          <label>
            New priority{' '}
            <select
              aria-label="new priority"
              value={prio}
              onChange={(e) => setPrio(e.target.value as JobDetail['priority'])}
            >
              <option value="high">high</option>
              <option value="normal">normal</option>
              <option value="low">low</option>
            </select>
            <p className="muted">A queued job moves to the end of the new priority's queue.</p>
          </label>
        }
        confirmLabel="Change priority"
        onConfirm={() => priority.mutateAsync({ job, priority: prio }).catch(() => {})}
      >
        Priority
      </ConfirmButton>
      <ConfirmButton
        disabled={!write || ![...NOT_STARTED, 'failed'].includes(job.state)}
        title="Edit payload"
        body={
          <>
            <textarea
              aria-label="new payload"
              rows={8}
              cols={50}
              className="mono"
              value={text}
              onChange={(e) => setText(e.target.value)}
            />
            <p className="muted">The edit is recorded on the job (who, when, the replaced payload's hash).</p>
          </>
        }
        confirmLabel="Save payload"
        onConfirm={async () => {
          let payload: unknown
          try {
            payload = JSON.parse(text)
          } catch {
            setParseError('Not valid JSON: nothing was saved.')
            return
          }
          setParseError(null)
          await edit.mutateAsync({ job, payload }).catch(() => {})
        }}
      >
        Edit payload
      </ConfirmButton>
      <ConfirmButton
        danger
        disabled={!can('admin')}
        title="Delete job"
        body={
          job.state === 'active'
            ? 'The job is running: its worker is told to stop and its result will be rejected. The job and its logs are deleted for good.'
            : 'The job, its logs and its place in the queue or DLQ are deleted for good.'
        }
        confirmLabel="Delete job"
        onConfirm={() =>
          del
            .mutateAsync(job)
            .then(() => navigate('/jobs'))
            .catch(() => {})
        }
      >
        Delete
      </ConfirmButton>
      {parseError && <p className="error-text">{parseError}</p>}
      {error && <ErrorBox error={error} />}
    </>
  )
}

/**
 * What became of a job that failed, said plainly (issue 22): dead-lettered for good, or when the
 * next attempt runs.
 */
function Outcome({ job }: { job: JobDetail }) {
  if (job.state === 'failed') {
    const allowed = job.max_retries + 1
    const why =
      job.failures < allowed
        ? ' (a permanent error: not retried)'
        : ` (retries used up: ${job.failures} of ${allowed} allowed failure${allowed === 1 ? '' : 's'})`
    return (
      <p role="note" className="notice outcome-failed">
        <strong>
          Failed permanently after {job.attempts} attempt{job.attempts === 1 ? '' : 's'}: moved to dead
          letters
        </strong>
        {why}. <Link to={`/dlq${qs({ queue: job.queue, type: job.task_type })}`}>Its dead letters</Link>
      </p>
    )
  }
  if (job.state === 'retrying') {
    return (
      <p role="note" className="notice">
        Attempt {job.attempts} failed; will retry
        {job.run_at ? (
          <>
            {' '}
            at <time dateTime={new Date(job.run_at).toISOString()}>{time(job.run_at)}</time> (
            {ago(job.run_at)})
          </>
        ) : (
          ' soon'
        )}{' '}
        — attempt {job.attempts + 1} of {job.max_retries + 1}.
      </p>
    )
  }
  return null
}
