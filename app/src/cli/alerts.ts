/**
 * `dtq alerts test|list|rules|ack|silence|history` (ADR 0025): thin clients of the alert store
 * and channels. `test` sends through the channels this command's settings configure (the same
 * ALERT_* / SMTP_* / SLACK_WEBHOOK_URL as the servers), now, and exits 1 if one failed.
 */
import type { Command } from 'commander'
import { configuredChannels, sendTestAlert } from '../alerts/channels.ts'
import type { Config } from '../config.ts'
import { DtqError } from '../errors.ts'
import type { Queue } from '../queue/queue.ts'

type WithQueue = <T>(fn: (q: Queue) => Promise<T>) => Promise<T>

/** "90s", "15m", "2h", "1d" or plain ms, as ms. */
function duration(v: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(v)
  if (!m) throw new DtqError('VALIDATION', `--for is a duration like 30m, 2h, 1d (got ${v})`)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 'ms']!
  return Number(m[1]) * unit
}

export function alertCommands(
  program: Command,
  withQueue: WithQueue,
  print: (v: unknown) => void,
  config: () => Config,
): void {
  const a = program
    .command('alerts')
    .description('alerts: test the channels, list, rules, acknowledge, silence')
  a.command('test')
    .description(
      'send a test alert through each configured channel (webhook, Slack, email) and say how each went',
    )
    .action(() =>
      withQueue(async (q) => {
        const results = await sendTestAlert(configuredChannels(config()), q.alerts, 'cli')
        if (!results.length)
          process.stderr.write(
            'dtq: no alert channel configured (ALERT_WEBHOOK_URL, SLACK_WEBHOOK_URL, SMTP_HOST + ALERT_EMAIL)\n',
          )
        for (const r of results)
          process.stdout.write(`${r.channel.padEnd(8)} ${r.ok ? 'ok' : `FAILED: ${r.error}`} (${r.ms} ms)\n`)
        if (!results.length || results.some((r) => !r.ok)) process.exitCode = 1
      }),
    )
  a.command('list')
    .description('alerts firing and pending now')
    .action(() => withQueue(async (q) => print(await q.alerts.list())))
  a.command('rules')
    .description('the rules (built-in ones from the ALERT_* settings, and stored ones)')
    .action(() => withQueue(async (q) => print(await q.alerts.rules(config()))))
  a.command('history')
    .option('--limit <n>', 'entries', '50')
    .description('what happened, newest first')
    .action((o: { limit: string }) =>
      withQueue(async (q) => print((await q.alerts.history(Number(o.limit))).entries)),
    )
  a.command('ack')
    .argument('<id>', 'the alert (rule:queue[:task_type])')
    .option('--by <name>', 'who acknowledges', process.env.USER ?? 'cli')
    .description('acknowledge a firing alert: no more repeats until it resolves')
    .action((id: string, o: { by: string }) => withQueue(async (q) => print(await q.alerts.ack(id, o.by))))
  a.command('silence')
    .option('--rule <id>')
    .option('--queue <name>')
    .option('--task-type <type>')
    .requiredOption('--for <duration>', 'how long: 30m, 2h, 1d')
    .option('--comment <text>', '', '')
    .option('--by <name>', 'who silences', process.env.USER ?? 'cli')
    .description('silence alerts of a rule and/or a queue / task type for a while')
    .action(
      (o: { rule?: string; queue?: string; taskType?: string; for: string; comment: string; by: string }) =>
        withQueue(async (q) => {
          if (!o.rule && !o.queue && !o.taskType)
            throw new DtqError('VALIDATION', 'give at least one of --rule, --queue, --task-type')
          print(
            await q.alerts.addSilence({
              rule: o.rule ?? null,
              queue: o.queue ?? null,
              task_type: o.taskType ?? null,
              until: q.clock.now() + duration(o.for),
              comment: o.comment,
              created_by: o.by,
            }),
          )
        }),
    )
}
