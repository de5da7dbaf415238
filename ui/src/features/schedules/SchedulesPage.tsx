/**
 * Schedules (ADR 0018): the list with next run and last outcome, pause/resume, trigger now; a
 * create/edit form whose next five fire times are previewed in the schedule's zone (computed
 * by the API, as the runners compute them); the selected schedule's history, linking to its
 * jobs.
 */
import type { FireRecordDto, ScheduleDto, ScheduleInputDto } from '@dtq/app/schemas'
import { useState } from 'react'
import { Link, useSearchParams } from 'react-router'
import { type Column, DataTable } from '../../components/DataTable'
import { QueryState } from '../../components/QueryState'
import { Card, ConfirmButton, ErrorBox, StateBadge } from '../../components/ui'
import { useAuth } from '../../lib/auth'
import { parseJsonText, timeIn } from '../../lib/format'
import { jobPath } from '../../lib/job-ref'
import {
  useDeleteSchedule,
  usePreview,
  useSaveSchedule,
  useSchedule,
  useScheduleAction,
  useSchedules,
} from './api/schedules'

/** A time as a datetime-local input's value, in the browser's wall time ('' for none). */
function localInput(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return ''
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000)
  return d.toISOString().slice(0, 19)
}

const when = (s: ScheduleDto) => (s.cron ? `${s.cron} (${s.tz})` : `every ${s.every_ms} ms`)

