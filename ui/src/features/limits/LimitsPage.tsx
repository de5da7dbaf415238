/**
 * A queue's flow control (ADR 0022): its limits -- rate, fleet-wide concurrency, FIFO or N per
 * partition key, and per task type rate, concurrency and breaker -- edited in one form, and what
 * they are doing now: jobs running under a cap, jobs held, breakers (open / close / reset by
 * hand, confirmed), task types paused by an upstream's 429.
 */
import type { LimitsBodyDto, LimitsDto } from '@dtq/app/schemas'
import { useState } from 'react'
import { Link, useParams } from 'react-router'
import { QueryState } from '../../components/QueryState'
import { Card, ConfirmButton, ErrorBox } from '../../components/ui'
import { useAuth } from '../../lib/auth'
import { ago, num, parseJsonText } from '../../lib/format'
import { useBreaker, useLimits, useSetLimits } from './api/limits'

export function LimitsPage() {
  const queue = useParams().queue ?? ''
  const q = useLimits(queue)
  return (
    <div className="stack">
      <p>
        <Link to="/queues">Queues</Link> › <strong>{queue}</strong> › limits
      </p>
      <QueryState query={q} loading="Loading limits">
        {(d) => (
          <>
            <LimitsForm queue={queue} view={d} />
            <LimitsNow queue={queue} view={d} />
          </>
        )}
      </QueryState>
    </div>
  )
}

function LimitsForm({ queue, view }: { queue: string; view: LimitsDto }) {
  const { can } = useAuth()
  const save = useSetLimits(queue)
  const l = view.limits
  const [types, setTypes] = useState(JSON.stringify(l.types ?? {}, null, 2))
  const parsed = parseJsonText(types)
  const [saved, setSaved] = useState<string | null>(null)
  return (
    <Card title={`Limits of queue ${queue}`}>
      <form
        className="form"
        onSubmit={async (e) => {
          e.preventDefault()
          if (parsed.error) return
          const f = new FormData(e.currentTarget)
          const n = (k: string) => (String(f.get(k) ?? '').trim() ? Number(f.get(k)) : undefined)
          const spec: LimitsBodyDto = {}
          const limit = n('rate_limit')
          const windowMs = n('rate_window_ms')
          if (limit !== undefined || windowMs !== undefined)
            spec.rate = { limit: limit ?? 0, window_ms: windowMs ?? 0 }
          if (n('concurrency') !== undefined) spec.concurrency = n('concurrency')
          if (n('key_concurrency') !== undefined) spec.key_concurrency = n('key_concurrency')
          const t = parsed.value as LimitsBodyDto['types']
          if (t && Object.keys(t).length) spec.types = t
          setSaved(null)
          const r = await save.mutateAsync(spec).catch(() => null)
          if (r) setSaved(`Saved.${r.released ? ` ${r.released} held jobs let go.` : ''}`)
        }}
      >
        <div className="row">
          <label>
            Rate: jobs
            <input name="rate_limit" type="number" min={1} defaultValue={l.rate?.limit} placeholder="none" />
          </label>
          <label>
            per ms
            <input
              name="rate_window_ms"
              type="number"
              min={1}
              defaultValue={l.rate?.window_ms}
              placeholder="1000"
            />
          </label>
          <label>
            Concurrency (fleet-wide)
            <input name="concurrency" type="number" min={1} defaultValue={l.concurrency} placeholder="none" />
          </label>
          <label>
            Per partition key
            <input
              name="key_concurrency"
              type="number"
              min={1}
              defaultValue={l.key_concurrency}
              placeholder="none (1: FIFO per key)"
            />
          </label>
        </div>
        <label>
          Per task type (JSON:{' '}
          {
            '{"<type>": {"rate": {"limit", "window_ms"}, "concurrency", "breaker": {"failures", "cooldown_ms"}}}'
          }
          )
          <textarea
            name="types"
            rows={6}
            value={types}
            onChange={(e) => setTypes(e.target.value)}
            aria-invalid={parsed.error ? true : undefined}
            spellCheck={false}
          />
          <span className={parsed.error ? 'error-text' : 'ok-text'}>
            {parsed.error ? `Invalid JSON: ${parsed.error}` : 'Valid JSON'}
          </span>
        </label>
        {save.error && <ErrorBox error={save.error} />}
        <div className="row">
          <button
            type="submit"
            className="primary"
            disabled={!can('admin') || !!parsed.error || save.isPending}
          >
            Save limits
          </button>
          <ConfirmButton
            danger
            title={`Remove every limit of ${queue}?`}
            body="Held jobs go back to their queue at once; breakers stop acting."
            confirmLabel="Remove limits"
            disabled={!can('admin')}
            onConfirm={async () => {
              const r = await save.mutateAsync({}).catch(() => null)
              if (r) {
                setTypes('{}')
                setSaved(`Limits removed.${r.released ? ` ${r.released} held jobs let go.` : ''}`)
              }
            }}
          >
            Remove all limits
          </ConfirmButton>
          {saved && <span role="status">{saved}</span>}
        </div>
        {!can('admin') && <p className="muted">Changing limits needs an admin token.</p>}
      </form>
    </Card>
  )
}

