/**
 * Analytics over the history in PostgreSQL (GET /analytics/*, ADR 0030): throughput stacked by
 * state, failure rate per task type, wait and run percentiles, top error classes (with a link to
 * the dead letters), slowest task types, per-worker rates. Range, bucket, queue and type live in
 * the URL. Without a history (409 HISTORY_DISABLED) the page says how to enable it.
 */
import { useMemo, useState } from 'react'
import { Link } from 'react-router'
import { Lines, PALETTE, type Series, StackedBars } from '../../components/charts'
import { type Column, DataTable } from '../../components/DataTable'
import { type QueryLike, QueryState } from '../../components/QueryState'
import { Card, ErrorBox, FilterInput, Loading } from '../../components/ui'
import { ApiError } from '../../lib/api'
import { ago, duration, num, time } from '../../lib/format'
import { useUrlParams } from '../../lib/url-params'
import {
  type Bucket,
  type ErrorClassDto,
  type Filters,
  type SlowDto,
  useFailureRate,
  useHistoryStatus,
  useLatency,
  useSlowest,
  useThroughput,
  useTopErrors,
  useWorkerRates,
  type WorkerDto,
} from './api/analytics'

const HOUR = 3_600_000
const DAY = 24 * HOUR
const BUCKET_MS: Record<Bucket, number> = { hour: HOUR, day: DAY }
const RANGES: Record<string, number> = { '24h': DAY, '7d': 7 * DAY, '30d': 30 * DAY, '90d': 90 * DAY }
/** Hour buckets are allowed up to 2000 of them (the API's bound): not over 90 days. */
const HOUR_MAX = 80 * DAY

/** Every bucket start of [from, to). */
function bucketsOf(from: number, to: number, ms: number): number[] {
  const out: number[] = []
  for (let t = Math.floor(from / ms) * ms; t < to; t += ms) out.push(t)
  return out
}

const label = (bucket: Bucket) => (t: number) =>
  bucket === 'day' ? new Date(t).toISOString().slice(0, 10) : `${new Date(t).toISOString().slice(0, 13)}:00Z`

export function AnalyticsPage() {
  const { get, update } = useUrlParams()
  // The end of the range: the next full hour from when the page opened (a stable query key).
  const [now, setNow] = useState(() => Math.ceil(Date.now() / HOUR) * HOUR)
  const range = get('range') ?? '7d'
  const span = RANGES[range] ?? RANGES['7d']!
  const to = Number(get('to')) || now
  const from = Number(get('from')) || to - span
  const bucket: Bucket = get('bucket') === 'day' || to - from > HOUR_MAX ? 'day' : 'hour'
  const filters: Filters = { from, to, bucket, queue: get('queue'), task_type: get('type') }
  const throughput = useThroughput(filters)
  const disabled = throughput.error instanceof ApiError && throughput.error.code === 'HISTORY_DISABLED'

  return (
    <div className="stack">
      <Card
        title="Analytics"
        actions={
          <button type="button" onClick={() => setNow(Math.ceil(Date.now() / HOUR) * HOUR)}>
            Refresh
          </button>
        }
      >
        <div className="filters">
          <label>
            Range
            <select
              value={get('from') ? '' : range}
              onChange={(e) => update({ range: e.target.value, from: undefined, to: undefined })}
            >
              {get('from') && <option value="">custom</option>}
              <option value="24h">last 24 hours</option>
              <option value="7d">last 7 days</option>
              <option value="30d">last 30 days</option>
              <option value="90d">last 90 days</option>
            </select>
          </label>
          <label>
            Bucket
            <select value={bucket} onChange={(e) => update({ bucket: e.target.value })}>
              <option value="hour" disabled={to - from > HOUR_MAX}>
                hour
              </option>
              <option value="day">day</option>
            </select>
          </label>
          <FilterInput label="Queue" value={filters.queue} onChange={(v) => update({ queue: v })} />
          <FilterInput label="Task type" value={filters.task_type} onChange={(v) => update({ type: v })} />
        </div>
        <p className="muted">
          {time(from)} – {time(to)} · jobs that ended in the range, from the history in PostgreSQL
          {!disabled && <Freshness />}
        </p>
      </Card>
      {disabled ? (
        <HistoryDisabled />
      ) : throughput.isPending ? (
        <Loading what="Loading analytics" />
      ) : throughput.error ? (
        <ErrorBox error={throughput.error} retry={() => throughput.refetch()} />
      ) : (
        <Panels f={filters} />
      )}
    </div>
  )
}