/** The create/edit form; `editing` fills it from a stored schedule. */
function ScheduleForm({
  editing,
  onSaved,
}: {
  editing: ScheduleDto | null
  onSaved: (name: string) => void
}) {
  const { can } = useAuth()
  const save = useSaveSchedule()
  const job = (editing?.job ?? {}) as { task_type?: string; queue?: string; payload?: unknown }
  const [mode, setMode] = useState<'cron' | 'every'>(editing && !editing.cron ? 'every' : 'cron')
  const [cron, setCron] = useState(editing?.cron ?? '0 */5 * * * *')
  const [tz, setTz] = useState(editing?.tz ?? 'UTC')
  const [misfire, setMisfire] = useState(editing?.misfire ?? 'skip')
  const [payload, setPayload] = useState(JSON.stringify(job.payload ?? {}, null, 2))
  const parsed = parseJsonText(payload)
  const preview = usePreview(mode === 'cron' ? cron : '', tz)
  return (
    <form
      className="form"
      aria-label="Schedule"
      onSubmit={async (e) => {
        e.preventDefault()
        if (parsed.error) return
        const f = new FormData(e.currentTarget)
        const s = (k: string) => (String(f.get(k) ?? '').trim() ? String(f.get(k)).trim() : undefined)
        const name = String(f.get('name')).trim()
        const n = (k: string) => (s(k) === undefined ? undefined : Number(s(k)))
        // datetime-local holds the browser's wall time: sent as ms since the epoch.
        const t = (k: string) => (s(k) === undefined ? undefined : new Date(s(k)!).getTime())
        const body: ScheduleInputDto = {
          ...(mode === 'cron' ? { cron, tz } : { every_ms: n('every_ms') }),
          job: { task_type: String(f.get('task_type')).trim(), queue: s('queue'), payload: parsed.value },
          overlap: s('overlap') as ScheduleInputDto['overlap'],
          misfire: misfire as ScheduleInputDto['misfire'],
          catch_up_max: misfire === 'catch_up' ? n('catch_up_max') : undefined,
          start_at: t('start_at'),
          end_at: t('end_at'),
          max_runs: n('max_runs'),
        }
        await save.mutateAsync({ name, body })
        onSaved(name)
      }}
    >
      <div className="row">
        <label>
          Name
          <input
            name="name"
            required
            defaultValue={editing?.name}
            readOnly={!!editing}
            pattern="[A-Za-z0-9_.\-]{1,128}"
          />
        </label>
        <label>
          Fires
          <select name="mode" value={mode} onChange={(e) => setMode(e.target.value as 'cron' | 'every')}>
            <option value="cron">on a cron expression</option>
            <option value="every">every N ms</option>
          </select>
        </label>
        {mode === 'cron' ? (
          <>
            <label>
              Cron (seconds first; 5 fields also work)
              <input
                name="cron"
                required
                value={cron}
                onChange={(e) => setCron(e.target.value)}
                spellCheck={false}
              />
            </label>
            <label>
              Time zone
              <input name="tz" required value={tz} onChange={(e) => setTz(e.target.value)} list="zones" />
              <datalist id="zones">
                {['UTC', 'Europe/Berlin', 'Europe/London', 'America/New_York', 'Asia/Tokyo'].map((z) => (
                  <option key={z} value={z} />
                ))}
              </datalist>
            </label>
          </>
        ) : (
          <label>
            Every (ms)
            <input
              name="every_ms"
              type="number"
              required
              min={1000}
              step={1}
              defaultValue={editing?.every_ms ?? 60_000}
            />
          </label>
        )}
      </div>
      {mode === 'cron' && (
        <section aria-label="Next fire times">
          <strong>Next five fire times ({tz})</strong>
          {preview.error ? (
            <p className="error-text">{(preview.error as Error).message}</p>
          ) : (
            <ol className="mono">
              {(preview.data?.times ?? []).map((t) => (
                <li key={t}>{timeIn(t, preview.data?.tz ?? tz)}</li>
              ))}
            </ol>
          )}
        </section>
      )}
      <div className="row">
        <label>
          Task type
          <input name="task_type" required defaultValue={job.task_type ?? 'echo'} />
        </label>
        <label>
          Queue
          <input name="queue" placeholder="default" defaultValue={job.queue} />
        </label>
        <label>
          Overlap
          <select name="overlap" defaultValue={editing?.overlap ?? 'allow'}>
            <option>allow</option>
            <option>skip</option>
            <option>queue_one</option>
          </select>
        </label>
        <label>
          After downtime
          <select name="misfire" value={misfire} onChange={(e) => setMisfire(e.target.value)}>
            <option>skip</option>
            <option>run_once</option>
            <option>catch_up</option>
          </select>
        </label>
        {misfire === 'catch_up' && (
          <label>
            Catch up at most
            <input
              name="catch_up_max"
              type="number"
              min={1}
              step={1}
              defaultValue={editing?.catch_up_max ?? 10}
            />
          </label>
        )}
      </div>
      <div className="row">
        <label>
          Starts (empty: now)
          <input
            name="start_at"
            type="datetime-local"
            step={1}
            defaultValue={localInput(editing?.start_at)}
          />
        </label>
        <label>
          Ends (empty: never)
          <input name="end_at" type="datetime-local" step={1} defaultValue={localInput(editing?.end_at)} />
        </label>
        <label>
          Run limit (empty: none)
          <input
            name="max_runs"
            type="number"
            min={1}
            step={1}
            defaultValue={editing?.max_runs ?? undefined}
          />
        </label>
      </div>
      <label>
        Payload (JSON)
        <textarea rows={4} value={payload} onChange={(e) => setPayload(e.target.value)} spellCheck={false} />
        {parsed.error && <span className="error-text">Invalid JSON: {parsed.error}</span>}
      </label>
      {save.error && <ErrorBox error={save.error} />}
      <button type="submit" className="primary" disabled={!!parsed.error || !can('write') || save.isPending}>
        Save schedule
      </button>
    </form>
  )
}

