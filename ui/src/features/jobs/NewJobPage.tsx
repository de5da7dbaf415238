/** New job form (payload validated as you type) and, in development, the synthetic generator. */
import type { CreateJobDto } from '@dtq/app/schemas'
import { useState } from 'react'
import { useNavigate } from 'react-router'
import { Card, ErrorBox } from '../../components/ui'
import { useAuth } from '../../lib/auth'
import { parseJsonText } from '../../lib/format'
import { jobPath } from '../../lib/job-ref'
import { useCreateJob, useGenerateJobs } from './api/job-actions'
import { useDryRunAdd } from './api/replay'
import { DryRunResult } from './ReplayEditor'

const BUILTINS = ['echo', 'sleep', 'fail', 'cpu', 'synthetic']

export function NewJobPage() {
  const { can, environment } = useAuth()
  const navigate = useNavigate()
  const create = useCreateJob()
  const dry = useDryRunAdd()
  const generate = useGenerateJobs()
  const [payload, setPayload] = useState('{\n  "hello": "world"\n}')
  const parsed = parseJsonText(payload)
  const [generated, setGenerated] = useState<string | null>(null)

  return (
    <div className="stack">
      <Card title="New job">
        <form
          className="form"
          onSubmit={async (e) => {
            e.preventDefault()
            if (parsed.error) return
            const f = new FormData(e.currentTarget)
            const n = (k: string) => (f.get(k) ? Number(f.get(k)) : undefined)
            const s = (k: string) => (String(f.get(k) ?? '').trim() ? String(f.get(k)).trim() : undefined)
            const on_failure = s('on_failure') as 'fail' | 'ignore' | 'cancel'
            const depends_on = s('depends_on')
              ?.split(/[\s,]+/)
              .filter(Boolean)
              .map((ref) => {
                const slash = ref.indexOf('/')
                return slash < 0
                  ? { job_id: ref, on_failure }
                  : { job_id: ref.slice(slash + 1), queue: ref.slice(0, slash), on_failure }
              })
            const mode = s('dedup_mode') as NonNullable<CreateJobDto['dedup']>['mode'] | undefined
            const body: CreateJobDto = {
              task_type: String(f.get('task_type')).trim(),
              payload: parsed.value,
              queue: s('queue'),
              priority: (s('priority') as CreateJobDto['priority']) ?? 'normal',
              delay_ms: n('delay_ms'),
              max_retries: n('max_retries'),
              idempotency_key: s('idempotency_key'),
              depends_on,
              dedup: mode ? { mode, ttl_ms: n('dedup_ttl_ms'), key: s('dedup_key') } : undefined,
              expires_in_ms: n('expires_in_ms'),
            }
            // "Dry run" (ADR 0028): every check, and what would be created; nothing written.
            if ((e.nativeEvent as SubmitEvent).submitter?.getAttribute('value') === 'dry-run') {
              dry.mutate(body)
              return
            }
            // A refusal is shown by the ErrorBox below (create.error), not thrown to the window.
            const job = await create.mutateAsync(body).catch(() => null)
            // A deduplicated add answers with the job that holds the place: the job page says so.
            if (job) navigate(jobPath(job), { state: { deduplicated: job.deduplicated === true } })
          }}
        >
          <label>
            Task type
            <input
              name="task_type"
              required
              list="task-types"
              defaultValue="echo"
              pattern="[A-Za-z0-9_.:\/\-]{1,128}"
            />
            <datalist id="task-types">
              {BUILTINS.map((t) => (
                <option key={t} value={t} />
              ))}
            </datalist>
          </label>
          <label>
            Payload (JSON)
            <textarea
              name="payload"
              rows={8}
              value={payload}
              onChange={(e) => setPayload(e.target.value)}
              aria-invalid={parsed.error ? true : undefined}
              aria-describedby="payload-status"
              spellCheck={false}
            />
            <span id="payload-status" className={parsed.error ? 'error-text' : 'ok-text'}>
              {parsed.error ? `Invalid JSON: ${parsed.error}` : 'Valid JSON'}
            </span>
          </label>
          <div className="row">
            <label>
              Queue
              <input name="queue" placeholder="default" />
            </label>
            <label>
              Priority
              <select name="priority" defaultValue="normal">
                <option>high</option>
                <option>normal</option>
                <option>low</option>
              </select>
            </label>
            <label>
              Delay (ms)
              <input name="delay_ms" type="number" min={0} placeholder="0" />
            </label>
            <label>
              Max retries
              <input name="max_retries" type="number" min={0} max={1000} placeholder="default" />
            </label>
          </div>
          <label>
            Idempotency key
            <input name="idempotency_key" placeholder="optional: a repeat returns the original job" />
          </label>
          <div className="row">
            <label>
              Depends on
              <input
                name="depends_on"
                placeholder="optional: job ids (queue/id for another queue), comma-separated"
                aria-describedby="depends-help"
              />
            </label>
            <label>
              If a parent fails
              <select name="on_failure" defaultValue="fail">
                <option value="fail">fail this job</option>
                <option value="ignore">run it anyway</option>
                <option value="cancel">cancel this job</option>
              </select>
            </label>
          </div>
          <span id="depends-help" className="muted">
            With parents, the job waits (state waiting) until each has completed, and reads their results.
          </span>
          <div className="row">
            <label>
              Deduplicate
              <select name="dedup_mode" defaultValue="" aria-describedby="dedup-help">
                <option value="">no</option>
                <option value="unique">unique</option>
                <option value="throttle">throttle</option>
                <option value="debounce">debounce</option>
              </select>
            </label>
            <label>
              Dedup window (ms)
              <input name="dedup_ttl_ms" type="number" min={0} placeholder="unique: while it lives" />
            </label>
            <label>
              Dedup key
              <input name="dedup_key" placeholder="optional: default task type + payload" />
            </label>
            <label>
              Expires in (ms)
              <input name="expires_in_ms" type="number" min={1} placeholder="optional: start deadline" />
            </label>
          </div>
          <span id="dedup-help" className="muted">
            Unique: one job per key while it lives (or within the window). Throttle: the first job of each
            window answers the others. Debounce: the waiting job takes the latest payload and runs a window
            after the latest add. A job not started within &quot;expires in&quot; ends cancelled (expired).
          </span>
          {(create.error ?? dry.error) && <ErrorBox error={create.error ?? dry.error} />}
          {dry.data && <DryRunResult dry={dry.data} />}
          <div className="actions">
            <button
              type="submit"
              className="primary"
              disabled={!!parsed.error || !can('write') || create.isPending}
            >
              Create job
            </button>
            <button type="submit" value="dry-run" disabled={!!parsed.error || !can('write') || dry.isPending}>
              Dry run
            </button>
          </div>
          {!can('write') && <p className="muted">Your token is read-only.</p>}
        </form>
      </Card>

      {environment !== 'production' && (
        <Card title="Generate synthetic jobs (development)">
          <form
            className="row"
            onSubmit={async (e) => {
              e.preventDefault()
              const f = new FormData(e.currentTarget)
              const r = await generate.mutateAsync({
                count: Number(f.get('count')),
                partition_key_prefix: String(f.get('prefix') || '') || undefined,
              })
              setGenerated(`Created ${r.created} synthetic jobs.`)
            }}
          >
            <label>
              How many
              <input name="count" type="number" min={1} max={100000} defaultValue={100} required />
            </label>
            <label>
              Partition key prefix
              <input name="prefix" placeholder="tenant-" />
            </label>
            <button type="submit" disabled={!can('admin') || generate.isPending}>
              Generate
            </button>
            {generated && <span role="status">{generated}</span>}
            {generate.error && <ErrorBox error={generate.error} />}
          </form>
        </Card>
      )}
    </div>
  )
}