function LimitsNow({ queue, view }: { queue: string; view: LimitsDto }) {
  const { can } = useAuth()
  const breaker = useBreaker(queue)
  const breakers = Object.entries(view.breakers)
  const typeRunning = Object.entries(view.running.types)
  return (
    <Card title="Now">
      <dl className="facts">
        <dt>Running under the queue cap</dt>
        <dd>
          {view.running.queue === null
            ? '— (no cap)'
            : `${num(view.running.queue)} of ${num(view.limits.concurrency ?? 0)}`}
        </dd>
        {typeRunning.map(([t, n]) => (
          <div key={t} className="contents">
            <dt>Running {t}</dt>
            <dd>
              {num(n)} of {num(view.limits.types?.[t]?.concurrency ?? 0)}
            </dd>
          </div>
        ))}
        <dt>Held</dt>
        <dd>
          {view.held.length === 0
            ? 'none'
            : view.held
                .map((h) => `${num(h.count)} for ${h.reason === 'key' ? `key ${h.scope}` : h.scope}`)
                .join(' · ')}
        </dd>
      </dl>
      {breaker.error && <ErrorBox error={breaker.error} />}
      {breakers.length > 0 && (
        <div className="table-wrap">
          <table className="data-table breakers-table">
            <caption className="sr-only">Breakers of queue {queue}, by task type</caption>
            <thead>
              <tr>
                <th scope="col">Task type</th>
                <th scope="col">Breaker</th>
                <th scope="col">Failures</th>
                <th scope="col">Until</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {breakers.map(([type, b]) => (
                <tr key={type} data-breaker={type}>
                  <th scope="row" className="mono">
                    {type}
                  </th>
                  <td data-label="Breaker">
                    <span
                      className={`badge state-${b.state === 'closed' ? 'completed' : b.state === 'open' ? 'failed' : 'retrying'}`}
                    >
                      {b.state.replace('_', '-')}
                    </span>
                    {view.paused[type] ? <span className="muted"> · paused</span> : null}
                  </td>
                  <td data-label="Failures">{num(b.failures)}</td>
                  <td data-label="Until">
                    {b.open_until ? ago(b.open_until) : view.paused[type] ? ago(view.paused[type]) : '—'}
                  </td>
                  <td className="actions">
                    {(['open', 'close', 'reset'] as const).map((action) => (
                      <ConfirmButton
                        key={action}
                        danger={action === 'open'}
                        title={`${action[0]!.toUpperCase()}${action.slice(1)} the breaker of ${type}?`}
                        body={
                          action === 'open'
                            ? `Jobs of ${type} in ${queue} wait until its cool-down ends, then one probe runs.`
                            : action === 'close'
                              ? `Jobs of ${type} run again (a pause from an upstream's 429 ends too).`
                              : 'Its failure count and state are forgotten.'
                        }
                        confirmLabel={action}
                        disabled={!can('admin')}
                        onConfirm={() => breaker.mutateAsync({ type, action }).catch(() => null)}
                      >
                        {action[0]!.toUpperCase() + action.slice(1)}
                      </ConfirmButton>
                    ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  )
}
