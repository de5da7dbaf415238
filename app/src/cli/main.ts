#!/usr/bin/env node
/**
 * The `dtq` command line: `pnpm dtq <command>` from the repository root. Every command reads
 * REDIS_URL and the other settings from the environment (see .env.example).
 */
import { readFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Command, InvalidArgumentError } from 'commander'
import {
  type Config,
  ConfigError,
  checkTracingEnv,
  isSet,
  launchDir,
  loadConfig,
  tracingRequested,
} from '../config.ts'
import { DtqError } from '../errors.ts'
import { createLogger } from '../logger.ts'
import type { FlowPolicy, FlowSpec } from '../queue/flows.ts'
import { type DedupMode, type Job, type JobState, type Priority, STATES } from '../queue/job.ts'
import { type AddOptions, Queue } from '../queue/queue.ts'
import { BULK_JOBS_TASK, type BulkAction, type BulkJobsPayload } from '../queue/system-tasks.ts'
import { connectRedis, describeTarget, redisTarget, whenRedisAvailable } from '../redis/connection.ts'
import { checkDurability } from '../redis/durability.ts'
import { canConnect, hasRedisServer, startLocalRedis } from '../redis/local-server.ts'
import { startTracing, stopTracing } from '../tracing/index.ts'
import { Alerting } from '../worker/alerting.ts'
import type { Handler } from '../worker/handlers.ts'
import { ScheduleRunner } from '../worker/schedule-runner.ts'
import { Worker } from '../worker/worker.ts'
import { alertCommands } from './alerts.ts'
import { auditCommands } from './audit.ts'
import { limitCommands } from './limits.ts'
import { replayCommands } from './replay.ts'
import { scheduleCommands } from './schedules.ts'
import { searchCommands } from './search.ts'
import { shutdownBound, shutdownBudgetMs, unlessStopped } from './shutdown.ts'

const int = (name: string) => (v: string) => {
  const n = Number(v)
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be an integer`)
  return n
}
const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)

function config(overrides: Partial<Config> = {}): Config {
  return loadConfig(undefined, overrides)
}

async function withQueue<T>(fn: (q: Queue) => Promise<T>): Promise<T> {
  const q = await Queue.connect(config())
  try {
    return await fn(q)
  } finally {
    await q.close()
  }
}

/** A JSON option's value, or a VALIDATION error naming the option. */
function parseJsonArg(name: string, v: string): unknown {
  try {
    return JSON.parse(v)
  } catch {
    throw new DtqError('VALIDATION', `${name} is not valid JSON`)
  }
}

const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v, null, 2)}\n`)

function fmtTime(ms: number | null): string {
  return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '-'
}

function jobLine(j: Job): string {
  return [
    j.id.padEnd(26),
    j.queue.padEnd(12),
    j.state.padEnd(10),
    j.task_type.padEnd(12),
    String(j.attempts).padStart(3),
    fmtTime(j.updated_at),
    j.error ?? '',
  ].join('  ')
}

/**
 * Loads user handlers: a module whose default export is either a map of task type → handler
 * or a function that receives the worker (and may call worker.handle()).
 */
async function loadHandlers(worker: Worker, modules: string[]): Promise<void> {
  for (const m of modules) {
    const mod = (await import(pathToFileURL(resolve(launchDir(), m)).href)) as {
      default?: unknown
    }
    const exp = mod.default
    if (typeof exp === 'function') await (exp as (w: Worker) => unknown)(worker)
    else if (exp && typeof exp === 'object') {
      for (const [type, fn] of Object.entries(exp)) worker.handle(type, fn as Handler)
    } else
      throw new DtqError('VALIDATION', `${m}: default export must be a handler map or a function(worker)`)
  }
}