/** How far the archivers are behind: what finished since is not counted yet. */
function Freshness() {
  const q = useHistoryStatus()
  const s = q.data
  if (!s) return null
  if (!s.enabled)
    return (
      <>
        {' '}
        · archiving is off (no <code>dtq archiver</code> has run)
      </>
    )
  return (
    <span data-testid="freshness">
      {' '}
      ·{' '}
      {s.backlog === 0
        ? 'archivers up to date'
        : `${num(s.backlog)} finishing calls not archived yet (${duration(s.lag_ms)} behind)`}
      {s.last_archived_at ? `, last write ${ago(s.last_archived_at)}` : ''}
    </span>
  )
}

function HistoryDisabled() {
  return (
    <Card title="History is not enabled">
      <div role="note" className="empty">
        <p>
          Analytics read the history of finished jobs in PostgreSQL, and this API has none: its{' '}
          <code>DATABASE_URL</code> is not set. Everything else works as it is.
        </p>
        <p>To enable it, point the API and an archiver at a PostgreSQL database:</p>
        <pre>
          DATABASE_URL=postgres://user:password@db:5432/dtq pnpm dtq archiver{'\n'}
          DATABASE_URL=postgres://user:password@db:5432/dtq pnpm dtq api
        </pre>
        <p>
          With Docker: the <code>history</code> profile, and <code>API_DATABASE_URL</code> for the API
          (README, "History"). Jobs that finish from then on appear here.
        </p>
      </div>
    </Card>
  )
}

function Panels({ f }: { f: Filters }) {
  const buckets = useMemo(() => bucketsOf(f.from, f.to, BUCKET_MS[f.bucket]), [f.from, f.to, f.bucket])
  const index = useMemo(() => new Map(buckets.map((t, i) => [t, i])), [buckets])
  const lbl = label(f.bucket)
  const throughput = useThroughput(f)
  const rate = useFailureRate(f)
  const latency = useLatency(f)
  const errors = useTopErrors(f)
  const slowest = useSlowest(f)
  const workers = useWorkerRates(f)

  /** Values per bucket from rows with `at`. */
  const along = <T extends { at: number }>(rows: T[], v: (r: T) => number | null, zero: number | null) => {
    const out: Array<number | null> = buckets.map(() => zero)
    for (const r of rows) {
      const i = index.get(r.at)
      if (i !== undefined) out[i] = (out[i] ?? 0) + (v(r) ?? 0)
    }
    return out
  }

  return (
    <>
      <Card title="Throughput">
        <QueryState query={throughput} loading="Loading throughput">
          {(d) => (
            <StackedBars
              title="Jobs ended per bucket, by state"
              buckets={buckets}
              label={lbl}
              series={[
                { name: 'completed', color: 'var(--ok)', values: along(d.items, (r) => r.completed, 0) },
                { name: 'failed', color: 'var(--bad)', values: along(d.items, (r) => r.failed, 0) },
                { name: 'cancelled', color: 'var(--muted)', values: along(d.items, (r) => r.cancelled, 0) },
              ]}
            />
          )}
        </QueryState>
      </Card>
      <div className="grid2">
        <Card title="Failure rate by task type">
          <QueryState
            query={rate}
            loading="Loading failure rates"
            isEmpty={(d) => d.items.length === 0}
            empty="No job completed or failed in this range."
          >
            {(d) => {
              const types = [...new Set(d.items.map((r) => r.task_type))]
              const series: Series[] = types.map((t, i) => ({
                name: t,
                color: PALETTE[i % PALETTE.length]!,
                values: along(
                  d.items.filter((r) => r.task_type === t),
                  (r) => r.rate,
                  null,
                ),
              }))
              return (
                <Lines
                  title="Failed / (completed + failed) per bucket and task type"
                  buckets={buckets}
                  series={series}
                  label={lbl}
                  format={(v) => `${Math.round(v * 1000) / 10} %`}
                />
              )
            }}
          </QueryState>
        </Card>
        <Card title="Top error classes">
          <QueryState
            query={errors}
            loading="Loading errors"
            isEmpty={(d) => d.items.length === 0}
            empty="No failed attempt in this range."
          >
            {(d) => <ErrorsTable rows={d.items} />}
          </QueryState>
        </Card>
      </div>
      <QueryState query={latency} loading="Loading latency">
        {(d) => (
          <div className="grid2">
            {(['wait_ms', 'run_ms'] as const).map((k) => (
              <Card key={k} title={k === 'wait_ms' ? 'Wait time (queued → started)' : 'Run time'}>
                <Lines
                  title={`${k === 'wait_ms' ? 'Wait' : 'Run'} time percentiles per bucket`}
                  buckets={buckets}
                  label={lbl}
                  format={(v) => duration(v)}
                  series={(['p50', 'p95', 'p99'] as const).map((p, i) => ({
                    name: p,
                    color: PALETTE[i]!,
                    values: along(d.items, (r) => r[k][p], null),
                  }))}
                />
              </Card>
            ))}
          </div>
        )}
      </QueryState>
      <div className="grid2">
        <ListCard
          title="Slowest task types (p95 run time)"
          query={slowest}
          empty="No job ran in this range."
          columns={slowColumns}
          rowKey={(r) => r.task_type}
        />
        <ListCard
          title="Workers"
          query={workers}
          empty="No attempt ended in this range."
          columns={workerColumns}
          rowKey={(r) => r.worker}
        />
      </div>
    </>
  )
}

