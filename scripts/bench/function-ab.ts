/**
 * Shared by the A/B benches of one Lua function (enqueue-ab.ts, limits.ts): a base commit's
 * functions built into a library of their own, loaded next to this tree's into one private
 * redis-server; Redis's µs per FCALL; medians of interleaved runs.
 */
import { execFileSync } from 'node:child_process'
import type { Redis } from 'ioredis'
import { F } from '../../app/src/queue/job.ts'
import { luaConstants } from '../../app/src/redis/scripts.ts'

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

/**
 * The started jobs' ids and epochs from a fetch or deliver reply's jobs: one JSON array of rows
 * (this tree: its first row, the pairs every start set alike, has no id), or one packed row per
 * job (a base from before that). Rows: pairs as stored, later pairs win.
 */
export function startedIdEpochs(jobs: string | string[]): Array<[string, number]> {
  const rows =
    typeof jobs === 'string'
      ? (JSON.parse(jobs) as Array<Array<string | number>>)
      : jobs.map((packed) => JSON.parse(packed) as Array<string | number>)
  const out: Array<[string, number]> = []
  for (const row of rows) {
    let id = ''
    let epoch = 0
    for (let i = 0; i + 1 < row.length; i += 2) {
      if (row[i] === 'id') id = String(row[i + 1])
      else if (row[i] === F.epoch) epoch = Number(row[i + 1])
    }
    if (id) out.push([id, epoch])
  }
  return out
}
