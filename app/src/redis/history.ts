/**
 * The 24-hour charts (GET /stats/history, ADR 0026): throughput per interval and run/wait latency
 * percentiles per interval, from what Redis keeps -- per-minute throughput buckets (25 hours) and
 * the maintenance leader's once-a-minute snapshots of each queue's cumulative histograms. Pure:
 * the ranges, and percentiles from the difference of two snapshots.
 */
import { HISTOGRAM_BUCKETS_MS } from './keys.ts'

/** The ranges offered, each with its interval: about 60-100 points per chart. */
export const HISTORY_RANGES = {
  '1h': { stepMinutes: 1, intervals: 60 },
  '6h': { stepMinutes: 5, intervals: 72 },
  '24h': { stepMinutes: 15, intervals: 96 },
} as const
export type HistoryRange = keyof typeof HISTORY_RANGES

export interface Latency {
  /** Attempts observed in the interval. */
  count: number
  p50: number
  p95: number
  p99: number
}

export interface HistoryPoint {
  /** The interval's start (ms). */
  at: number
  completed: number
  failed: number
  /** null when no queue has a snapshot on both sides of the interval (before the first one). */
  wait: Latency | null
  run: Latency | null
}

/** Buckets per histogram: the finite bounds and +Inf. */
const N = HISTOGRAM_BUCKETS_MS.length + 1

/** A snapshot string: run buckets, run sum, wait buckets, wait sum (history_snapshot.lua). */
export function parseSnapshot(s: string): { run: number[]; wait: number[] } | null {
  if (!s) return null
  const v = s.split(' ').map(Number)
  if (v.length !== 2 * (N + 1) || v.some((x) => !Number.isFinite(x))) return null
  return { run: v.slice(0, N), wait: v.slice(N + 1, 2 * N + 1) }
}

/**
 * The q-quantile (0..1) of a histogram's bucket counts, interpolated linearly within its bucket
 * as Prometheus's histogram_quantile does; the +Inf bucket answers its lower bound.
 */
export function quantile(counts: readonly number[], q: number): number {
  const total = counts.reduce((a, b) => a + b, 0)
  if (total <= 0) return 0
  const rank = q * total
  let seen = 0
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i] ?? 0
    if (c > 0 && seen + c >= rank) {
      const lo = i === 0 ? 0 : HISTOGRAM_BUCKETS_MS[i - 1]!
      const hi = HISTOGRAM_BUCKETS_MS[i]
      if (hi === undefined) return lo
      return lo + (hi - lo) * ((rank - seen) / c)
    }
    seen += c
  }
  return HISTOGRAM_BUCKETS_MS[HISTOGRAM_BUCKETS_MS.length - 1]!
}

function latency(diff: number[]): Latency {
  const r = (x: number) => Math.round(x * 10) / 10
  return {
    count: diff.reduce((a, b) => a + b, 0),
    p50: r(quantile(diff, 0.5)),
    p95: r(quantile(diff, 0.95)),
    p99: r(quantile(diff, 0.99)),
  }
}

/**
 * Points of a chart from each queue's raw history (`history` script replies, same window):
 * throughput summed over the queues, histograms differenced per queue between an interval's two
 * boundaries and summed (a counter that went down -- a queue forgotten and reborn -- counts from 0).
 */
export function historyPoints(
  fromMinute: number,
  stepMinutes: number,
  perQueue: ReadonlyArray<[number[], string[]]>,
): HistoryPoint[] {
  const intervals = perQueue[0]?.[1].length ? perQueue[0][1].length - 1 : 0
  const points: HistoryPoint[] = []
  for (let k = 0; k < intervals; k++) {
    let completed = 0
    let failed = 0
    let seen = false
    const run = new Array<number>(N).fill(0)
    const wait = new Array<number>(N).fill(0)
    for (const [tp, snaps] of perQueue) {
      completed += tp[2 * k] ?? 0
      failed += tp[2 * k + 1] ?? 0
      const a = parseSnapshot(snaps[k] ?? '')
      const b = parseSnapshot(snaps[k + 1] ?? '')
      // Before a queue's first snapshot its history is unknown (not everything since it began).
      if (!a || !b) continue
      seen = true
      for (let i = 0; i < N; i++) {
        const dr = b.run[i]! - a.run[i]!
        const dw = b.wait[i]! - a.wait[i]!
        run[i]! += dr >= 0 ? dr : b.run[i]!
        wait[i]! += dw >= 0 ? dw : b.wait[i]!
      }
    }
    points.push({
      at: (fromMinute + k * stepMinutes) * 60_000,
      completed,
      failed,
      wait: seen ? latency(wait) : null,
      run: seen ? latency(run) : null,
    })
  }
  return points
}

/**
 * The points of one task type (ADR 0032): completed and failed per interval from the difference of
 * each queue's per-type totals at the interval's two boundary snapshots (`history` with a task
 * type: flat (completed, failed) per boundary, -1 where there is none), summed over the queues.
 * A snapshot is taken at most once a minute, so a job counts in the interval of the first
 * snapshot after it finished. Latency is not kept per type: null.
 */
export function typedPoints(points: HistoryPoint[], perQueue: ReadonlyArray<number[]>): HistoryPoint[] {
  return points.map((p, k) => {
    let completed = 0
    let failed = 0
    for (const t of perQueue) {
      const [c0, f0, c1, f1] = [t[2 * k], t[2 * k + 1], t[2 * k + 2], t[2 * k + 3]]
      if (c0 === undefined || c1 === undefined || f0 === undefined || f1 === undefined) continue
      if (c0 < 0 || c1 < 0) continue
      // A total that went down (the queue forgotten and reborn) counts from 0.
      completed += c1 >= c0 ? c1 - c0 : c1
      failed += f1 >= f0 ? f1 - f0 : f1
    }
    return { ...p, completed, failed, wait: null, run: null }
  })
}
