/**
 * Alerts (ADR 0025): what fires and what is pending -- acknowledge, silence -- the live
 * silences, the rules (built-in ones from the settings, stored ones; enable, disable, add or
 * replace, delete), the history, and a test alert through each configured channel.
 */
import type { AlertDto, AlertRuleDto, HistoryEntryDto, SilenceDto } from '@dtq/app/alert-schemas'
import { useState } from 'react'
import { type Column, DataTable } from '../../components/DataTable'
import { QueryState } from '../../components/QueryState'
import { Card, ConfirmButton, ErrorBox } from '../../components/ui'
import { useAuth } from '../../lib/auth'
import { ago, time } from '../../lib/format'
import {
  type RuleInput,
  useAck,
  useAddSilence,
  useAlerts,
  useDeleteRule,
  useEndSilence,
  useHistory,
  useRules,
  useSaveRule,
  useSilences,
  useTestAlert,
} from './api/alerts'

const KINDS = [
  'dlq_depth',
  'dlq_growth',
  'failure_rate',
  'no_worker',
  'oldest_waiting',
  'breaker_open',
] as const
const labelsOf = (l: { queue: string; task_type?: string }) =>
  l.task_type ? `${l.queue} / ${l.task_type}` : l.queue

export function AlertsPage() {
  return (
    <div className="stack">
      <AlertsNow />
      <Silences />
      <Rules />
      <History />
    </div>
  )
}

function SeverityBadge({ severity }: { severity: string }) {
  return <span className={`badge severity-${severity}`}>{severity}</span>
}

function AlertsNow() {
  const q = useAlerts()
  const { can } = useAuth()
  const ack = useAck()
  const silence = useAddSilence()
  const test = useTestAlert()
  const columns: Column<AlertDto>[] = [
    { header: 'Severity', cell: (a) => <SeverityBadge severity={a.severity} /> },
    {
      header: 'Status',
      cell: (a) => (
        <span className={`badge alert-${a.status}`}>
          {a.status}
          {a.acknowledged ? ' · acked' : ''}
          {a.silenced_by ? ' · silenced' : ''}
        </span>
      ),
    },
    { header: 'Alert', cell: (a) => a.id, className: 'mono' },
    { header: 'Where', cell: (a) => labelsOf(a.labels) },
    { header: 'What', cell: (a) => a.summary },
    {
      header: 'Since',
      cell: (a) => ago(a.fired_at ?? a.since),
      cellTitle: (a) => time(a.fired_at ?? a.since),
    },
    {
      header: 'Actions',
      hideHeader: true,
      cell: (a) => (
        <div className="actions">
          {a.status === 'firing' && !a.acknowledged && (
            <button type="button" disabled={!can('write') || ack.isPending} onClick={() => ack.mutate(a.id)}>
              Acknowledge
            </button>
          )}
          {a.acknowledged && <span title={time(a.acknowledged.at)}>acked by {a.acknowledged.by}</span>}
          {!a.silenced_by && (
            <ConfirmButton
              title={`Silence ${a.id} for 1 hour`}
              body={`Notifications of rule ${a.rule} on ${labelsOf(a.labels)} are held for an hour.`}
              confirmLabel="Silence 1 h"
              disabled={!can('write')}
              onConfirm={() =>
                silence.mutateAsync({
                  rule: a.rule,
                  queue: a.labels.queue,
                  task_type: a.labels.task_type,
                  duration_ms: 3_600_000,
                  comment: 'from the console',
                })
              }
            >
              Silence 1 h
            </ConfirmButton>
          )}
        </div>
      ),
    },
  ]
  return (
    <Card
      title="Alerts"
      actions={
        <button type="button" disabled={!can('write') || test.isPending} onClick={() => test.mutate()}>
          Send test alert
        </button>
      }
    >
      {test.error ? <ErrorBox error={test.error} /> : null}
      {test.data && (
        <ul aria-label="Test alert results">
          {test.data.results.length === 0 && <li>No channel is configured (see README, Alerts).</li>}
          {test.data.results.map((r) => (
            <li key={r.channel}>
              {r.channel}: {r.ok ? 'sent' : `failed: ${r.error}`} ({r.ms} ms)
            </li>
          ))}
        </ul>
      )}
      <QueryState
        query={q}
        loading="Loading alerts"
        isEmpty={(d) => d.alerts.length === 0}
        empty="Nothing firing or pending."
      >
        {(d) => (
          <>
            <p>
              {d.firing} firing, {d.pending} pending · channels:{' '}
              {d.channels.length ? d.channels.join(', ') : 'none configured'}
            </p>
            <DataTable caption="Alerts" rows={d.alerts} columns={columns} rowKey={(a) => a.id} />
          </>
        )}
      </QueryState>
    </Card>
  )
}

