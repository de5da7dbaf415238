/**
 * `dtq replay`, `dtq timeline`, `dtq compare` (ADR 0028): thin clients of Replays, the library
 * behind the API's replay, dry-run, timeline and compare routes.
 */
import type { Command } from 'commander'
import type { Config } from '../config.ts'
import { DtqError } from '../errors.ts'
import { archiveSources } from '../history/job-source.ts'
import type { Priority } from '../queue/job.ts'
import type { Queue } from '../queue/queue.ts'
import { parseJobRef, type ReplayChanges } from '../queue/replay.ts'
import { createReplays, type Replays } from '../redis/replay-service.ts'

type WithQueue = <T>(fn: (q: Queue) => Promise<T>) => Promise<T>

interface ReplayOptions {
  queue?: string
  payload?: string
  toQueue?: string
  priority?: string
  delayMs?: string
  maxRetries?: string
  idempotencyKey?: string
  dryRun?: boolean
}

const num = (name: string, v: string | undefined) => {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n)) throw new DtqError('VALIDATION', `${name} must be an integer`)
  return n
}

function changesOf(o: ReplayOptions): ReplayChanges {
  const c: ReplayChanges = {}
  if (o.payload !== undefined) {
    try {
      c.payload = JSON.parse(o.payload)
    } catch {
      throw new DtqError('VALIDATION', '--payload is not valid JSON')
    }
  }
  if (o.toQueue !== undefined) c.queue = o.toQueue
  if (o.priority !== undefined) c.priority = o.priority as Priority
  if (o.delayMs !== undefined) c.delay_ms = num('--delay-ms', o.delayMs)
  if (o.maxRetries !== undefined) c.max_retries = num('--max-retries', o.maxRetries)
  if (o.idempotencyKey !== undefined) c.idempotency_key = o.idempotencyKey
  return c
}

const time = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 23)
const short = (v: unknown) => {
  const s = JSON.stringify(v) ?? 'undefined'
  return s.length > 60 ? `${s.slice(0, 57)}...` : s
}

export function replayCommands(
  program: Command,
  withQueue: WithQueue,
  print: (v: unknown) => void,
  config?: () => Config,
): void {
  /** Replays over Redis and, when DATABASE_URL is set, the history archive (ADR 0028). */
  const withReplays = <T>(fn: (r: Replays) => Promise<T>): Promise<T> =>
    withQueue(async (q) => {
      const archive = config ? archiveSources(config()) : { sources: [], close: async () => {} }
      try {
        return await fn(createReplays(q, archive.sources))
      } finally {
        await archive.close()
      }
    })
  program
    .command('replay')
    .description('run a finished job (completed, failed, cancelled) again as a new job, with changes')
    .argument('<id>')
    .option('--queue <name>', "the original's queue")
    .option('--payload <json>', 'the new payload (default: the original one)')
    .option('--to-queue <name>', 'the queue of the new job (default: the original one)')
    .option('--priority <p>', 'high, normal or low')
    .option('--delay-ms <ms>', 'run no sooner than this many ms from now')
    .option('--max-retries <n>', 'retries of the new job')
    .option('--idempotency-key <key>', "the replay's own key (a repeat answers the same replay)")
    .option('--dry-run', 'check everything and print what would be created, writing nothing')
    .action(async (id: string, o: ReplayOptions) =>
      withReplays(async (replays) => {
        const changes = changesOf(o)
        if (o.dryRun) return print(await replays.dryRunReplay(id, changes, { queue: o.queue }))
        const r = await replays.replay(id, changes, { queue: o.queue })
        process.stdout.write(
          r.created
            ? `replayed ${r.original} as ${r.job.queue}/${r.job.id} (${r.job.state})\n`
            : `already replayed: ${r.job.queue}/${r.job.id} (${r.job.state})\n`,
        )
      }),
    )

  program
    .command('timeline')
    .description("a job's timeline: every state change and attempt on record, with times and workers")
    .argument('<id>')
    .option('--queue <name>', 'queue')
    .option('--json', 'print the whole answer as JSON')
    .action(async (id: string, o: { queue?: string; json?: boolean }) =>
      withReplays(async (replays) => {
        const t = await replays.timeline(id, o.queue)
        if (o.json) return print(t)
        for (const e of t.entries) {
          const who = [e.attempt ? `#${e.attempt}` : '', e.worker ?? ''].filter(Boolean).join(' ')
          process.stdout.write(
            `${time(e.at)}  ${e.event.padEnd(16)} ${e.source.padEnd(6)} ${who.padEnd(16)} ${e.message ?? ''}\n`.replace(
              / +\n$/,
              '\n',
            ),
          )
        }
        for (const g of t.gaps) process.stdout.write(`partial: ${g}\n`)
      }),
    )

  program
    .command('compare')
    .description(
      'two jobs side by side (<queue>/<id> or <id> each), or two attempts of one job (--attempts a,b)',
    )
    .argument('<a>')
    .argument('[b]')
    .option('--attempts <a,b>', 'compare two attempts of job <a>')
    .option('--json', 'print the whole answer as JSON')
    .action(async (a: string, b: string | undefined, o: { attempts?: string; json?: boolean }) =>
      withReplays(async (replays) => {
        const x = parseJobRef(a)
        let c: {
          same: boolean
          total: number
          differences: Array<{ path: string; kind: string; a?: unknown; b?: unknown }>
        }
        let refs: [string, string]
        if (o.attempts !== undefined) {
          const m = /^(\d+),(\d+)$/.exec(o.attempts)
          if (!m || b !== undefined)
            throw new DtqError('VALIDATION', '--attempts is two attempt numbers, a,b (and one job)')
          const r = await replays.compareAttempts(x.id, x.queue, Number(m[1]), Number(m[2]))
          c = r
          refs = [r.a.ref, r.b.ref]
        } else {
          if (b === undefined) throw new DtqError('VALIDATION', 'give two jobs, or one and --attempts a,b')
          const r = await replays.compare(x, parseJobRef(b))
          c = r
          refs = [r.a.ref, r.b.ref]
        }
        if (o.json) return print(c)
        process.stdout.write(`a: ${refs[0]}\nb: ${refs[1]}\n`)
        if (c.same) return void process.stdout.write('no differences\n')
        for (const d of c.differences)
          process.stdout.write(`${d.kind.padEnd(8)} ${d.path}  ${short(d.a)} -> ${short(d.b)}\n`)
        if (c.total > c.differences.length)
          process.stdout.write(`... ${c.total - c.differences.length} more\n`)
      }),
    )
}
