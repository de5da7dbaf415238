/**
 * The monitoring kit in docker/ with the real parts (issue 20, "Metrics"): Debian's promtool
 * checks the shipped Prometheus config and alert rules and runs their unit tests (one fire and
 * one no-fire case per alert, and a negative control: a weakened rule makes them fail); then a
 * real Prometheus, run from the shipped config (only its target, token path and rules path
 * changed, and a 1 s interval), scrapes a live DTQ API over a private redis-server while a
 * Worker runs jobs: the target is up with no parse error, the series carry the values the jobs
 * made, every Grafana panel's expression and every rule evaluate without error, the "no live
 * worker" rule picks exactly the queue without workers, and once the redis-server is stopped
 * the API still answers its scrape with `redis_up 0` and the Redis alert goes pending.
 *
 * Skipped (with a message) only when promtool or prometheus is missing outside CI; in CI they
 * must be there (scripts/test.sh installs Debian's `prometheus`).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { PermanentJobError } from '../src/errors.ts'
import { freePort, type LocalRedis, startLocalRedis } from '../src/redis/local-server.ts'
import { type ApiBundle, apiSetup, TOKEN_SETTING, TOKENS } from './api-helpers.ts'
import { waitFor } from './helpers.ts'

const ROOT = resolve(import.meta.dirname, '../..')
const DOCKER = join(ROOT, 'docker')
const which = (bin: string): string | null => {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : null
}
const PROMTOOL = which('promtool')
const PROMETHEUS = which('prometheus') ?? (existsSync('/usr/bin/prometheus') ? '/usr/bin/prometheus' : null)
const MISSING = !PROMTOOL || !PROMETHEUS
if (MISSING && !process.env.CI)
  console.warn(
    'prometheus.test.ts skipped: promtool/prometheus not installed (apt-get install prometheus); CI installs and runs it',
  )

const promtool = (...args: string[]) =>
  spawnSync(PROMTOOL ?? 'promtool', args, { encoding: 'utf8', cwd: ROOT })

describe.skipIf(MISSING && !process.env.CI)('promtool: the shipped config and rules', () => {
  it('checks the config (syntax, and in full with the files it names) and the rules', () => {
    const syntax = promtool('check', 'config', '--syntax-only', 'docker/prometheus/prometheus.yml')
    expect(syntax.status, syntax.stdout + syntax.stderr).toBe(0)
    const dir = mkdtempSync(join(tmpdir(), 'dtq-promcfg-'))
    try {
      const cfg = adaptConfig(dir, '127.0.0.1:1', 15)
      const full = promtool('check', 'config', cfg)
      expect(full.status, full.stdout + full.stderr).toBe(0)
      expect(full.stdout).toMatch(/SUCCESS: 2 rule files found/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    const rules = promtool('check', 'rules', 'docker/prometheus/rules/dtq.rules.yml')
    expect(rules.status, rules.stdout + rules.stderr).toBe(0)
    expect(rules.stdout).toMatch(/SUCCESS: 6 rules found/)
    const archive = promtool('check', 'rules', 'docker/prometheus/rules/archive.rules.yml')
    expect(archive.status, archive.stdout + archive.stderr).toBe(0)
    expect(archive.stdout).toMatch(/SUCCESS: 1 rules found/)
  })

  it('passes the rules unit tests: every alert fires on its case and not on the others', () => {
    const tests = ['dtq', 'archive']
      .map((f) => readFileSync(join(DOCKER, `prometheus/tests/${f}.rules.test.yml`), 'utf8'))
      .join('\n')
    for (const alert of ALERTS) expect(tests, alert).toContain(`alertname: ${alert}`)
    const r = promtool('test', 'rules', 'docker/prometheus/tests/dtq.rules.test.yml')
    expect(r.status, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/SUCCESS/)
  })

  it('negative control: the unit tests fail when a rule is weakened or loosened', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dtq-promrules-'))
    try {
      const rules = readFileSync(join(DOCKER, 'prometheus/rules/dtq.rules.yml'), 'utf8')
      const tests = readFileSync(join(DOCKER, 'prometheus/tests/dtq.rules.test.yml'), 'utf8')
      mkdirSync(join(dir, 'rules'))
      mkdirSync(join(dir, 'tests'))
      writeFileSync(join(dir, 'tests/t.yml'), tests)
      const weakened: Array<[string, string]> = [
        ['delta(dlq_jobs[15m])) > 10', 'delta(dlq_jobs[15m])) > 100'], // never fires
        // the paused queue fires too
        [
          '\n            unless on (queue) (max by (queue) (queue_paused) == 1)\n        for: 2m\n        labels:\n          severity: critical',
          '\n        for: 2m\n        labels:\n          severity: critical',
        ],
        ['> 300', '> 1000'],
        ['> 0.25', '> 0.9'],
        ['redis_up == 0', 'redis_up == 2'],
        ['up{job="dtq"} == 0', 'up{job="dtq"} == 1'],
      ]
      for (const [from, to] of weakened) {
        expect(rules, from).toContain(from)
        writeFileSync(join(dir, 'rules/dtq.rules.yml'), rules.replace(from, to))
        const r = spawnSync(PROMTOOL ?? 'promtool', ['test', 'rules', join(dir, 'tests/t.yml')], {
          encoding: 'utf8',
        })
        expect(r.status, `weakened rule passed: ${from}`).not.toBe(0)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

// The history archiver's alert (ADR 0031), in a rules file of its own.
describe.skipIf(MISSING && !process.env.CI)('promtool: the archive rules', () => {
  it('fires when the oldest unarchived job is over 10 minutes old for 5m, not on a young backlog; a weakened rule fails the tests', () => {
    const r = promtool('test', 'rules', 'docker/prometheus/tests/archive.rules.test.yml')
    expect(r.status, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/SUCCESS/)
    const dir = mkdtempSync(join(tmpdir(), 'dtq-promarch-'))
    try {
      const rules = readFileSync(join(DOCKER, 'prometheus/rules/archive.rules.yml'), 'utf8')
      mkdirSync(join(dir, 'rules'))
      mkdirSync(join(dir, 'tests'))
      writeFileSync(
        join(dir, 'tests/t.yml'),
        readFileSync(join(DOCKER, 'prometheus/tests/archive.rules.test.yml'), 'utf8'),
      )
      for (const [from, to] of [
        ['> 600', '> 6000'], // never fires
        ['for: 5m', 'for: 0m'], // fires on a short delay
        [
          'max by (queue) (dtq_archive_oldest_age_seconds)',
          'sum by (queue) (dtq_archive_oldest_age_seconds)',
        ],
      ] as const) {
        expect(rules, from).toContain(from)
        writeFileSync(join(dir, 'rules/archive.rules.yml'), rules.replace(from, to))
        const t = spawnSync(PROMTOOL ?? 'promtool', ['test', 'rules', join(dir, 'tests/t.yml')], {
          encoding: 'utf8',
        })
        expect(t.status, `weakened rule passed: ${from}`).not.toBe(0)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('the compose profile and Grafana provisioning', () => {
  it('runs prometheus and grafana only in profile monitoring, mounting the shipped files where they are read', () => {
    const c = parse(readFileSync(join(DOCKER, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<
        string,
        { profiles?: string[]; volumes?: string[]; command?: string[]; image?: string }
      >
    }
    const mounts = (svc: string) =>
      new Map(
        (c.services[svc]!.volumes ?? [])
          .filter((v) => v.startsWith('./'))
          .map((v) => [v.split(':')[1]!, join(DOCKER, v.split(':')[0]!)] as const),
      )
    for (const svc of ['prometheus', 'grafana']) expect(c.services[svc]!.profiles).toEqual(['monitoring'])
    for (const [svc, s] of Object.entries(c.services))
      if (!['prometheus', 'grafana', 'jaeger', 'postgres', 'archiver'].includes(svc))
        expect(s.profiles, svc).toBeUndefined()
    const prom = mounts('prometheus')
    expect(prom.get('/etc/prometheus/prometheus.yml')).toBe(join(DOCKER, 'prometheus/prometheus.yml'))
    expect(prom.get('/etc/prometheus/rules')).toBe(join(DOCKER, 'prometheus/rules'))
    const cfg = readFileSync(join(DOCKER, 'prometheus/prometheus.yml'), 'utf8')
    expect(cfg).toContain('/etc/prometheus/rules/*.yml')
    // The token file the config names is the one the service's command writes.
    expect(c.services.prometheus!.command!.join(' ')).toContain('> /tmp/dtq_metrics_token')
    expect(cfg).toContain('credentials_file: /tmp/dtq_metrics_token')
    const graf = mounts('grafana')
    for (const [target, src] of graf) expect(existsSync(src), `${target} <- ${src}`).toBe(true)
    const provider = parse(readFileSync(join(DOCKER, 'grafana/provisioning/dashboards/dtq.yml'), 'utf8')) as {
      providers: Array<{ options: { path: string } }>
    }
    expect(graf.get(provider.providers[0]!.options.path)).toBe(join(DOCKER, 'grafana/dashboards'))
    expect(graf.get('/etc/grafana/provisioning')).toBe(join(DOCKER, 'grafana/provisioning'))
    // The dashboard names the provisioned datasource by its uid, and has the $queue variable.
    const ds = parse(
      readFileSync(join(DOCKER, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8'),
    ) as {
      datasources: Array<{ uid: string; type: string; url: string }>
    }
    expect(ds.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' })
    const dash = JSON.parse(readFileSync(join(DOCKER, 'grafana/dashboards/dtq.json'), 'utf8')) as {
      uid: string
      panels: Array<{
        id: number
        type: string
        datasource?: { uid: string }
        targets?: Array<{ expr: string; datasource: { uid: string } }>
      }>
      templating: { list: Array<{ name: string }> }
    }
    expect(dash.uid).toBeTruthy()
    expect(dash.templating.list.map((v) => v.name)).toContain('queue')
    expect(new Set(dash.panels.map((p) => p.id)).size).toBe(dash.panels.length)
    for (const p of dash.panels.filter((x) => x.type !== 'row')) {
      expect(p.datasource?.uid).toBe(ds.datasources[0]!.uid)
      expect(p.targets?.length).toBeGreaterThan(0)
      for (const t of p.targets ?? []) expect(t.datasource.uid).toBe(ds.datasources[0]!.uid)
    }
  })
})

const ALERTS = [
  'DTQDeadLetterQueueGrowing',
  'DTQNoLiveWorker',
  'DTQOldestWaitingJobOverSLO',
  'DTQTaskFailureRateHigh',
  'DTQRedisUnreachable',
  'DTQApiDown',
  'DTQArchiveFallingBehind', // archive.rules.yml
]

/**
 * The shipped prometheus.yml in `dir`, changed only where this machine differs: the target, the
 * token file (written here), the rules' path, and the intervals (seconds). Returns its path.
 */