/** A card with a top list as a table, or what is loading, failed or empty. */
function ListCard<T>(props: {
  title: string
  query: QueryLike<{ items: T[] }>
  empty: string
  columns: Column<T>[]
  rowKey: (row: T) => string
}) {
  return (
    <Card title={props.title}>
      <QueryState
        query={props.query}
        loading={`Loading ${props.title.toLowerCase()}`}
        isEmpty={(d) => d.items.length === 0}
        empty={props.empty}
      >
        {(d) => (
          <DataTable caption={props.title} rows={d.items} columns={props.columns} rowKey={props.rowKey} />
        )}
      </QueryState>
    </Card>
  )
}

/** The dead letters of an error class: the DLQ filters by message text, so by its latest message. */
function dlqLink(e: ErrorClassDto): string {
  const p = new URLSearchParams()
  if (e.task_types.length === 1) p.set('type', e.task_types[0]!)
  p.set('error', (e.example ?? e.error_class).slice(0, 200))
  return `/dlq?${p}`
}

function ErrorsTable({ rows }: { rows: ErrorClassDto[] }) {
  const columns: Column<ErrorClassDto>[] = [
    { header: 'Class', className: 'mono', cell: (e) => e.error_class },
    { header: 'Failures', cell: (e) => num(e.count) },
    { header: 'Jobs', cell: (e) => num(e.jobs) },
    { header: 'First seen', cell: (e) => time(e.first_seen) },
    { header: 'Last seen', cell: (e) => time(e.last_seen) },
    { header: 'Types', cell: (e) => e.task_types.join(', ') },
    { header: 'Latest message', className: 'error-text', cell: (e) => e.example ?? '—' },
    {
      header: 'Dead letters',
      hideHeader: true,
      cell: (e) => (
        <Link to={dlqLink(e)} title="dead letters with this class's latest message">
          In the DLQ
        </Link>
      ),
    },
  ]
  return <DataTable caption="Errors by class" rows={rows} columns={columns} rowKey={(e) => e.error_class} />
}

const slowColumns: Column<SlowDto>[] = [
  { header: 'Type', cell: (s) => s.task_type },
  { header: 'Jobs', cell: (s) => num(s.count) },
  { header: 'p50', cell: (s) => duration(s.run_ms.p50) },
  { header: 'p95', cell: (s) => duration(s.run_ms.p95) },
  { header: 'p99', cell: (s) => duration(s.run_ms.p99) },
  { header: 'Max', cell: (s) => duration(s.run_ms.max) },
]

const workerColumns: Column<WorkerDto>[] = [
  { header: 'Worker', className: 'mono', cell: (w) => w.worker },
  { header: 'Completed', cell: (w) => num(w.completed) },
  { header: 'Failed', cell: (w) => num(w.failed) },
  { header: 'Per hour', headerTitle: 'attempts ended per hour of the range', cell: (w) => w.per_hour },
  { header: 'Failed per hour', cell: (w) => w.failed_per_hour },
  { header: 'p95 run', cell: (w) => duration(w.run_p95_ms) },
  { header: 'Last seen', cell: (w) => time(w.last_seen) },
]
