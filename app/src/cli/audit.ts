/**
 * The CLI's operator commands act on Redis directly, not through the API: each is recorded in
 * the same audit stream as the API's actions (ADR 0026), with the actor `cli:<os user>@<host>`,
 * once it has ended (ok or its error). Reads, processes (worker, api, dev, archiver) and production
 * traffic (enqueue, flows add) are not recorded; a command that is an action only in one form
 * (`archiver --off`) is recorded in that form only (AUDITED_FORMS). Recording never changes the
 * command's outcome or exit code; a failed write is reported on stderr. Never a payload: options
 * named payload are left out.
 */
import { hostname, userInfo } from 'node:os'
import type { Command } from 'commander'
import type { Config } from '../config.ts'
import { DtqError, isRedisUnavailable } from '../errors.ts'
import { AuditLog } from '../redis/audit.ts'
import { connectRedis, createRedis, redisTarget } from '../redis/connection.ts'
import { Keys } from '../redis/keys.ts'

/**
 * Commands (their path below `dtq`) that are operator actions: every command that writes to
 * Redis, but for processes and production traffic. Each has an audited HTTP twin where the API
 * has one (`replay --dry-run` too, as `POST /jobs/:id/replay?dry_run=true` is).
 */
export const AUDITED_COMMANDS: ReadonlySet<string> = new Set([
  'cancel',
  'retry',
  'promote',
  'priority',
  'edit',
  'rm',
  'bulk',
  'dlq retry',
  'dlq rm',
  'dlq purge',
  'queues pause',
  'queues resume',
  'queues empty',
  'queues rm',
  'queues partitions',
  'workers pause',
  'workers resume',
  'workers drain',
  'workers concurrency',
  'schedules set',
  'schedules rm',
  'schedules pause',
  'schedules resume',
  'schedules trigger',
  'limits set',
  'breaker',
  'alerts test',
  'alerts ack',
  'alerts silence',
  'queues created-index',
  'replay',
])

type Options = Record<string, unknown>

/**
 * Commands that are operator actions only in some forms, by their options: `archiver` runs the
 * archiver process (not an action, like `worker`), `archiver --off` switches archiving off in
 * every queue (releasing every archive hold) and is one.
 */
export const AUDITED_FORMS: ReadonlyMap<string, (opts: Options) => boolean> = new Map([
  ['archiver', (o: Options) => o.off === true],
])

/** Whether the command at `path`, run with these options, is an operator action. */
export function isAudited(path: string, opts: Options): boolean {
  return AUDITED_COMMANDS.has(path) || AUDITED_FORMS.get(path)?.(opts) === true
}

/** `dlq purge` for the command `purge` under `dlq` under the program. */
export function commandPath(cmd: Command): string {
  const names: string[] = []
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name())
  return names.join(' ')
}

const actor = () => {
  let user = 'unknown'
  try {
    user = userInfo().username
  } catch {
    // no passwd entry (a container's uid): unknown
  }
  return `cli:${user}@${hostname()}`
}

/**
 * Hooks the program so its operator commands are recorded; `failed(err)` records the running
 * command's failure (the program's catch calls it before exiting).
 */
export function auditCommands(program: Command, config: () => Config) {
  let running: { path: string; cmd: Command; started: number } | null = null

  const record = async (status: number, result: string) => {
    const r = running
    running = null
    if (!r) return
    let cfg: Config
    try {
      cfg = config()
    } catch {
      return // bad settings: the command already failed on them
    }
    if (cfg.auditMaxLen <= 0) return
    const redis = createRedis({ target: redisTarget(cfg), commandTimeoutMs: cfg.redisCommandTimeoutMs })
    const log = new AuditLog(redis, new Keys(cfg.keyPrefix), cfg.auditMaxLen, (err) =>
      process.stderr.write(`dtq: audit entry not written: ${(err as Error).message}\n`),
    )
    const opts = Object.entries(r.cmd.opts()).filter(([k]) => !/payload/i.test(k))
    const queue = opts.find(([k]) => k === 'queue')?.[1]
    const target = [
      queue !== undefined ? `queue=${String(queue)}` : '',
      r.cmd.args.length ? `args=${r.cmd.args.join(' ')}` : '',
    ]
      .filter(Boolean)
      .join(' ')
    try {
      await connectRedis(redis, cfg.redisCommandTimeoutMs)
      // Redis's time, as every process writes it (ADR 0012): one TIME, this command's only.
      const [sec, usec] = await redis.time()
      await log.record({
        at: Number(sec) * 1000 + Math.floor(Number(usec) / 1000),
        actor: actor(),
        role: 'cli',
        action: `cli ${r.path}`,
        target,
        status,
        result,
        ip: hostname(),
        user_agent: `dtq-cli node/${process.versions.node}`,
        request_id: '',
        duration_ms: Date.now() - r.started,
        detail: opts.map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`).join(' '),
      })
    } catch (err) {
      process.stderr.write(`dtq: audit entry not written: ${(err as Error).message}\n`)
    } finally {
      redis.disconnect()
    }
  }

  program.hook('preAction', (_root, cmd) => {
    const path = commandPath(cmd)
    running = isAudited(path, cmd.opts()) ? { path, cmd, started: Date.now() } : null
  })
  program.hook('postAction', () => record(200, 'ok'))
  return {
    // A command that failed because Redis is away is not recorded: the write would fail as well,
    // and only after a wait.
    failed: (err: unknown) =>
      isRedisUnavailable(err)
        ? undefined
        : err instanceof DtqError
          ? record(err.status, err.code)
          : record(500, 'INTERNAL'),
  }
}