function Silences() {
  const q = useSilences()
  const { can } = useAuth()
  const add = useAddSilence()
  const end = useEndSilence()
  const columns: Column<SilenceDto>[] = [
    { header: 'Rule', cell: (s) => s.rule ?? 'any' },
    { header: 'Queue', cell: (s) => s.queue ?? 'any' },
    { header: 'Task type', cell: (s) => s.task_type ?? 'any' },
    { header: 'Until', cell: (s) => time(s.until) },
    { header: 'By', cell: (s) => s.created_by },
    { header: 'Comment', cell: (s) => s.comment },
    {
      header: 'Actions',
      hideHeader: true,
      cell: (s) => (
        <button type="button" disabled={!can('write')} onClick={() => end.mutate(s.id)}>
          End
        </button>
      ),
    },
  ]
  return (
    <Card title="Silences">
      <form
        className="form"
        aria-label="New silence"
        onSubmit={async (e) => {
          e.preventDefault()
          const f = new FormData(e.currentTarget)
          const s = (k: string) => String(f.get(k) ?? '').trim() || undefined
          await add.mutateAsync({
            rule: s('rule'),
            queue: s('queue'),
            task_type: s('task_type'),
            duration_ms: Number(f.get('minutes')) * 60_000,
            comment: s('comment'),
          })
          e.currentTarget?.reset()
        }}
      >
        <div className="row">
          <label>
            Rule
            <input name="rule" placeholder="any" />
          </label>
          <label>
            Queue
            <input name="queue" placeholder="any" />
          </label>
          <label>
            Task type
            <input name="task_type" placeholder="any" />
          </label>
          <label>
            For (minutes)
            <input name="minutes" type="number" min={1} step={1} defaultValue={60} required />
          </label>
          <label>
            Comment
            <input name="comment" />
          </label>
          <button type="submit" className="primary" disabled={!can('write') || add.isPending}>
            Silence
          </button>
        </div>
        {add.error ? <ErrorBox error={add.error} /> : null}
      </form>
      <QueryState
        query={q}
        loading="Loading silences"
        isEmpty={(d) => d.silences.length === 0}
        empty="No silence."
      >
        {(d) => <DataTable caption="Silences" rows={d.silences} columns={columns} rowKey={(s) => s.id} />}
      </QueryState>
    </Card>
  )
}

function Rules() {
  const q = useRules()
  const { can } = useAuth()
  const save = useSaveRule()
  const del = useDeleteRule()
  const [editing, setEditing] = useState<AlertRuleDto | null>(null)
  // A new key after each save: the form starts empty again.
  const [round, setRound] = useState(0)
  const body = (r: AlertRuleDto, change: Partial<RuleInput>) => {
    const { id, builtin: _b, overridden: _o, ...rest } = r
    return { id, rule: { ...rest, ...change } }
  }
  const columns: Column<AlertRuleDto>[] = [
    { header: 'Rule', cell: (r) => r.id, className: 'mono' },
    { header: 'Kind', cell: (r) => r.kind },
    { header: 'Scope', cell: (r) => (r.task_type === '*' ? r.queue : `${r.queue} / ${r.task_type}`) },
    {
      header: 'Threshold',
      cell: (r) => (r.kind === 'no_worker' || r.kind === 'breaker_open' ? '—' : r.threshold),
    },
    {
      header: 'Window',
      cell: (r) => (r.kind === 'dlq_growth' || r.kind === 'failure_rate' ? `${r.window_ms / 1000} s` : '—'),
    },
    { header: 'For', cell: (r) => `${r.for_ms / 1000} s` },
    { header: 'Severity', cell: (r) => <SeverityBadge severity={r.severity} /> },
    {
      header: 'Source',
      cell: (r) => (r.builtin ? (r.overridden ? 'settings, overridden' : 'settings') : 'stored'),
    },
    {
      header: 'Enabled',
      cell: (r) => (
        <input
          type="checkbox"
          aria-label={`enable ${r.id}`}
          checked={r.enabled}
          disabled={!can('admin')}
          onChange={(e) => save.mutate(body(r, { enabled: e.target.checked }))}
        />
      ),
    },
    {
      header: 'Actions',
      hideHeader: true,
      cell: (r) => (
        <div className="actions">
          <button type="button" disabled={!can('admin')} onClick={() => setEditing(r)}>
            Edit
          </button>
          {(!r.builtin || r.overridden) && (
            <ConfirmButton
              title={r.builtin ? `Revert ${r.id} to its settings` : `Delete rule ${r.id}`}
              body={
                r.builtin ? 'The stored override is removed.' : 'The rule is removed; its alerts resolve.'
              }
              confirmLabel={r.builtin ? 'Revert' : 'Delete'}
              danger
              disabled={!can('admin')}
              onConfirm={() => del.mutateAsync(r.id)}
            >
              {r.builtin ? 'Revert' : 'Delete'}
            </ConfirmButton>
          )}
        </div>
      ),
    },
  ]
  return (
    <Card title="Rules">
      <QueryState query={q} loading="Loading rules">
        {(d) => <DataTable caption="Alert rules" rows={d.rules} columns={columns} rowKey={(r) => r.id} />}
      </QueryState>
      {save.error ? <ErrorBox error={save.error} /> : null}
      <RuleForm
        key={`${editing?.id ?? 'new'}-${round}`}
        editing={editing}
        onDone={() => {
          setEditing(null)
          setRound((n) => n + 1)
        }}
      />
    </Card>
  )
}