/** Runs a worker until SIGTERM/SIGINT (graceful) or a drain command. */
async function runWorker(
  cfg: Config,
  extra: {
    label: string
    handlers?: string[]
    alerting?: boolean
    /** `dev`: its budget includes the API's drain; `force` cuts its other clients too. */
    kind?: 'worker' | 'dev'
    force?: () => void
  },
): Promise<void> {
  const log = createLogger(cfg.logLevel, extra.label)
  // Signals first: a SIGTERM that arrives while the worker is still starting stops it cleanly.
  let worker: Worker | undefined
  let stopRequested = false
  let signals = 0
  const unsafe = new Set(cfg.unsafe)
  // Shutdown is bounded whatever Redis's state (invariant 35).
  const bound = shutdownBound({
    budgetMs: shutdownBudgetMs(cfg, extra.kind ?? 'worker'),
    abandoned: () => ({ jobs_held: worker?.held ?? 0, step: worker?.shutdownStep || 'starting' }),
    force: () => {
      worker?.abandon()
      extra.force?.()
    },
    warn: (fields, msg) => log.warn(fields, msg),
    off: unsafe.has('no-shutdown-bound'),
  })
  const onSignal = (sig: string) => {
    signals++
    if (signals > 1) {
      log.warn({ signal: sig }, 'second signal: exiting now (running jobs will be reclaimed)')
      process.exit(1)
    }
    log.info({ signal: sig, budget_ms: bound.budgetMs }, 'shutting down gracefully')
    stopRequested = true
    bound.arm()
    if (worker && worker.state !== 'idle') void worker.close()
  }
  process.on('SIGTERM', () => onSignal('SIGTERM'))
  process.on('SIGINT', () => onSignal('SIGINT'))
  log.info({ shutdown_budget_ms: bound.budgetMs }, 'starting')
  if (unsafe.size && !unsafe.has('none'))
    log.warn({ unsafe: [...unsafe] }, 'DTQ_UNSAFE: safety mechanisms are OFF (tests only)')
  const testOnly = unsafe.size && !unsafe.has('none') ? await import('../unsafe.ts') : null
  worker = new Worker(cfg, {
    log,
    clock: testOnly && unsafe.has('no-clock-sync') ? testOnly.localClock(cfg.testClockSkewMs) : undefined,
    unsafe: testOnly?.unsafeWorkerOptions(unsafe),
  })
  await loadHandlers(worker, extra.handlers ?? [])
  // Start-up waits for Redis (up to a minute each): a signal ends the wait (nothing is held yet).
  const w = worker
  const started =
    (await unlessStopped(connectRedis(w.store.redis, 60_000), bound)) &&
    (await unlessStopped(
      whenRedisAvailable(() => checkDurability(w.store.redis, cfg, (m) => log.warn(m))),
      bound,
    ))
  if (!started || stopRequested) {
    worker.abandon()
    return
  }
  await worker.start()
  if (stopRequested) void worker.close()
  // A worker process bids for the alerts lease (ADR 0025): a worker-only deployment alerts.
  const alertQueue = new Queue(worker.store.redis, cfg, { clock: worker.clock })
  const alerting = extra.alerting
    ? new Alerting({
        queue: alertQueue,
        config: cfg,
        log,
        unsafe: unsafe.has('no-alert-lease') ? testOnly?.unfencedAlerts(alertQueue.alerts) : undefined,
      })
    : null
  alerting?.start()
  await worker.stopped
  await alerting?.stop()
}

const program = new Command()
program.name('dtq').description('DTQ: a Redis Streams job orchestrator').showHelpAfterError()

// Tracing (ADR 0023) for the processes and the commands that add jobs, before their HTTP server
// and Redis clients exist; the SDK is not even loaded unless OTEL_* ask for traces. The long-running
// ones stop it (flushing their spans) before they exit; the others after their action.
const TRACED = new Set(['api', 'worker', 'dev', 'enqueue', 'flows add'])
const tracedName = (cmd: Command) =>
  cmd.parent && cmd.parent !== program ? `${cmd.parent.name()} ${cmd.name()}` : cmd.name()
program.hook('preAction', async (_, cmd) => {
  if (TRACED.has(tracedName(cmd)) && tracingRequested()) {
    const problems = checkTracingEnv()
    if (problems.length) throw new ConfigError(problems)
    const service = ['api', 'worker', 'dev'].includes(cmd.name()) ? cmd.name() : 'cli'
    await startTracing({ serviceName: `dtq-${service}`, redisSpans: config().traceRedis })
  }
})
program.hook('postAction', () => stopTracing())

program
  .command('worker')
  .description('run a worker pool')
  .option('--queues <list>', 'comma-separated queues to serve', list)
  .option('--concurrency <n>', 'jobs run at once', int('concurrency'))
  .option(
    '--handlers <module...>',
    'modules exporting handlers (default export: {task_type: fn} or fn(worker))',
  )
  .action(async (o: { queues?: string[]; concurrency?: number; handlers?: string[] }) => {
    const cfg = config({ workerQueues: o.queues, workerConcurrency: o.concurrency })
    await runWorker(cfg, { label: 'dtq-worker', handlers: o.handlers, alerting: true })
    await stopTracing()
    process.exit(0)
  })

/** Runs the API until SIGTERM/SIGINT, then drains (see http/server.ts). */
/** The HTTP stack loads only for the commands that serve it (workers start faster without it). */
async function startApi(...args: Parameters<typeof import('../http/server.ts').startApi>) {
  return (await import('../http/server.ts')).startApi(...args)
}

