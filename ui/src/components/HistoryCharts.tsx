/**
 * Throughput (completed and failed per interval), failure rate and latency (wait and run
 * p50/p95/p99) over the last 1, 6 or 24 hours, of every queue or one: the range and queue are kept
 * in the URL. The dashboard picks the queue; a queue's page (`queue`) shows its own.
 */
import type { HistoryDto } from '@dtq/app/schemas'
import { num } from '../lib/format'
import { type HistoryRange, useHistory } from '../lib/history'
import { useUrlParams } from '../lib/url-params'
import { QueryState } from './QueryState'
import { Card } from './ui'

const RANGES: HistoryRange[] = ['1h', '6h', '24h']
type Point = HistoryDto['points'][number]

export function HistoryCharts({
  queues,
  queue: fixed,
  types = [],
}: {
  queues?: string[]
  queue?: string
  /** The task types offered as a filter (a type's charts have no latency: ADR 0032). */
  types?: string[]
}) {
  const { get, update } = useUrlParams()
  const range = (RANGES as string[]).includes(get('range') ?? '') ? (get('range') as HistoryRange) : '1h'
  const queue = fixed ?? get('chart_queue')
  const taskType = get('chart_type')
  const q = useHistory(range, queue, taskType)
  const controls = (
    <div className="chart-controls">
      <fieldset className="segmented" aria-label="chart range">
        {RANGES.map((r) => (
          <button
            key={r}
            type="button"
            aria-pressed={r === range}
            onClick={() => update({ range: r === '1h' ? undefined : r })}
          >
            {r}
          </button>
        ))}
      </fieldset>
      {queues && (
        <label className="inline">
          Charts of queue
          <select value={queue ?? ''} onChange={(e) => update({ chart_queue: e.target.value || undefined })}>
            <option value="">all</option>
            {queues.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>
      )}
      {(types.length > 0 || taskType) && (
        <label className="inline">
          Task type
          <select
            value={taskType ?? ''}
            onChange={(e) => update({ chart_type: e.target.value || undefined })}
          >
            <option value="">all</option>
            {[...new Set([...types, ...(taskType ? [taskType] : [])])].map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
      )}
    </div>
  )
  return (
    <Card title="Throughput and latency" actions={controls}>
      <QueryState query={q} loading="Loading the charts">
        {(h) => (
          <div className="chart-grid">
            <ThroughputBars h={h} />
            <FailureRate h={h} />
            {h.task_type ? (
              <p className="muted">
                Latency is kept per queue, not per task type: choose all types to see it.
              </p>
            ) : (
              <>
                <LatencyLines h={h} kind="wait" />
                <LatencyLines h={h} kind="run" />
              </>
            )}
          </div>
        )}
      </QueryState>
    </Card>
  )
}

const W = 600
const H = 140
const per = (h: HistoryDto) =>
  h.step_ms >= 3_600_000 ? `${h.step_ms / 3_600_000} h` : `${h.step_ms / 60_000} min`
const label = (h: HistoryDto) =>
  `last ${h.range}${h.queue ? `, queue ${h.queue}` : ''}${h.task_type ? `, type ${h.task_type}` : ''}`
const time = (ms: number) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })

function ThroughputBars({ h }: { h: HistoryDto }) {
  const pts = h.points
  const max = Math.max(1, ...pts.map((p) => p.completed + p.failed))
  const bw = W / Math.max(pts.length, 1)
  const total = pts.reduce((a, p) => a + p.completed, 0)
  const failed = pts.reduce((a, p) => a + p.failed, 0)
  return (
    <figure className="chart">
      <svg
        viewBox={`0 0 ${W} ${H}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`Throughput, ${label(h)}: ${total} completed, ${failed} failed`}
      >
        <line
          x1={0}
          y1={H - 0.5}
          x2={W}
          y2={H - 0.5}
          className="baseline"
          vectorEffect="non-scaling-stroke"
        />
        {pts.map((p, i) => {
          const ch = (p.completed / max) * (H - 10)
          const fh = (p.failed / max) * (H - 10)
          return (
            <g key={p.at}>
              <title>{`${time(p.at)}: ${p.completed} completed, ${p.failed} failed`}</title>
              <rect
                x={i * bw + 0.5}
                y={H - ch}
                width={Math.max(bw - 1, 0.5)}
                height={ch}
                className="bar-ok"
              />
              <rect
                x={i * bw + 0.5}
                y={H - ch - fh}
                width={Math.max(bw - 1, 0.5)}
                height={fh}
                className="bar-fail"
              />
            </g>
          )
        })}
      </svg>
      <figcaption>
        <span className="legend ok">completed</span> <span className="legend fail">failed</span> per {per(h)},{' '}
        {label(h)} · {num(total)} completed, {num(failed)} failed · peak {num(max)}/{per(h)}
        <Axis h={h} />
      </figcaption>
    </figure>
  )
}

/** Failed / (completed + failed) per interval (jobs that ended failed: dead-lettered). */
function FailureRate({ h }: { h: HistoryDto }) {
  const pts = h.points
  const x = (i: number) => (pts.length <= 1 ? 0 : (i / (pts.length - 1)) * W)
  const y = (r: number) => H - r * (H - 10)
  const rates = pts.map((p) => (p.completed + p.failed ? p.failed / (p.completed + p.failed) : null))
  let d = ''
  let pen = false
  const dots: number[] = []
  rates.forEach((r, i) => {
    if (r === null) {
      pen = false
      return
    }
    // A lone point (no neighbour with data) is drawn as a dot.
    if (!pen && (rates[i + 1] ?? null) === null) dots.push(i)
    d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(r).toFixed(1)} `
    pen = true
  })
  const done = pts.reduce((a, p) => a + p.completed + p.failed, 0)
  const failed = pts.reduce((a, p) => a + p.failed, 0)
  const overall = done ? pct(failed / done) : '—'
  const peak = done ? pct(Math.max(0, ...rates.map((r) => r ?? 0))) : '—'
  return (
    <figure className="chart">
      <svg
        viewBox={`0 0 ${W} ${H}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`Failure rate, ${label(h)}: ${overall} overall, peak ${peak}`}
      >
        <line
          x1={0}
          y1={H - 0.5}
          x2={W}
          y2={H - 0.5}
          className="baseline"
          vectorEffect="non-scaling-stroke"
        />
        {rates.map((r, i) =>
          r === null ? null : (
            <rect
              key={pts[i]!.at}
              x={x(i) - W / pts.length / 2}
              y={0}
              width={W / pts.length}
              height={H}
              className="hover-band"
            >
              <title>{`${time(pts[i]!.at)}: ${pct(r)} failed (${pts[i]!.failed} of ${pts[i]!.completed + pts[i]!.failed})`}</title>
            </rect>
          ),
        )}
        <path d={d} className="line-p99" fill="none" vectorEffect="non-scaling-stroke" />
        {dots.map((i) => (
          <line
            key={i}
            x1={Math.min(Math.max(x(i), 3), W - 3)}
            x2={Math.min(Math.max(x(i), 3), W - 3)}
            y1={y(rates[i]!)}
            y2={y(rates[i]!) + 0.01}
            className="line-p99 dot"
            vectorEffect="non-scaling-stroke"
          />
        ))}
      </svg>
      <figcaption>
        Failure rate (failed / finished) per {per(h)}, {label(h)} · {overall} overall · peak {peak}
        <Axis h={h} />
      </figcaption>
    </figure>
  )
}

const pct = (r: number) => `${(r * 100).toFixed(r > 0 && r < 0.01 ? 2 : 1)} %`

const SERIES = [
  { key: 'p50', className: 'line-p50' },
  { key: 'p95', className: 'line-p95' },
  { key: 'p99', className: 'line-p99' },
] as const

function LatencyLines({ h, kind }: { h: HistoryDto; kind: 'wait' | 'run' }) {
  const pts = h.points
  const vals = pts.map((p: Point) => p[kind])
  const max = Math.max(1, ...vals.map((v) => (v && v.count > 0 ? v.p99 : 0)))
  const x = (i: number) => (pts.length <= 1 ? 0 : (i / (pts.length - 1)) * W)
  const y = (v: number) => H - (v / max) * (H - 10)
  const observed = vals.reduce((a, v) => a + (v?.count ?? 0), 0)
  /** One path per series; an interval without observations breaks the line. */
  const path = (key: 'p50' | 'p95' | 'p99') => {
    let d = ''
    let pen = false
    vals.forEach((v, i) => {
      if (!v || v.count === 0) {
        pen = false
        return
      }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v[key]).toFixed(1)} `
      pen = true
    })
    return d
  }
  const what = kind === 'wait' ? 'Wait (ready to started)' : 'Run (started to ended)'
  return (
    <figure className="chart">
      <svg
        viewBox={`0 0 ${W} ${H}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`${what} latency, ${label(h)}: ${num(observed)} attempts, peak p99 ${fmtMs(max)}`}
      >
        <line
          x1={0}
          y1={H - 0.5}
          x2={W}
          y2={H - 0.5}
          className="baseline"
          vectorEffect="non-scaling-stroke"
        />
        {vals.map((v, i) =>
          v && v.count > 0 ? (
            <rect
              key={pts[i]!.at}
              x={x(i) - W / pts.length / 2}
              y={0}
              width={W / pts.length}
              height={H}
              className="hover-band"
            >
              <title>{`${time(pts[i]!.at)}: p50 ${fmtMs(v.p50)}, p95 ${fmtMs(v.p95)}, p99 ${fmtMs(v.p99)} (${v.count} attempts)`}</title>
            </rect>
          ) : null,
        )}
        {SERIES.map((s) => (
          <path
            key={s.key}
            d={path(s.key)}
            className={s.className}
            fill="none"
            vectorEffect="non-scaling-stroke"
          />
        ))}
      </svg>
      <figcaption>
        {what}: <span className="legend p50">p50</span> <span className="legend p95">p95</span>{' '}
        <span className="legend p99">p99</span> per {per(h)}, {label(h)} ·{' '}
        {observed
          ? `${num(observed)} attempts · top ${fmtMs(max)}`
          : "no attempts measured in this range yet (a minute's latency shows once it has passed)"}
        <Axis h={h} />
      </figcaption>
    </figure>
  )
}

/** Start, middle and end of the range (with the day beyond an hour: 24 hours span two). */
function Axis({ h }: { h: HistoryDto }) {
  const first = h.points[0]
  const last = h.points[h.points.length - 1]
  if (!first || !last) return null
  const end = last.at + h.step_ms
  const fmt = (ms: number) =>
    h.range === '1h'
      ? time(ms)
      : new Date(ms).toLocaleString([], {
          month: 'short',
          day: 'numeric',
          hour: '2-digit',
          minute: '2-digit',
        })
  return (
    <span className="axis">
      <span>{fmt(first.at)}</span>
      <span>{fmt((first.at + end) / 2)}</span>
      <span>{fmt(end)}</span>
    </span>
  )
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms >= 10_000 ? 0 : 1)} s` : `${Math.round(ms)} ms`
}