function RuleForm({ editing, onDone }: { editing: AlertRuleDto | null; onDone: () => void }) {
  const { can } = useAuth()
  const save = useSaveRule()
  const [kind, setKind] = useState<AlertRuleDto['kind']>(editing?.kind ?? 'dlq_depth')
  return (
    <form
      className="form"
      aria-label="Rule"
      onSubmit={async (e) => {
        e.preventDefault()
        const f = new FormData(e.currentTarget)
        const n = (k: string) => (String(f.get(k) ?? '').trim() === '' ? undefined : Number(f.get(k)))
        const s = (k: string) => String(f.get(k) ?? '').trim() || undefined
        await save.mutateAsync({
          id: String(f.get('id')).trim(),
          rule: {
            kind,
            queue: s('queue') ?? '*',
            task_type: s('task_type') ?? '*',
            threshold: n('threshold'),
            window_ms: n('window_s') === undefined ? undefined : n('window_s')! * 1000,
            for_ms: n('for_s') === undefined ? undefined : n('for_s')! * 1000,
            severity: (s('severity') ?? 'warning') as AlertRuleDto['severity'],
            enabled: true,
            description: s('description'),
          },
        })
        onDone()
      }}
    >
      <h3>{editing ? `Edit rule ${editing.id}` : 'Add or replace a rule'}</h3>
      <div className="row">
        <label>
          Id
          <input
            name="id"
            required
            defaultValue={editing?.id}
            readOnly={!!editing}
            pattern="[A-Za-z0-9_.\-]{1,64}"
          />
        </label>
        <label>
          Kind
          <select name="kind" value={kind} onChange={(e) => setKind(e.target.value as AlertRuleDto['kind'])}>
            {KINDS.map((k) => (
              <option key={k}>{k}</option>
            ))}
          </select>
        </label>
        <label>
          Queue
          <input name="queue" placeholder="*" defaultValue={editing?.queue === '*' ? '' : editing?.queue} />
        </label>
        {(kind === 'failure_rate' || kind === 'breaker_open') && (
          <label>
            Task type
            <input
              name="task_type"
              placeholder="*"
              defaultValue={editing?.task_type === '*' ? '' : editing?.task_type}
            />
          </label>
        )}
        {kind !== 'no_worker' && kind !== 'breaker_open' && (
          <label>
            Threshold{kind === 'failure_rate' ? ' (0..1)' : kind === 'oldest_waiting' ? ' (ms)' : ''}
            <input
              name="threshold"
              type="number"
              min={0}
              step="any"
              required
              defaultValue={editing?.threshold}
            />
          </label>
        )}
        {(kind === 'dlq_growth' || kind === 'failure_rate') && (
          <label>
            Window (s)
            <input
              name="window_s"
              type="number"
              min={1}
              step={1}
              defaultValue={(editing?.window_ms ?? 300_000) / 1000}
            />
          </label>
        )}
        <label>
          For (s)
          <input name="for_s" type="number" min={0} step={1} defaultValue={(editing?.for_ms ?? 0) / 1000} />
        </label>
        <label>
          Severity
          <select name="severity" defaultValue={editing?.severity ?? 'warning'}>
            <option>info</option>
            <option>warning</option>
            <option>critical</option>
          </select>
        </label>
        <label>
          Description
          <input name="description" defaultValue={editing?.description} />
        </label>
      </div>
      <div className="row">
        <button type="submit" className="primary" disabled={!can('admin') || save.isPending}>
          Save rule
        </button>
        {editing && (
          <button type="button" onClick={onDone}>
            Cancel
          </button>
        )}
      </div>
      {save.error ? <ErrorBox error={save.error} /> : null}
    </form>
  )
}

function History() {
  const q = useHistory()
  const columns: Column<HistoryEntryDto>[] = [
    { header: 'When', cell: (h) => time(h.at) },
    { header: 'Event', cell: (h) => h.type },
    { header: 'Alert', cell: (h) => h.alert ?? '', className: 'mono' },
    { header: 'Detail', cell: (h) => h.summary ?? h.error ?? '' },
    { header: 'By', cell: (h) => h.by ?? h.channel ?? '' },
  ]
  return (
    <Card title="History">
      <QueryState
        query={q}
        loading="Loading history"
        isEmpty={(d) => d.entries.length === 0}
        empty="Nothing yet."
      >
        {(d) => <DataTable caption="Alert history" rows={d.entries} columns={columns} rowKey={(h) => h.id} />}
      </QueryState>
    </Card>
  )
}