async function runApi(cfg: Config, port?: number): Promise<void> {
  const unsafe = new Set(cfg.unsafe)
  const testOnly =
    unsafe.has('no-schedule-cas') || unsafe.has('no-alert-lease') ? await import('../unsafe.ts') : null
  if (testOnly)
    process.stderr.write(
      `dtq api: DTQ_UNSAFE=${[...unsafe].join(',')}: safety mechanisms are OFF (tests only)\n`,
    )
  const api = await startApi(cfg, { port })
  // Redis was away at start and, once reached, failed an enforced durability check: stop.
  api.durability.catch((err: Error) => {
    process.stderr.write(`dtq api: ${err.message}\n`)
    void api.stop().finally(() => process.exit(1))
  })
  // Every API process fires due schedules too (ADR 0018: any number of runners is safe).
  const { queue } = api.app.dtq
  const schedules = new ScheduleRunner({
    schedules: queue.schedules.store,
    clock: queue.clock,
    fire: unsafe.has('no-schedule-cas') ? testOnly?.fireWithoutCas : undefined,
    onError: (err) => api.app.log.warn({ err: (err as Error).message }, 'schedule runner failed'),
  })
  schedules.start()
  // Every API process bids for the alerts lease too (ADR 0025): an API-only deployment alerts.
  const alerting = new Alerting({
    queue,
    config: cfg,
    log: api.app.log,
    unsafe: unsafe.has('no-alert-lease') ? testOnly?.unfencedAlerts(queue.alerts) : undefined,
  })
  alerting.start()
  process.stdout.write(`DTQ API listening on ${api.url} (OpenAPI at ${api.url}/docs)\n`)
  // Shutdown is bounded whatever Redis's state (invariant 35).
  const bound = shutdownBound({
    budgetMs: shutdownBudgetMs(cfg, 'api'),
    abandoned: () => ({ step: api.step() }),
    force: () => api.abandon(),
    warn: (fields, msg) => api.app.log.warn(fields, msg),
    off: unsafe.has('no-shutdown-bound'),
  })
  await new Promise<void>((resolve) => {
    const onSignal = () => {
      bound.arm()
      void Promise.all([schedules.stop(), alerting.stop()])
        .then(() => api.stop())
        .then(resolve)
    }
    process.once('SIGTERM', onSignal)
    process.once('SIGINT', onSignal)
  })
}

program
  .command('api')
  .description('run the REST control plane')
  .option('--port <n>', 'port (default PORT, 8000)', int('port'))
  .action(async (o: { port?: number }) => {
    await runApi(config(), o.port)
    await stopTracing()
    process.exit(0)
  })

program
  .command('dev')
  .description('everything in one process for a laptop: finds or starts Redis, runs a worker')
  .action(async () => {
    let cfg = config()
    const log = createLogger(cfg.logLevel, 'dtq-dev')
    let local: Awaited<ReturnType<typeof startLocalRedis>> | undefined
    const configured = ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'].some((v) => isSet(v))
    if (!configured && !(await canConnect('127.0.0.1', 6379))) {
      if (!hasRedisServer()) {
        process.stderr.write(
          'dtq: no Redis found. Install one (Debian: sudo apt-get install -y redis-server) or set REDIS_URL.\n',
        )
        process.exit(1)
      }
      local = await startLocalRedis('.data/redis')
      cfg = config({ redisUrl: local.url })
      log.info({ url: local.url, dir: '.data/redis' }, 'started a private redis-server (AOF on)')
    }
    const consoleDir = fileURLToPath(new URL('../../../ui/dist', import.meta.url))
    // Without tokens the laptop's API is open: only this machine may reach it (and the Host
    // check keeps browsers' DNS-rebinding pages out). With tokens it listens on every interface.
    const open = cfg.authDisabled || cfg.apiTokens === ''
    const api = await startApi(cfg, { consoleDir, host: open ? '127.0.0.1' : undefined })
    const base = api.url
      .replace('0.0.0.0', 'localhost')
      .replace('127.0.0.1', 'localhost')
      .replace('[::]', 'localhost')
    process.stdout.write(
      `\nDTQ is running against ${describeTarget(redisTarget(cfg))} (prefix "${cfg.keyPrefix}").\n` +
        `  Console:  ${base}/\n` +
        `  API:      ${base}/api/   (OpenAPI: ${base}/docs)\n` +
        `Try, in another terminal:\n` +
        `  curl -s -X POST ${base}/api/jobs -H 'content-type: application/json' -d '{"task_type":"echo","payload":{"hello":"world"}}'\n` +
        `  pnpm dtq enqueue sleep --payload '{"ms":500}' --count 20 && pnpm dtq stats\n\n`,
    )
    // With DATABASE_URL, the history's archiver too (ADR 0027).
    const archiver = cfg.databaseUrl
      ? await (await import('../history/run.ts')).startArchiver(
          cfg,
          createLogger(cfg.logLevel, 'dtq-archiver'),
        )
      : undefined
    try {
      await runWorker(cfg, {
        label: 'dtq-dev',
        alerting: true,
        kind: 'dev',
        force: () => {
          archiver?.abandon()
          api.abandon()
          local?.process.kill('SIGTERM')
        },
      })
    } finally {
      await archiver?.stop()
      await api.stop()
      await local?.stop()
    }
    await stopTracing()
    process.exit(0)
  })