function History({ name }: { name: string }) {
  const q = useSchedule(name)
  const columns: Column<FireRecordDto>[] = [
    { header: 'Fire time', className: 'mono', cell: (h) => timeIn(h.at, q.data?.tz ?? 'UTC') },
    { header: 'Outcome', cell: (h) => h.outcome },
    {
      header: 'Job',
      className: 'mono',
      cell: (h) =>
        h.job_id && q.data ? (
          <Link to={jobPath({ id: h.job_id, queue: q.data.queue })}>{h.job_id}</Link>
        ) : (
          '—'
        ),
    },
    { header: 'Job state', cell: (h) => (h.job_state ? <StateBadge state={h.job_state} /> : '—') },
  ]
  return (
    <Card title={`History of ${name}`}>
      <QueryState
        query={q}
        loading="Loading history"
        isEmpty={(d) => !d.history.length}
        empty="No fires yet."
      >
        {(d) => (
          <DataTable
            caption="Fire history"
            rows={d.history}
            columns={columns}
            rowKey={(h) => `${h.at}-${h.job_id ?? h.outcome}`}
          />
        )}
      </QueryState>
    </Card>
  )
}

export function SchedulesPage() {
  const q = useSchedules()
  const act = useScheduleAction()
  const del = useDeleteSchedule()
  const { can } = useAuth()
  const [params, setParams] = useSearchParams()
  const selected = params.get('name')
  const [editing, setEditing] = useState<ScheduleDto | null>(null)
  // A new form after each save (an empty one, not the schedule just saved).
  const [saves, setSaves] = useState(0)
  const select = (name: string | null) => setParams(name ? { name } : {})
  const columns: Column<ScheduleDto>[] = [
    {
      header: 'Name',
      className: 'mono',
      cell: (s) => (
        <button type="button" className="link" onClick={() => select(s.name)}>
          {s.name}
        </button>
      ),
    },
    { header: 'When', className: 'mono', cell: when },
    { header: 'Queue', cell: (s) => s.queue },
    { header: 'Next run', className: 'mono', cell: (s) => (s.paused ? 'paused' : timeIn(s.next_fire, s.tz)) },
    { header: 'Last outcome', cell: (s) => (s.last_outcome ? <StateBadge state={s.last_outcome} /> : '—') },
    { header: 'Runs', cell: (s) => s.runs },
    {
      header: 'Actions',
      hideHeader: true,
      cell: (s) => (
        <>
          <button
            type="button"
            disabled={!can('write')}
            aria-label={`${s.paused ? 'resume' : 'pause'} ${s.name}`}
            onClick={() => act.mutate({ name: s.name, action: s.paused ? 'resume' : 'pause' })}
          >
            {s.paused ? 'Resume' : 'Pause'}
          </button>
          <button
            type="button"
            disabled={!can('write')}
            aria-label={`trigger ${s.name}`}
            onClick={() => {
              act.mutate({ name: s.name, action: 'trigger' })
              select(s.name)
            }}
          >
            Trigger now
          </button>
          <button
            type="button"
            disabled={!can('write')}
            aria-label={`edit ${s.name}`}
            onClick={() => setEditing(s)}
          >
            Edit
          </button>
          <ConfirmButton
            danger
            disabled={!can('admin')}
            title={`Delete schedule ${s.name}`}
            body="The schedule and its history go; the jobs it made stay."
            confirmLabel="Delete"
            onConfirm={() => del.mutateAsync(s.name)}
          >
            Delete
          </ConfirmButton>
        </>
      ),
    },
  ]
  return (
    <div className="stack">
      <Card title="Schedules">
        {(act.error || del.error) && <ErrorBox error={act.error ?? del.error} />}
        <QueryState
          query={q}
          loading="Loading schedules"
          isEmpty={(d) => !d.items.length}
          empty="No schedules yet: create one below."
        >
          {(d) => <DataTable caption="Schedules" rows={d.items} columns={columns} rowKey={(s) => s.name} />}
        </QueryState>
      </Card>
      <Card title={editing ? `Edit schedule ${editing.name}` : 'New schedule'}>
        <ScheduleForm
          key={editing ? `edit-${editing.name}` : `new-${saves}`}
          editing={editing}
          onSaved={(name) => {
            setEditing(null)
            setSaves((n) => n + 1)
            select(name)
          }}
        />
      </Card>
      {selected && <History name={selected} />}
    </div>
  )
}
