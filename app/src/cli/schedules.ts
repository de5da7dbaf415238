/** `dtq schedules ls|get|set|rm|pause|resume|trigger` (ADR 0018): thin clients of Queue's schedule methods. */
import type { Command } from 'commander'
import type { Queue } from '../queue/queue.ts'
import type { ScheduleSpec } from '../queue/schedule.ts'

type WithQueue = <T>(fn: (q: Queue) => Promise<T>) => Promise<T>

const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString())

interface SetOptions {
  cron?: string
  tz?: string
  everyMs?: string
  taskType?: string
  payload?: string
  queue?: string
  priority?: string
  maxRetries?: string
  timeoutMs?: string
  startAt?: string
  endAt?: string
  maxRuns?: string
  overlap?: string
  misfire?: string
  catchUpMax?: string
  paused?: boolean
  json?: string
}

/** The spec from the options (numbers as numbers; the library checks everything). */
function specOf(o: SetOptions): ScheduleSpec {
  if (o.json) return JSON.parse(o.json) as ScheduleSpec
  const n = (v?: string) => (v === undefined ? undefined : Number(v))
  const job: Record<string, unknown> = { task_type: o.taskType ?? '' }
  if (o.payload !== undefined) job.payload = JSON.parse(o.payload)
  if (o.queue) job.queue = o.queue
  if (o.priority) job.priority = o.priority
  if (o.maxRetries) job.max_retries = n(o.maxRetries)
  if (o.timeoutMs) job.timeout_ms = n(o.timeoutMs)
  const spec: Record<string, unknown> = {
    cron: o.cron,
    tz: o.tz,
    every_ms: n(o.everyMs),
    job,
    start_at: o.startAt,
    end_at: o.endAt,
    max_runs: n(o.maxRuns),
    overlap: o.overlap,
    misfire: o.misfire,
    catch_up_max: n(o.catchUpMax),
    paused: o.paused,
  }
  for (const k of Object.keys(spec)) if (spec[k] === undefined) delete spec[k]
  return spec as unknown as ScheduleSpec
}

export function scheduleCommands(program: Command, withQueue: WithQueue, print: (v: unknown) => void): void {
  const s = program
    .command('schedules')
    .description('schedules: list, show, set, remove, pause, resume, trigger')
  s.command('ls')
    .option('--json', 'machine-readable')
    .action(async (o: { json?: boolean }) =>
      withQueue(async (q) => {
        const all = await q.listSchedules()
        if (o.json) return print(all)
        for (const x of all) {
          const when = x.cron ? `${x.cron} ${x.tz}` : `every ${x.every_ms} ms`
          process.stdout.write(
            `${x.name.padEnd(20)} ${x.paused ? 'paused ' : 'active '} ${when.padEnd(32)} ${x.queue.padEnd(12)} next ${iso(x.next_fire)}  last ${x.last_outcome ?? '-'}\n`,
          )
        }
        if (!all.length) process.stdout.write('no schedules\n')
      }),
    )
  s.command('get')
    .argument('<name>')
    .action(async (name: string) => withQueue(async (q) => print(await q.schedules.getOrThrow(name))))
  s.command('set')
    .description('create or replace a schedule (or give the whole spec with --json)')
    .argument('<name>')
    .option('--cron <expr>', 'cron: 5 fields, or 6 with seconds first')
    .option('--tz <zone>', 'IANA time zone of the cron expression (default UTC)')
    .option('--every-ms <ms>', 'instead of cron: every this many ms')
    .option('--task-type <type>', "the jobs' task type")
    .option('--payload <json>', "the jobs' payload (JSON)")
    .option('--queue <queue>', "the jobs' queue")
    .option('--priority <p>', 'high | normal | low')
    .option('--max-retries <n>')
    .option('--timeout-ms <ms>')
    .option('--start-at <time>', 'ISO 8601 or ms')
    .option('--end-at <time>', 'ISO 8601 or ms')
    .option('--max-runs <n>')
    .option('--overlap <policy>', 'allow | skip | queue_one')
    .option('--misfire <policy>', 'skip | run_once | catch_up')
    .option('--catch-up-max <n>')
    .option('--paused', 'create it paused')
    .option('--json <spec>', 'the whole schedule as JSON (as PUT /schedules/{name} takes)')
    .action(async (name: string, o: SetOptions) =>
      withQueue(async (q) => print(await q.upsertSchedule(name, specOf(o)))),
    )
  s.command('rm')
    .argument('<name>')
    .action(async (name: string) => withQueue(async (q) => q.removeSchedule(name)))
  for (const cmd of ['pause', 'resume'] as const) {
    s.command(cmd)
      .argument('<name>')
      .action(async (name: string) =>
        withQueue(async (q) =>
          print(await (cmd === 'pause' ? q.pauseSchedule(name) : q.resumeSchedule(name))),
        ),
      )
  }
  s.command('trigger')
    .description('fire now: one job (the next fire time does not move)')
    .argument('<name>')
    .action(async (name: string) =>
      withQueue(async (q) => print({ job_id: (await q.triggerSchedule(name)).job_id })),
    )
}