function adaptConfig(dir: string, target: string, intervalS: number): string {
  const token = join(dir, 'token')
  writeFileSync(token, TOKENS.read)
  const src = readFileSync(join(DOCKER, 'prometheus/prometheus.yml'), 'utf8')
  const out = src
    .replace('"api:8000"', `"${target}"`)
    .replace('/tmp/dtq_metrics_token', token)
    .replace('/etc/prometheus/rules/*.yml', join(DOCKER, 'prometheus/rules/*.yml'))
    .replace(/scrape_interval: 15s/, `scrape_interval: ${intervalS}s`)
    .replace(/evaluation_interval: 15s/, `evaluation_interval: ${intervalS}s`)
  for (const changed of [target, token, `${intervalS}s`]) expect(out).toContain(changed)
  const path = join(dir, 'prometheus.yml')
  writeFileSync(path, out)
  return path
}

interface PromResult {
  metric: Record<string, string>
  value: [number, string]
}

describe.skipIf(MISSING && !process.env.CI)('a real Prometheus scraping a live DTQ', () => {
  let redis: LocalRedis
  let redisDir: string
  let redisPort: number
  let b: ApiBundle
  let prom: ChildProcess
  let promUrl: string
  let promDir: string

  const api = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${promUrl}${path}`)
    const body = (await r.json()) as { status: string; data: T; error?: string }
    if (body.status !== 'success') throw new Error(`${path}: ${body.error}`)
    return body.data
  }
  const query = async (q: string): Promise<PromResult[]> =>
    (await api<{ result: PromResult[] }>(`/api/v1/query?query=${encodeURIComponent(q)}`)).result
  const value = async (q: string): Promise<number | null> => {
    const r = await query(q)
    return r.length ? Number(r[0]!.value[1]) : null
  }

  beforeAll(async () => {
    redisPort = await freePort()
    redisDir = mkdtempSync(join(tmpdir(), 'dtq-prom-redis-'))
    redis = await startLocalRedis(redisDir, redisPort)
    b = await apiSetup({ apiTokens: TOKEN_SETTING }, { url: redis.url })
    const apiPort = await freePort()
    await b.app.listen({ port: apiPort, host: '127.0.0.1' })

    // Work with known outcomes in queue `pm`: 6 ok (2 of them high priority), 2 that always fail
    // (TypeError, one retry each: 4 failed attempts, 2 dead letters), 1 that fails once with a
    // code then completes (a retry success), 1 permanent failure. Queue `idle` has waiting jobs
    // and no worker; queue `pm` has a concurrency limit and a type breaker.
    await b.queue.setLimits('pm', {
      concurrency: 5,
      types: { ok: { breaker: { failures: 100, cooldown_ms: 1000 } } },
    })
    const w = b
      .worker({ workerQueues: ['pm'] })
      .handle('ok', async () => {
        await new Promise((r) => setTimeout(r, 30))
        return 1
      })
      .handle('boom', () => {
        throw new TypeError('bad input 1234')
      })
      .handle('flaky', (_job, ctx) => {
        if (ctx.attempt === 1) throw Object.assign(new Error('upstream reset'), { code: 'ECONNRESET' })
        return 'ok'
      })
      .handle('never', () => {
        throw new PermanentJobError('no')
      })
    for (let i = 0; i < 6; i++)
      await b.queue.add('ok', { i }, { queue: 'pm', priority: i < 2 ? 'high' : 'normal' })
    for (let i = 0; i < 2; i++) await b.queue.add('boom', {}, { queue: 'pm', max_retries: 1 })
    await b.queue.add('flaky', {}, { queue: 'pm', max_retries: 3 })
    await b.queue.add('never', {}, { queue: 'pm' })
    for (let i = 0; i < 3; i++) await b.queue.add('ok', {}, { queue: 'idle', priority: 'low' })
    await w.start()
    await waitFor(
      async () => {
        const s = (await b.queue.stats()).queues.find((q) => q.queue === 'pm')
        return s && s.counts.completed === 7 && s.counts.failed === 3
      },
      { timeoutMs: 30_000, what: 'the jobs of pm to end' },
    )

    // The worker's failures reach the registry with its next heartbeat (worker_errors_total).
    await waitFor(async () => (await b.queue.workers())[0]?.failed === 6, {
      what: 'the worker to report 6 failures',
    })

    promDir = mkdtempSync(join(tmpdir(), 'dtq-prom-'))
    const promPort = await freePort()
    promUrl = `http://127.0.0.1:${promPort}`
    const cfg = adaptConfig(promDir, `127.0.0.1:${apiPort}`, 1)
    prom = spawn(
      PROMETHEUS ?? 'prometheus',
      [
        `--config.file=${cfg}`,
        `--storage.tsdb.path=${join(promDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let log = ''
    prom.stderr?.on('data', (d) => {
      log = (log + d).slice(-4000)
    })
    await waitFor(async () => (await fetch(`${promUrl}/-/ready`)).ok, {
      timeoutMs: 30_000,
      what: `prometheus to be ready (${log})`,
    })
  })

  afterAll(async () => {
    prom?.kill('SIGTERM')
    await b?.cleanup().catch(() => {})
    await redis?.stop()
    for (const d of [promDir, redisDir]) if (d) rmSync(d, { recursive: true, force: true })
  })

  it('scrapes /metrics: target up, no parse error, the series carry what the jobs did', async () => {
    const target = await waitFor(
      async () => {
        const t = await api<{
          activeTargets: Array<{ health: string; lastError: string; labels: Record<string, string> }>
        }>('/api/v1/targets')
        const dtq = t.activeTargets.find((x) => x.labels.job === 'dtq')
        return dtq?.health === 'up' ? dtq : null
      },
      { timeoutMs: 30_000, what: 'the dtq target to be up' },
    )
    expect(target.lastError).toBe('')
    await waitFor(async () => (await value('up{job="dtq"}')) === 1 && (await value('redis_up')) === 1, {
      what: 'up and redis_up',
    })
    const expected: Array<[string, number]> = [
      ['sum(task_submissions_total{queue="pm"})', 10],
      ['task_submissions_total{queue="pm",type="ok",priority="high"}', 2],
      ['task_submissions_total{queue="pm",type="ok",priority="normal"}', 4],
      ['task_submissions_total{queue="idle",type="ok",priority="low"}', 3],
      ['jobs_created_total{queue="pm",type="ok"}', 6],
      ['jobs_completed_total{queue="pm",type="ok"}', 6],
      ['task_completions_total{queue="pm",type="ok",status="completed"}', 6],
      ['task_completions_total{queue="pm",type="boom",status="failed"}', 2],
      ['task_failures_total{queue="pm",type="boom",error_class="TypeError"}', 4],
      ['task_failures_total{queue="pm",type="flaky",error_class="ECONNRESET"}', 1],
      ['task_failures_total{queue="pm",type="never",error_class="PermanentJobError"}', 1],
      ['task_retries_total{queue="pm",type="boom"}', 2],
      ['task_retry_attempts_total{queue="pm",type="flaky"}', 1],
      ['task_retry_success_total{queue="pm",type="flaky"}', 1],
      ['task_duration_seconds_count{queue="pm",type="ok"}', 6],
      ['task_duration_seconds_count{queue="pm",type="boom"}', 4],
      ['dlq_items_total{queue="pm",priority="normal"}', 3],
      ['tasks_in_dlq_total{queue="pm"}', 3],
      ['dlq_jobs{queue="pm"}', 3],
      ['pending_tasks_total{queue="idle",priority="low"}', 3],
      ['retry_tasks_total{queue="pm"}', 0],
      ['active_workers_total{queue="pm"}', 1],
      ['active_workers_total{queue="idle"}', 0],
      ['workers_live', 1],
      ['sum(worker_errors_total)', 6],
      ['limit_concurrency{queue="pm",scope="queue"}', 5],
      ['limit_concurrency_in_use{queue="pm",scope="queue"}', 0],
      ['breaker_state{queue="pm",task_type="ok"}', 0],
    ]
    for (const [q, want] of expected) expect(await value(q), q).toBe(want)
    // The run time per type is a real histogram: its p99 of `ok` (30 ms sleeps) is within (25 ms, 100 ms].
    const p99 = await value(
      'histogram_quantile(0.99, sum by (le) (task_duration_seconds_bucket{queue="pm",type="ok"}))',
    )
    expect(p99).toBeGreaterThan(0.025)
    expect(p99).toBeLessThanOrEqual(0.1)
    expect(await value('oldest_waiting_job_age_seconds{queue="idle"}')).toBeGreaterThan(0)
    // The attempt's error record and the job carry the class too (the DLQ groups by it).
    const failed = await b.queue.listJobs({ queue: 'pm', state: 'failed', task_type: 'boom' })
    const boom = failed.items[0]
    expect(boom?.error_class).toBe('TypeError')
    expect(boom?.errors.map((e) => e.class)).toEqual(['TypeError', 'TypeError'])
  })

  it('evaluates every Grafana panel expression and every rule without error', async () => {
    const dash = JSON.parse(readFileSync(join(DOCKER, 'grafana/dashboards/dtq.json'), 'utf8')) as {
      panels: Array<{ title: string; type: string; targets?: Array<{ expr: string }> }>
      templating: { list: Array<{ name: string; query: { query: string } }> }
    }
    const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => [p.title, t.expr] as const))
    expect(exprs.length).toBeGreaterThan(20)
    // Grafana's variables as Grafana would fill them: all queues, a rate window of 4 scrapes.
    const fill = (e: string) => e.replaceAll('$queue', '.*').replaceAll('$__rate_interval', '4s')
    const empty: string[] = []
    for (const [title, expr] of exprs) {
      const r = await query(fill(expr)) // throws on a PromQL error
      if (!r.length) empty.push(title)
    }
    // Panels of data this run has (flow control, percentiles, DLQ) show something.
    for (const title of [
      'Depth per queue (waiting + running)',
      'DLQ size per queue',
      'Live workers per queue',
      'Concurrency in use / limit',
      'Redis reachable',
    ])
      expect(empty, title).not.toContain(title)
    const variable = dash.templating.list.find((v) => v.name === 'queue')!
    const metric = /^label_values\((\w+), queue\)$/.exec(variable.query.query)?.[1]
    expect(metric).toBeTruthy()
    const queues = (await query(`count by (queue) (${metric})`)).map((r) => r.metric.queue).sort()
    expect(queues).toEqual(['idle', 'pm'])

    // Every rule has been evaluated by Prometheus with no error, and its expression queries cleanly.
    const groups = await waitFor(
      async () => {
        const g = await api<{
          groups: Array<{ rules: Array<{ name: string; query: string; health: string; lastError?: string }> }>
        }>('/api/v1/rules')
        const rules = g.groups.flatMap((x) => x.rules)
        return rules.length === ALERTS.length && rules.every((r) => r.health === 'ok') ? rules : null
      },
      { what: 'every rule evaluated ok' },
    )
    expect(groups.map((r) => r.name).sort()).toEqual([...ALERTS].sort())
    for (const r of groups) {
      expect(r.lastError ?? '', r.name).toBe('')
      await query(r.query)
    }
    // The "no live worker" rule picks exactly the queue with work and no worker, and is pending.
    const noWorker = groups.find((r) => r.name === 'DTQNoLiveWorker')!
    expect((await query(noWorker.query)).map((r) => r.metric.queue)).toEqual(['idle'])
    await waitFor(
      async () => {
        const a = await api<{ alerts: Array<{ labels: Record<string, string>; state: string }> }>(
          '/api/v1/alerts',
        )
        return a.alerts.some((x) => x.labels.alertname === 'DTQNoLiveWorker' && x.labels.queue === 'idle')
      },
      { what: 'DTQNoLiveWorker pending for queue idle' },
    )
  })

  it('with Redis stopped, the scrape still succeeds: redis_up 0, the Redis alert pending; back when Redis is', async () => {
    await redis.stop()
    await waitFor(async () => (await value('redis_up')) === 0, { timeoutMs: 20_000, what: 'redis_up 0' })
    expect(await value('up{job="dtq"}')).toBe(1)
    const t = await api<{ activeTargets: Array<{ lastError: string; labels: Record<string, string> }> }>(
      '/api/v1/targets',
    )
    expect(t.activeTargets.find((x) => x.labels.job === 'dtq')?.lastError).toBe('')
    await waitFor(
      async () => {
        const a = await api<{ alerts: Array<{ labels: Record<string, string> }> }>('/api/v1/alerts')
        return a.alerts.some((x) => x.labels.alertname === 'DTQRedisUnreachable')
      },
      { what: 'DTQRedisUnreachable pending' },
    )
    redis = await startLocalRedis(redisDir, redisPort)
    await waitFor(async () => (await value('redis_up')) === 1, {
      timeoutMs: 30_000,
      what: 'redis_up back to 1',
    })
  })
})