program
  .command('archiver')
  .description('copy every finished job into PostgreSQL (DATABASE_URL; ADR 0027) until SIGTERM')
  .option('--off', 'switch archiving off in every queue instead (stop the archivers first)')
  .action(async (o: { off?: boolean }) => {
    const cfg = config()
    const history = await import('../history/run.ts')
    if (o.off) {
      const queues = await history.archivingOff(cfg)
      process.stdout.write(`archiving is off in ${queues.length} queue(s)\n`)
      return // not process.exit: the audit's postAction hook records it
    }
    if (!cfg.databaseUrl) throw new DtqError('VALIDATION', 'dtq archiver needs DATABASE_URL (postgres://...)')
    const log = createLogger(cfg.logLevel, 'dtq-archiver')
    // Until it runs, a SIGTERM ends it at once (the default action): nothing is held yet.
    log.info({ shutdown_budget_ms: shutdownBudgetMs(cfg, 'archiver') }, 'starting')
    const running = await history.startArchiver(cfg, log)
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve)
      process.once('SIGINT', resolve)
    })
    // Shutdown is bounded whatever Redis's (and PostgreSQL's) state (invariant 35).
    shutdownBound({
      budgetMs: shutdownBudgetMs(cfg, 'archiver'),
      abandoned: () => ({ step: 'archiving (the batch in flight is archived again: rows are upserted)' }),
      force: () => running.abandon(),
      warn: (fields, msg) => log.warn(fields, msg),
      off: cfg.unsafe.includes('no-shutdown-bound'),
    }).arm()
    await running.stop()
    process.exit(0)
  })

/** `enqueue`'s dedup and deadline flags as add options (ADR 0021). */
function flowControlOptions(o: {
  dedup?: string
  dedupTtlMs?: number
  dedupKey?: string
  startBy?: string
  expiresInMs?: number
}): Pick<AddOptions, 'dedup' | 'start_by' | 'expires_in_ms'> {
  if (o.dedup === undefined && (o.dedupTtlMs !== undefined || o.dedupKey !== undefined))
    throw new DtqError('VALIDATION', '--dedup-ttl-ms and --dedup-key go with --dedup')
  const startBy = o.startBy !== undefined && /^\d+$/.test(o.startBy) ? Number(o.startBy) : o.startBy
  return {
    ...(o.dedup !== undefined
      ? { dedup: { mode: o.dedup as DedupMode, ttl_ms: o.dedupTtlMs, key: o.dedupKey } }
      : {}),
    ...(startBy !== undefined ? { start_by: startBy } : {}),
    ...(o.expiresInMs !== undefined ? { expires_in_ms: o.expiresInMs } : {}),
  }
}

/** What an add did: created, answered by a job's dedup, or an existing job (id or idempotency key). */
const addOutcome = (job: Job, created: boolean) =>
  created ? 'created' : job.deduplicated ? 'deduplicated' : 'exists'

program
  .command('enqueue')
  .description('add jobs')
  .argument('<task_type>', 'the handler to run (built-ins: echo, sleep, fail, cpu, synthetic)')
  .option('--payload <json>', 'job payload as JSON', '{}')
  .option('--count <n>', 'how many identical jobs', int('count'), 1)
  .option('--queue <name>', 'queue')
  .option('--priority <p>', 'high | normal | low')
  .option('--delay-ms <n>', 'run no sooner than this', int('delay-ms'))
  .option('--max-retries <n>', 'retries before the DLQ', int('max-retries'))
  .option('--timeout-ms <n>', 'run-time limit', int('timeout-ms'))
  .option('--idempotency-key <key>', 'a repeat with the same key returns the original job')
  .option(
    '--depends-on <jobs>',
    'existing jobs it waits for until each completed: comma-separated ids, queue/id for another queue (one job only)',
  )
  .option('--on-parent-failure <policy>', 'with --depends-on: fail | ignore | cancel (default fail)')
  .option(
    '--dedup <mode>',
    'unique | throttle | debounce: by --dedup-key, or by task type + payload (ADR 0021)',
  )
  .option('--dedup-ttl-ms <n>', 'with --dedup: the window, ms (unique: optional)', int('dedup-ttl-ms'))
  .option('--dedup-key <key>', 'with --dedup: the key (default: task type + payload)')
  .option(
    '--start-by <time>',
    'start deadline (ms since the epoch or ISO 8601): not started by then, it expires',
  )
  .option('--expires-in-ms <n>', 'start deadline, ms from now', int('expires-in-ms'))
  .option('--json', 'print the jobs as JSON')
  .action(
    async (
      taskType: string,
      o: {
        dependsOn?: string
        onParentFailure?: string
        payload: string
        count: number
        queue?: string
        priority?: Priority
        delayMs?: number
        maxRetries?: number
        timeoutMs?: number
        idempotencyKey?: string
        dedup?: string
        dedupTtlMs?: number
        dedupKey?: string
        startBy?: string
        expiresInMs?: number
        json?: boolean
      },
    ) => {
      const control = flowControlOptions(o)
      let payload: unknown
      try {
        payload = JSON.parse(o.payload)
      } catch {
        throw new DtqError('VALIDATION', '--payload is not valid JSON')
      }
      if (o.count < 1 || o.count > 1_000_000)
        throw new DtqError('VALIDATION', '--count must be from 1 to 1000000')
      if (o.dependsOn !== undefined) {
        if (o.count !== 1) throw new DtqError('VALIDATION', '--depends-on adds one job: not with --count')
        const depends_on = o.dependsOn.split(',').map((ref) => {
          const slash = ref.indexOf('/')
          return {
            job_id: slash < 0 ? ref : ref.slice(slash + 1),
            queue: slash < 0 ? undefined : ref.slice(0, slash),
            on_failure: o.onParentFailure as FlowPolicy | undefined,
          }
        })
        await withQueue(async (q) => {
          const { job, created } = await q.add(taskType, payload, {
            queue: o.queue,
            priority: o.priority,
            max_retries: o.maxRetries,
            timeout_ms: o.timeoutMs,
            idempotency_key: o.idempotencyKey,
            delay_ms: o.delayMs,
            depends_on,
            ...control,
          })
          if (o.json) print({ job, created })
          else
            process.stdout.write(`${addOutcome(job, created)} ${job.id} (${job.state}, queue ${job.queue})\n`)
        })
        return
      }
      if (o.onParentFailure !== undefined)
        throw new DtqError('VALIDATION', '--on-parent-failure goes with --depends-on')
      await withQueue(async (q) => {
        const started = Date.now()
        let created = 0
        let last: Job | undefined
        const chunk = 1000
        for (let done = 0; done < o.count; done += chunk) {
          const n = Math.min(chunk, o.count - done)
          const res = await q.addBulk(
            Array.from({ length: n }, () => ({
              task_type: taskType,
              payload,
              queue: o.queue,
              priority: o.priority,
              delay_ms: o.delayMs,
              max_retries: o.maxRetries,
              timeout_ms: o.timeoutMs,
              idempotency_key: o.idempotencyKey,
              ...control,
            })),
          )
          created += res.filter((r) => r.created).length
          last = res[res.length - 1]?.job
          if (o.json) for (const r of res) print(r)
        }
        if (!o.json) {
          const secs = (Date.now() - started) / 1000
          process.stdout.write(
            o.count === 1 && last
              ? `${addOutcome(last, created > 0)} ${last.id} (${last.state}, queue ${last.queue})\n`
              : `enqueued ${created} of ${o.count} jobs in ${secs.toFixed(2)} s\n`,
          )
        }
      })
    },
  )

