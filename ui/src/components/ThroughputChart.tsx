/** Completed and failed jobs per minute over the last hour, as an SVG bar chart. */
export interface Point {
  minute: number
  completed: number
  failed: number
}

export function ThroughputChart({ points }: { points: Point[] }) {
  const w = 600
  const h = 140
  const max = Math.max(1, ...points.map((p) => p.completed + p.failed))
  const bw = w / Math.max(points.length, 1)
  const total = points.reduce((a, p) => a + p.completed, 0)
  const failed = points.reduce((a, p) => a + p.failed, 0)
  return (
    <figure className="chart">
      <svg
        viewBox={`0 0 ${w} ${h}`}
        role="img"
        aria-label={`Throughput, last hour: ${total} completed, ${failed} failed`}
      >
        {points.map((p, i) => {
          const ch = (p.completed / max) * (h - 10)
          const fh = (p.failed / max) * (h - 10)
          return (
            <g key={p.minute}>
              <title>{`${new Date(p.minute).toLocaleTimeString()}: ${p.completed} completed, ${p.failed} failed`}</title>
              <rect x={i * bw + 1} y={h - ch} width={bw - 2} height={ch} className="bar-ok" />
              <rect x={i * bw + 1} y={h - ch - fh} width={bw - 2} height={fh} className="bar-fail" />
            </g>
          )
        })}
      </svg>
      <figcaption>
        <span className="legend ok">completed</span> <span className="legend fail">failed</span> per minute,
        last hour · peak {max}/min
      </figcaption>
    </figure>
  )
}
