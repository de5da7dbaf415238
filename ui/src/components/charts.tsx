/**
 * Small SVG charts over time buckets (the analytics page): stacked bars and lines, with a y
 * scale, the range's start and end under the x axis, a legend, and a <title> per bucket for
 * the exact numbers on hover. No chart library: the console's charts are a few rects and paths.
 */

export interface Series {
  name: string
  /** A CSS colour (a var() of the theme). */
  color: string
  /** One value per bucket; null = no data (a gap in a line). */
  values: Array<number | null>
}

const W = 640
const H = 170
const PAD_L = 46
const PAD_B = 4
const PLOT_W = W - PAD_L
const PLOT_H = H - PAD_B - 8

/** A palette for per-type lines, readable on both themes. */
export const PALETTE = [
  '#2457d6',
  '#d9480f',
  '#2b8a3e',
  '#ae3ec9',
  '#1098ad',
  '#e8590c',
  '#5c7cfa',
  '#c2255c',
  '#74b816',
  '#868e96',
  '#f59f00',
]

function Axis({ max, format }: { max: number; format: (v: number) => string }) {
  return (
    <g className="axis">
      {[0, 0.5, 1].map((f) => {
        const y = H - PAD_B - f * PLOT_H
        return (
          <g key={f}>
            <line x1={PAD_L} x2={W} y1={y} y2={y} className="gridline" />
            <text x={PAD_L - 4} y={y + 4} textAnchor="end">
              {format(max * f)}
            </text>
          </g>
        )
      })}
    </g>
  )
}

function Caption({
  series,
  buckets,
  label,
}: {
  series: Series[]
  buckets: number[]
  label: (t: number) => string
}) {
  return (
    <figcaption>
      <span className="chart-range">
        {buckets.length ? `${label(buckets[0]!)} – ${label(buckets[buckets.length - 1]!)}` : ''}
      </span>{' '}
      {series.map((s) => (
        <span key={s.name} className="legend" style={{ ['--c' as string]: s.color }}>
          {s.name}
        </span>
      ))}
    </figcaption>
  )
}

/** Bars per bucket, the series stacked (first at the bottom). */
export function StackedBars({
  title,
  buckets,
  series,
  label,
}: {
  title: string
  buckets: number[]
  series: Series[]
  label: (t: number) => string
}) {
  const totals = buckets.map((_, i) => series.reduce((a, s) => a + (s.values[i] ?? 0), 0))
  const max = Math.max(1, ...totals)
  const bw = PLOT_W / Math.max(buckets.length, 1)
  const sum = totals.reduce((a, b) => a + b, 0)
  return (
    <figure className="chart chart-fluid">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title}: ${sum} in total`}>
        <Axis max={max} format={(v) => String(Math.round(v))} />
        {buckets.map((t, i) => {
          let y = H - PAD_B
          return (
            <g key={t}>
              <title>{`${label(t)}: ${series.map((s) => `${s.values[i] ?? 0} ${s.name}`).join(', ')}`}</title>
              {series.map((s) => {
                const h = ((s.values[i] ?? 0) / max) * PLOT_H
                y -= h
                return h > 0 ? (
                  <rect
                    key={s.name}
                    x={PAD_L + i * bw + (bw > 3 ? 0.5 : 0)}
                    y={y}
                    width={Math.max(bw - (bw > 3 ? 1 : 0), 0.5)}
                    height={h}
                    fill={s.color}
                  />
                ) : null
              })}
            </g>
          )
        })}
      </svg>
      <Caption series={series} buckets={buckets} label={label} />
    </figure>
  )
}

/** A line per series over the buckets; null values break the line. */
export function Lines({
  title,
  buckets,
  series,
  label,
  format,
  max: fixedMax,
}: {
  title: string
  buckets: number[]
  series: Series[]
  label: (t: number) => string
  format: (v: number) => string
  /** The top of the scale (a rate: 1); default the largest value. */
  max?: number
}) {
  const max =
    fixedMax ?? (Math.max(0, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null))) || 1)
  const step = PLOT_W / Math.max(buckets.length - 1, 1)
  const x = (i: number) => PAD_L + i * step
  const y = (v: number) => H - PAD_B - (v / max) * PLOT_H
  return (
    <figure className="chart chart-fluid">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={title}>
        <Axis max={max} format={format} />
        {series.map((s) => {
          let d = ''
          let pen = false
          const dots: Array<[number, number]> = []
          s.values.forEach((v, i) => {
            if (v === null) {
              pen = false
              return
            }
            d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`
            // A lone point (neighbours missing) is drawn as a dot.
            if (!pen && (s.values[i + 1] ?? null) === null) dots.push([x(i), y(v)])
            pen = true
          })
          return (
            <g key={s.name} data-series={s.name}>
              <title>{s.name}</title>
              <path d={d} fill="none" stroke={s.color} strokeWidth={1.6} />
              {dots.map(([cx, cy]) => (
                <circle key={`${cx},${cy}`} cx={cx} cy={cy} r={2} fill={s.color} />
              ))}
            </g>
          )
        })}
      </svg>
      <Caption series={series} buckets={buckets} label={label} />
    </figure>
  )
}