program
  .command('stats')
  .description('counts by state, per queue and in total')
  .option('--json', 'machine-readable')
  .action(async (o: { json?: boolean }) => {
    await withQueue(async (q) => {
      const s = await q.stats()
      if (o.json) {
        print({
          totals: s.totals,
          queues: Object.fromEntries(
            s.queues.map((x) => [
              x.queue,
              {
                ...x.counts,
                dlq: x.dlq,
                paused: x.paused,
                oldest_waiting_ms: x.oldest_waiting_ms,
                totals: x.totals,
              },
            ]),
          ),
        })
        return
      }
      const cols = STATES
      process.stdout.write(
        `${'queue'.padEnd(16)}${cols.map((c) => c.padStart(11)).join('')}${'dlq'.padStart(8)}\n`,
      )
      for (const x of s.queues) {
        process.stdout.write(
          `${(x.queue + (x.paused ? ' (paused)' : '')).padEnd(16)}${cols.map((c) => String(x.counts[c]).padStart(11)).join('')}${String(x.dlq).padStart(8)}\n`,
        )
      }
      process.stdout.write(
        `${'total'.padEnd(16)}${cols.map((c) => String(s.totals[c]).padStart(11)).join('')}${String(s.totals.dlq).padStart(8)}\n`,
      )
    })
  })

program
  .command('jobs')
  .description('list jobs, most recently changed first')
  .option('--status <state>', STATES.join('|'))
  .option('--queue <name>', 'queue')
  .option('--type <task_type>', 'task type')
  .option('--limit <n>', 'page size', int('limit'), 20)
  .option('--cursor <c>', 'continue from a previous page')
  .option('--json', 'machine-readable')
  .action(
    async (o: {
      status?: JobState
      queue?: string
      type?: string
      limit: number
      cursor?: string
      json?: boolean
    }) => {
      await withQueue(async (q) => {
        const page = await q.listJobs({
          state: o.status,
          queue: o.queue,
          task_type: o.type,
          limit: o.limit,
          cursor: o.cursor,
        })
        if (o.json) return print(page)
        for (const j of page.items) process.stdout.write(`${jobLine(j)}\n`)
        if (page.next_cursor) process.stdout.write(`next: --cursor ${page.next_cursor}\n`)
      })
    },
  )

program
  .command('job')
  .description('show one job')
  .argument('<id>')
  .option('--queue <name>', 'queue (faster)')
  .action(async (id: string, o: { queue?: string }) => {
    await withQueue(async (q) => {
      const job = await q.getJobOrThrow(id, o.queue)
      print({ ...job, logs: await q.jobLogs(id, job.queue) })
    })
  })

