/**
 * The audit log: who (token name and role, or cli:<user>@<host>) did what, to which target, with
 * what result, when and from where -- newest first, filtered, a page of 100 at a time. Admin only
 * (it shows client addresses); the filters are kept in the URL.
 */
import type { AuditEntryDto } from '@dtq/app/schemas'
import { type Column, DataTable } from '../../components/DataTable'
import { QueryState } from '../../components/QueryState'
import { Card, FilterInput } from '../../components/ui'
import { ago, time } from '../../lib/format'
import { useUrlParams } from '../../lib/url-params'
import { useAudit } from './api/audit'

const SINCE: Record<string, number> = { '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000 }

const columns: Column<AuditEntryDto>[] = [
  { header: 'When', cell: (e) => ago(e.at), cellTitle: (e) => time(e.at) },
  {
    header: 'Actor',
    cell: (e) => (
      <>
        {e.actor} {e.role && <span className="chip">{e.role}</span>}
      </>
    ),
  },
  { header: 'Action', className: 'mono', cell: (e) => e.action },
  { header: 'Target', className: 'mono', cell: (e) => e.target || '—', cellTitle: (e) => e.detail },
  {
    header: 'Result',
    cell: (e) => (
      <span className={e.result === 'ok' ? 'result-ok' : 'result-error'}>
        {e.status} {e.result}
      </span>
    ),
  },
  { header: 'From', cell: (e) => e.ip || '—', cellTitle: (e) => e.user_agent },
  { header: 'Took', cell: (e) => `${e.duration_ms} ms` },
]

export function AuditPage() {
  const { get, update } = useUrlParams()
  const since = get('since')
  const filters = {
    actor: get('actor'),
    action: get('action'),
    target: get('target'),
    result: get('result'),
    // Rounded to the minute so the query key (and the page) stays put while it is shown.
    since: since && SINCE[since] ? Math.floor((Date.now() - SINCE[since]) / 60_000) * 60_000 : undefined,
    cursor: get('cursor'),
  }
  const q = useAudit(filters)
  /** A new filter starts from the newest entries. */
  const set = (k: string, v?: string) => update({ [k]: v, cursor: undefined })
  return (
    <div className="stack">
      <Card title="Audit log">
        <div className="filters">
          <FilterInput label="Actor" value={filters.actor} onChange={(v) => set('actor', v)} />
          <FilterInput label="Action contains" value={filters.action} onChange={(v) => set('action', v)} />
          <FilterInput label="Target contains" value={filters.target} onChange={(v) => set('target', v)} />
          <label>
            Result
            <select value={filters.result ?? ''} onChange={(e) => set('result', e.target.value || undefined)}>
              <option value="">any</option>
              <option value="ok">ok</option>
              <option value="error">any error</option>
              <option value="FORBIDDEN">FORBIDDEN</option>
              <option value="UNAUTHORIZED">UNAUTHORIZED</option>
              <option value="VALIDATION">VALIDATION</option>
              <option value="NOT_FOUND">NOT_FOUND</option>
            </select>
          </label>
          <label>
            Since
            <select value={since ?? ''} onChange={(e) => set('since', e.target.value || undefined)}>
              <option value="">any time</option>
              <option value="1h">last hour</option>
              <option value="24h">last 24 hours</option>
              <option value="7d">last 7 days</option>
            </select>
          </label>
        </div>
      </Card>
      <QueryState
        query={q}
        loading="Loading the audit log"
        isEmpty={(d) => !d.items.length}
        empty={
          <>No operator actions{Object.values(filters).some(Boolean) ? ' match these filters' : ' yet'}.</>
        }
      >
        {(d) => (
          <Card
            title="Operator actions, newest first"
            actions={
              <>
                {filters.cursor && (
                  <button type="button" onClick={() => update({ cursor: undefined })}>
                    Newest
                  </button>
                )}
                <button
                  type="button"
                  disabled={!d.next_cursor}
                  onClick={() => update({ cursor: d.next_cursor ?? undefined })}
                >
                  Older
                </button>
              </>
            }
          >
            <DataTable
              caption="Audit log, newest first"
              rows={d.items}
              columns={columns}
              rowKey={(e) => e.id}
            />
            {d.write_failures > 0 && (
              <p className="muted">
                {d.write_failures} audit write(s) failed on this API instance since it started (see its log).
              </p>
            )}
          </Card>
        )}
      </QueryState>
    </div>
  )
}
