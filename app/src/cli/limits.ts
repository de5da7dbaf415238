/** `dtq limits get|set` and `dtq breaker` (ADR 0022): thin clients of Queue's flow-control methods. */
import type { Command } from 'commander'
import { DtqError } from '../errors.ts'
import type { LimitsSpec } from '../queue/limits.ts'
import type { Queue } from '../queue/queue.ts'
import type { BreakerAction } from '../redis/limits.ts'

type WithQueue = <T>(fn: (q: Queue) => Promise<T>) => Promise<T>

interface SetOptions {
  json?: string
  rate?: string
  concurrency?: string
  keyConcurrency?: string
  clear?: boolean
}

/** "N/W" (N per W ms) as a rate. */
function rate(v: string): { limit: number; window_ms: number } {
  const m = /^(\d+)\/(\d+)$/.exec(v)
  if (!m) throw new DtqError('VALIDATION', `--rate is N/W: N jobs per W ms (got ${v})`)
  return { limit: Number(m[1]), window_ms: Number(m[2]) }
}

function specOf(o: SetOptions): LimitsSpec {
  if (o.clear) return {}
  if (o.json) {
    try {
      return JSON.parse(o.json) as LimitsSpec
    } catch {
      throw new DtqError('VALIDATION', '--json is not valid JSON')
    }
  }
  const spec: LimitsSpec = {}
  if (o.rate) spec.rate = rate(o.rate)
  if (o.concurrency) spec.concurrency = Number(o.concurrency)
  if (o.keyConcurrency) spec.key_concurrency = Number(o.keyConcurrency)
  return spec
}

export function limitCommands(program: Command, withQueue: WithQueue, print: (v: unknown) => void): void {
  const l = program.command('limits').description("a queue's flow-control limits: show, set")
  l.command('get')
    .argument('<queue>')
    .description('the limits and what they are doing: running, held, breakers, paused types')
    .action((queue: string) => withQueue(async (q) => print(await q.getLimits(queue))))
  l.command('set')
    .argument('<queue>')
    .description("replace the queue's limits (per task type: --json)")
    .option('--rate <N/W>', 'at most N starts per W ms')
    .option('--concurrency <n>', 'at most n running at once, fleet-wide')
    .option('--key-concurrency <n>', 'at most n running per partition_key (1: FIFO per key)')
    .option(
      '--json <spec>',
      'the whole spec: {rate:{limit,window_ms}, concurrency, key_concurrency, types:{<type>:{rate, concurrency, breaker:{failures, cooldown_ms}}}}',
    )
    .option('--clear', 'remove every limit')
    .action((queue: string, o: SetOptions) =>
      withQueue(async (q) => print(await q.setLimits(queue, specOf(o)))),
    )

  program
    .command('breaker')
    .argument('<queue>')
    .argument('<task_type>')
    .argument('<action>', 'open | close | reset')
    .option('--for <ms>', 'open: for how long (default: its cool-down, else 60 s)')
    .description("open, close or reset a task type's circuit breaker in a queue")
    .action((queue: string, type: string, action: string, o: { for?: string }) =>
      withQueue(async (q) =>
        print(await q.breaker(queue, type, action as BreakerAction, o.for === undefined ? 0 : Number(o.for))),
      ),
    )
}