program
  .command('cancel')
  .description('cancel a job (a running one is asked to stop)')
  .argument('<id>')
  .option('--queue <name>', 'queue')
  .action(async (id: string, o: { queue?: string }) => {
    await withQueue(async (q) => {
      const r = await q.cancel(id, o.queue)
      process.stdout.write(
        r.outcome === 'cancelled' ? `cancelled ${id}\n` : `cancel requested for running job ${id}\n`,
      )
    })
  })

program
  .command('retry')
  .description('run a failed or cancelled job again')
  .argument('<id>')
  .option('--queue <name>', 'queue')
  .action(async (id: string, o: { queue?: string }) => {
    await withQueue(async (q) => {
      const job = await q.retry(id, o.queue)
      process.stdout.write(`requeued ${job.id}\n`)
    })
  })

// ---- day-2 operations (ADR 0020) ---------------------------------------------------------

program
  .command('promote')
  .description('run a scheduled or retrying job now')
  .argument('<id>')
  .option('--queue <name>', 'queue')
  .action(async (id: string, o: { queue?: string }) =>
    withQueue(async (q) => {
      const job = await q.runNow(id, o.queue)
      process.stdout.write(`queued ${job.id}\n`)
    }),
  )

program
  .command('priority')
  .description("change a job's priority before it starts (high, normal, low)")
  .argument('<id>')
  .argument('<priority>')
  .option('--queue <name>', 'queue')
  .action(async (id: string, priority: string, o: { queue?: string }) =>
    withQueue(async (q) => {
      const job = await q.setPriority(id, priority as Priority, o.queue)
      process.stdout.write(`${job.id} priority ${job.priority}\n`)
    }),
  )

program
  .command('edit')
  .description('replace the payload of a job that has not started or has failed (recorded on the job)')
  .argument('<id>')
  .requiredOption('--payload <json>', 'the new payload, JSON')
  .option('--queue <name>', 'queue')
  .option('--by <who>', 'who edits it (default: cli:<user>)')
  .action(async (id: string, o: { queue?: string; payload: string; by?: string }) =>
    withQueue(async (q) => {
      const job = await q.editPayload(id, parseJsonArg('--payload', o.payload), {
        queue: o.queue,
        by: o.by ?? `cli:${userInfo().username}`,
      })
      print(job)
    }),
  )

program
  .command('rm')
  .description('delete a job in any state (a running one is fenced; a flow member must end first)')
  .argument('<id>')
  .option('--queue <name>', 'queue')
  .action(async (id: string, o: { queue?: string }) =>
    withQueue(async (q) => {
      const r = await q.deleteJob(id, o.queue)
      process.stdout.write(`deleted ${r.id} (${r.state}) from ${r.queue}\n`)
    }),
  )

program
  .command('bulk')
  .description('cancel or retry every job matching a filter at a rate, as a system job on the workers')
  .argument('<action>', 'cancel | retry')
  .option('--queue <name>', 'queue')
  .option('--state <state>', `one state (${STATES.join(', ')})`)
  .option('--task-type <type>', 'task type')
  .option('--older-than-ms <ms>', 'last changed at least this long ago', int('--older-than-ms'))
  .option('--error <text>', 'last error contains (case-insensitive)')
  .option('--rate <n>', 'jobs per second', int('--rate'), 100)
  .option('--max <n>', 'at most this many jobs', int('--max'))
  .action(
    async (
      action: string,
      o: {
        queue?: string
        state?: JobState
        taskType?: string
        olderThanMs?: number
        error?: string
        rate: number
        max?: number
      },
    ) =>
      withQueue(async (q) => {
        const filter = {
          queue: o.queue,
          state: o.state,
          task_type: o.taskType,
          older_than_ms: o.olderThanMs,
          error_contains: o.error,
        }
        for (const k of Object.keys(filter) as Array<keyof typeof filter>)
          if (filter[k] === undefined) delete filter[k]
        q.checkBulk(action as BulkAction, filter, o.rate, o.max)
        const payload: BulkJobsPayload = {
          action: action as BulkAction,
          filter,
          rate_per_sec: o.rate,
          max: o.max,
        }
        const { job } = await q.add(BULK_JOBS_TASK, payload, {
          queue: o.queue,
          priority: 'high',
          max_retries: 0,
        })
        process.stdout.write(
          `${action} by filter at ${o.rate}/s: follow job ${job.id} (dtq job ${job.id} --queue ${job.queue})\n`,
        )
      }),
  )

const flows = program
  .command('flows')
  .description('flows: graphs of jobs that wait for their parents (ADR 0019)')
flows
  .command('add')
  .description(
    'add a flow from a JSON file ({nodes: [{key, task_type, queue?, depends_on?, ...}], idempotency_key?}; - for stdin)',
  )
  .argument('<file>')
  .action(async (file: string) => {
    const text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8')
    let spec: FlowSpec
    try {
      spec = JSON.parse(text) as FlowSpec
    } catch (err) {
      throw new DtqError('VALIDATION', `${file} is not JSON: ${(err as Error).message}`)
    }
    await withQueue(async (q) => {
      const { flow, created } = await q.addFlow(spec)
      print({ created, ...flow })
    })
  })
