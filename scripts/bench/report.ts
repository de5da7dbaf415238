/**
 * `pnpm bench`'s figures: medians with min–max, each DTQ figure's ratio to every peer measured
 * beside it (always DTQ / peer), the issue's targets and a verdict: met, or gap where any target
 * is not met (info where the figure has no target).
 */
import { RUNS, SMOKE } from './bench-kit.ts'

export interface Stat {
  median: number
  min: number
  max: number
}

export function stat(xs: number[]): Stat {
  const s = [...xs].sort((a, b) => a - b)
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! }
}

/** DTQ's figure must be ≥ (higher is better) or ≤ (lower is better) `factor` × each peer's. */
export interface Target {
  peers: string[]
  op: '≥' | '≤'
  factor: number
}

export interface Row {
  scenario: string
  unit: string
  dtq: Stat
  peers: Array<{ name: string; stat: Stat }>
  targets: Target[]
  digits?: number
}

export const rows: Row[] = []

const fmt = (s: Stat, digits = 0) =>
  s.min === s.max
    ? s.median.toFixed(digits)
    : `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`

const ratioOf = (r: Row, peer: string): number | undefined => {
  const p = r.peers.find((x) => x.name === peer)
  return p ? r.dtq.median / p.stat.median : undefined
}

/** met, gap, or info (no target); a target whose peer was not measured is a gap. */
export function verdict(r: Row): 'met' | 'gap' | 'info' {
  if (!r.targets.length) return 'info'
  for (const t of r.targets)
    for (const peer of t.peers) {
      const x = ratioOf(r, peer)
      if (x === undefined || !(t.op === '≥' ? x >= t.factor : x <= t.factor)) return 'gap'
    }
  return 'met'
}

const targetText = (ts: Target[]) =>
  ts.length ? ts.map((t) => `${t.op} ${Number(t.factor.toFixed(2))}× ${t.peers.join(', ')}`).join('; ') : '—'

/** The summary: one line per figure, as a Markdown table. */
export function summary(): string {
  const lines = [
    `DTQ vs peers — ${SMOKE ? 'SMOKE (tiny sizes: not a measurement)' : `medians of ${RUNS} interleaved runs (min–max)`}; node ${process.version}; one private redis-server (AOF off); ratio = DTQ / peer`,
    '',
    '| scenario | unit | DTQ | peers | ratio | target | verdict |',
    '|---|---|---|---|---|---|---|',
  ]
  let gaps = 0
  for (const r of rows) {
    const v = verdict(r)
    if (v === 'gap') gaps++
    const peers = r.peers.map((p) => `${p.name}: ${fmt(p.stat, r.digits)}`).join('<br>')
    const ratios = r.peers.map((p) => `${p.name} ${ratioOf(r, p.name)!.toFixed(2)}×`).join('<br>')
    lines.push(
      `| ${r.scenario} | ${r.unit} | ${fmt(r.dtq, r.digits)} | ${peers} | ${ratios} | ${targetText(r.targets)} | ${v === 'gap' ? '**gap**' : v} |`,
    )
  }
  lines.push(
    '',
    `${gaps} target(s) not met${SMOKE ? ' (smoke sizes: the ratios mean nothing; the run checks that every scenario works)' : ''}`,
  )
  return lines.join('\n')
}
