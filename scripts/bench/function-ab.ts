/**
 * Shared by the A/B benches of one Lua function (enqueue-ab.ts, limits.ts): a base commit's
 * functions built into a library of their own, loaded next to this tree's into one private
 * redis-server; Redis's µs per FCALL; medians of interleaved runs.
 */
import { execFileSync } from 'node:child_process'
import type { Redis } from 'ioredis'
import { F } from '../../app/src/queue/job.ts'
import { luaConstants } from '../../app/src/redis/scripts.ts'
import { COMPLETION_ARGS } from '../../app/src/redis/store.ts'

export const SMOKE = process.argv.includes('--smoke')

/** The value after `--name` on the command line. */
export const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : undefined
}

const ROOT = execFileSync('git', ['rev-parse', '--show-toplevel'], { encoding: 'utf8' }).trim()
export const git = (...a: string[]): string => execFileSync('git', ['-C', ROOT, ...a], { encoding: 'utf8' })

/**
 * The base commit's functions `scripts` alone, as a library named `dtq_ab_base` (its prelude
 * and those bodies only: the whole base library would not load next to this tree's larger
 * constants -- a Lua function, the library's main chunk, has at most 200 locals). Registered
 * as `dtq_ab_base_<script>`.
 */
export function baseLibrary(ref: string, scripts: readonly string[]): { name: string; source: string } {
  const dir = 'app/src/redis/scripts'
  const parts = git('ls-tree', '--name-only', ref, `${dir}/lib/`)
    .split('\n')
    .filter((f) => f.endsWith('.lua'))
    .sort()
    .map((f) => git('show', `${ref}:${f}`))
  const name = 'dtq_ab_base'
  // This tree's constants: a superset of the base's (new fields and keys only add locals).
  const source = [`#!lua name=${name}`, ...luaConstants(), ...parts]
  for (const n of scripts) {
    source.push(`local function run_${n}()\n${git('show', `${ref}:${dir}/${n}.lua`)}\nend`)
    source.push(
      `redis.register_function{ function_name = '${name}_${n}', flags = {},\n` +
        `  callback = function(keys, args) setup(keys, args) local r = run_${n}() flush() return r end }`,
    )
  }
  return { name, source: source.join('\n') }
}

/** Appends the enqueue function's 12 arguments for plain jobs `j<from>` .. `j<to - 1>`. */
export function pushPlainJobs(
  args: Array<string | number>,
  from: number,
  to: number,
  generated = false,
  short = false,
): void {
  for (let i = from; i < to; i++) {
    const id = generated ? String(1e9 + i) : `j${i}`
    // The 5-value form of a call of plain jobs (enqueue.lua), or the 12-value one.
    if (short) args.push(id, 'noop', '{"n":1}', 3, 0)
    else args.push(id, 'noop', '{"n":1}', 'normal', 3, 0, 0, '', '', 60, '', '')
  }
}

/** Redis's µs per FCALL since the last CONFIG RESETSTAT (INFO commandstats). */
export async function fcallUs(redis: Redis): Promise<number> {
  const stats = await redis.info('commandstats')
  return Number(/cmdstat_fcall:calls=\d+,usec=\d+,usec_per_call=([\d.]+)/.exec(stats)?.[1] ?? Number.NaN)
}

/** Run r's order of two sides: A B, then B A, so neither side always goes first. */
export const abOrder = (r: number): readonly ['A', 'B'] | readonly ['B', 'A'] =>
  r % 2 === 0 ? (['A', 'B'] as const) : (['B', 'A'] as const)

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/** "median (min-max)" with `d` decimals. */
export const fmt = (xs: number[], d = 0): string =>
  `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)})`

/** A job a fetch or deliver started, as a completion hands it back. */
export interface Started {
  id: string
  epoch: number
  /** The delivery's facts a completion carries since ADR 0038: entry, priority ('' normal), type, started_at, attempts. */
  facts: [string, string, string, string, string]
}

/**
 * The started jobs from a fetch or deliver reply's jobs: one JSON array of rows (this tree: its
 * first row, the pairs every start set alike, has no id), or one packed row per job (a base
 * from before that). A job's row, then the first row; later pairs win.
 */
export function startedJobs(jobs: string | string[]): Started[] {
  const rows =
    typeof jobs === 'string'
      ? (JSON.parse(jobs) as Array<Array<string | number>>)
      : jobs.map((packed) => JSON.parse(packed) as Array<string | number>)
  const common = rows[0] && !rows[0].includes('id') ? rows[0] : []
  const out: Started[] = []
  for (const row of rows) {
    const h: Record<string, string> = {}
    for (const r of [row, common])
      for (let i = 0; i + 1 < r.length; i += 2) h[r[i] as string] = String(r[i + 1])
    if (!h.id) continue
    out.push({
      id: h.id,
      epoch: Number(h[F.epoch] ?? 0),
      facts: [
        h[F.entry] ?? '',
        h[F.priority] ?? '',
        h[F.task_type] ?? '',
        h[F.started_at] ?? '',
        h[F.attempts] ?? '',
      ],
    })
  }
  return out
}

/**
 * How many arguments a completion takes in `ref`'s complete and fetch functions (this tree's
 * when no ref): ten with the delivery's facts since ADR 0038, five before.
 */
export function completionArgs(ref?: string): 5 | 10 {
  if (!ref) return COMPLETION_ARGS as 10
  return git('show', `${ref}:app/src/redis/scripts/fetch.lua`).includes('groups of 10') ? 10 : 5
}

/** Appends a no-op job's completion (result null, no idempotency key, no flow) in `size` arguments. */
export function pushCompletion(args: Array<string | number>, s: Started, size: 5 | 10): void {
  args.push(s.id, s.epoch, 'null', '', '0')
  if (size === 10) args.push(...s.facts)
}