flows
  .command('get')
  .description('show a flow: its nodes with their live states, and its edges')
  .argument('<id>')
  .action(async (id: string) => {
    await withQueue(async (q) => {
      const flow = await q.getFlow(id)
      if (!flow) throw new DtqError('NOT_FOUND', `flow ${id} not found`)
      print(flow)
    })
  })

const dlq = program.command('dlq').description('the dead-letter queue')
dlq
  .command('ls')
  .description('list dead-lettered jobs, newest first')
  .option('--queue <name>', 'queue')
  .option('--type <task_type>', 'task type')
  .option('--priority <p>', 'high | normal | low')
  .option('--error <text>', 'error message contains')
  .option('--older-than-days <n>', 'failed at least this long ago', Number)
  .option('--limit <n>', 'page size', int('limit'), 20)
  .option('--json', 'machine-readable')
  .action(
    async (o: {
      queue?: string
      type?: string
      priority?: Priority
      error?: string
      olderThanDays?: number
      limit: number
      json?: boolean
    }) => {
      await withQueue(async (q) => {
        const page = await q.listDlq({
          queue: o.queue,
          task_type: o.type,
          priority: o.priority,
          error_contains: o.error,
          older_than_ms: o.olderThanDays === undefined ? undefined : Math.round(o.olderThanDays * 86_400_000),
          limit: o.limit,
        })
        if (o.json) return print(page)
        for (const j of page.items) process.stdout.write(`${jobLine(j)}\n`)
        if (!page.items.length) process.stdout.write('the DLQ is empty\n')
      })
    },
  )
dlq
  .command('stats')
  .description('dead letters counted by queue, type, priority and error class (exact, over the whole DLQ)')
  .option('--queue <name>', 'queue')
  .option('--type <task_type>', 'task type')
  .option('--priority <p>', 'high | normal | low')
  .option('--json', 'machine-readable')
  .action(async (o: { queue?: string; type?: string; priority?: Priority; json?: boolean }) => {
    await withQueue(async (q) => {
      const s = await q.dlqStats({ queue: o.queue, task_type: o.type, priority: o.priority })
      if (o.json) return print({ groups: s.groups, total: s.total })
      for (const g of s.groups)
        process.stdout.write(
          `${String(g.count).padStart(8)}  ${g.queue.padEnd(16)} ${g.task_type.padEnd(20)} ${g.priority.padEnd(6)} ${g.error_class}\n`,
        )
      process.stdout.write(`${String(s.total).padStart(8)}  in all\n`)
    })
  })
dlq
  .command('retry')
  .description('retry dead-lettered jobs: the given ids, or --all matching the filters at --rate per second')
  .argument('[ids...]')
  .option('--all', 'every job matching the filters')
  .option('--queue <name>', 'queue')
  .option('--type <task_type>', 'task type')
  .option('--error <text>', 'error message contains')
  .option('--rate <n>', 'jobs per second', int('rate'), 100)
  .action(
    async (
      ids: string[],
      o: { all?: boolean; queue?: string; type?: string; error?: string; rate: number },
    ) => {
      await withQueue(async (q) => {
        if (ids.length) {
          for (const id of ids) await q.retry(id, o.queue)
          process.stdout.write(`requeued ${ids.length}\n`)
        } else if (o.all) {
          const n = await q.retryDlqMany(
            { queue: o.queue, task_type: o.type, error_contains: o.error },
            { ratePerSec: o.rate },
          )
          process.stdout.write(`requeued ${n}\n`)
        } else throw new DtqError('VALIDATION', 'give job ids or --all')
      })
    },
  )
dlq
  .command('rm')
  .description('delete dead-lettered jobs')
  .argument('<ids...>')
  .option('--queue <name>', 'queue')
  .action(async (ids: string[], o: { queue?: string }) => {
    await withQueue(async (q) => {
      for (const id of ids) await q.deleteDlq(id, o.queue)
      process.stdout.write(`deleted ${ids.length}\n`)
    })
  })
dlq
  .command('purge')
  .description('delete dead-lettered jobs older than N days (0: all)')
  .requiredOption('--older-than-days <n>', 'age in days', Number)
  .option('--queue <name>', 'queue')
  .option('--priority <p>', 'only this priority: high | normal | low')
  .action(async (o: { olderThanDays: number; queue?: string; priority?: Priority }) => {
    await withQueue(async (q) => {
      const n = await q.purgeDlq(o.olderThanDays, o.queue, o.priority)
      process.stdout.write(`purged ${n}\n`)
    })
  })

const queues = program.command('queues').description('queues: list, pause, resume, partition')
queues.action(async () => {
  await withQueue(async (q) => {
    const s = await q.statsWithConsumers()
    for (const x of s.queues) {
      const depth = Object.entries(x.streams)
        .map(([p, v]) => `${p}:${v.lag ?? '-'}`)
        .join(' ')
      process.stdout.write(
        `${(x.partitions ? `${x.queue}[${x.partitions}]` : x.queue).padEnd(16)} ${x.paused ? 'paused ' : 'running'}  waiting ${depth}  delayed ${x.delayed}  dlq ${x.dlq}  oldest ${x.oldest_waiting_ms ?? '-'} ms  workers ${x.live_workers}${x.no_workers ? '  NO WORKERS' : ''}\n`,
      )
    }
  })
})
queues
  .command('pause')
  .argument('<queue>')
  .action(async (name: string) => withQueue(async (q) => q.pauseQueue(name)))
queues
  .command('resume')
  .argument('<queue>')
  .action(async (name: string) => withQueue(async (q) => q.resumeQueue(name)))
queues
  .command('empty')
  .description("remove a queue's jobs waiting to run (queued, scheduled, retrying), in pages")
  .argument('<queue>')
  .option('--limit <n>', 'jobs per call', int('--limit'), 1000)
  .action(async (name: string, o: { limit: number }) =>
    withQueue(async (q) => {
      let removed = 0
      let cancelled = 0
      for (;;) {
        const r = await q.emptyQueue(name, { limit: o.limit })
        removed += r.removed
        cancelled += r.cancelled
        if (!r.more) break
      }
      process.stdout.write(`removed ${removed}, cancelled ${cancelled} (flow members) from ${name}\n`)
    }),
  )
queues
  .command('rm')
  .description('delete a queue and all its keys (refused while jobs run in it unless --force)')
  .argument('<queue>')
  .option('--force', 'even with running jobs (their results are then rejected)')
  .action(async (name: string, o: { force?: boolean }) =>
    withQueue(async (q) => {
      const r = await q.deleteQueue(name, { force: o.force })
      process.stdout.write(`deleted queue ${r.queue} (${r.keys} keys)\n`)
    }),
  )
queues
  .command('created-index')
  .description(
    "switch a queue's created-time index on (backfilled here, resumable) or off: GET /jobs?sort=created needs it (ADR 0035)",
  )
  .argument('<queue>')
  .argument('<state>', 'on or off')
  .action(async (name: string, state: string) =>
    withQueue(async (q) => {
      if (state !== 'on' && state !== 'off') throw new DtqError('VALIDATION', 'state must be on or off')
      const now = await q.setCreatedIndex(name, state === 'on', Number.POSITIVE_INFINITY)
      print({ queue: name, created_index: now })
    }),
  )
queues
  .command('partitions')
  .description("show a queue's partition count, or raise it (it only grows; ADR 0017)")
  .argument('<queue>')
  .argument('[count]', 'the new count')
  .action(async (name: string, count?: string) =>
    withQueue(async (q) => {
      if (count === undefined) {
        print({ queue: name, partitions: await q.partitions(name) })
        return
      }
      const n = Number(count)
      print(await q.setPartitions(name, Number.isInteger(n) ? n : Number.NaN))
    }),
  )

const workers = program.command('workers').description('live workers; pause, resume or drain one')
workers.option('--json', 'machine-readable').action(async (o: { json?: boolean }) => {
  await withQueue(async (q) => {
    const ws = await q.workers()
    if (o.json) return print(ws)
    for (const w of ws) {
      process.stdout.write(
        `${w.id.padEnd(40)} ${w.state.padEnd(9)} ${w.queues.join(',').padEnd(16)} active ${w.active}/${w.concurrency}  processed ${w.processed}  failed ${w.failed}\n`,
      )
    }
    if (!ws.length) process.stdout.write('no live workers\n')
  })
})
for (const cmd of ['pause', 'resume', 'drain'] as const) {
  workers
    .command(cmd)
    .argument('<id>', "worker id, or '*' for all")
    .action(async (id: string) => withQueue(async (q) => q.commandWorker(id, cmd)))
}

workers
  .command('concurrency')
  .description("change a worker's concurrency at runtime (running jobs go on)")
  .argument('<id>', "worker id, or '*' for all")
  .argument('<n>', 'jobs at once', int('<n>'))
  .action(async (id: string, n: number) => withQueue(async (q) => q.setWorkerConcurrency(id, n)))

replayCommands(program, withQueue, print, config)
scheduleCommands(program, withQueue, print)
searchCommands(program, withQueue, config)
limitCommands(program, withQueue, print)
alertCommands(program, withQueue, print, config)
const audit = auditCommands(program, () => config())

program.parseAsync(process.argv).catch(async (err: unknown) => {
  await audit.failed(err)
  if (err instanceof ConfigError) {
    process.stderr.write(`dtq: ${err.message}\n`)
    process.exit(2)
  }
  if (err instanceof DtqError) {
    process.stderr.write(`dtq: ${err.message}\n`)
    process.exit(err.status === 404 ? 3 : 2)
  }
  process.stderr.write(`dtq: ${(err as Error).message}\n`)
  process.exit(1)
})
