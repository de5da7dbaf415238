/**
 * Deployment: every artifact parses and carries the settings that matter, and a rolling restart
 * of two API instances (behind real nginx with the repository's nginx.conf, standing in for the
 * ALB) and two workers under constant POST load drops no request and loses or repeats no job.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { parse, parseAllDocuments } from 'yaml'
import { SETTINGS } from '../src/config.ts'
import { freePort } from '../src/redis/local-server.ts'
import { LoadGenerator, RedisServer, report, System, verdict } from './chaos/harness.ts'
import { waitFor } from './helpers.ts'

const ROOT = new URL('../../', import.meta.url).pathname
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8')
const docs = (p: string) => parseAllDocuments(read(p)).map((d) => d.toJS())
const knownEnv = new Set(SETTINGS.map((s) => s.env))

describe('deployment artifacts', () => {
  it('nginx.conf passes nginx -t and keeps the body limit in step with the API', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dtq-nginx-t-'))
    const r = spawnSync(
      'nginx',
      ['-t', '-p', dir, '-c', join(ROOT, 'nginx.conf'), '-g', `pid ${dir}/n.pid; error_log ${dir}/e.log;`],
      {
        encoding: 'utf8',
      },
    )
    expect(r.status, r.stderr).toBe(0)
    const conf = read('nginx.conf')
    const mb = Number(/client_max_body_size (\d+)m;/.exec(conf)?.[1])
    expect(mb * 1024 * 1024).toBe(Number(SETTINGS.find((s) => s.env === 'MAX_BODY_BYTES')?.default))
    expect(conf).toMatch(/location = \/api\/events \{[^}]*proxy_buffering off;/)
    expect(conf).toMatch(/proxy_next_upstream error timeout http_502 http_503;/)
    expect(conf).not.toMatch(/proxy_next_upstream [^;]*non_idempotent/)
    expect(conf).toMatch(/try_files \$uri \/index.html;/)
    // nginx lets go of idle upstream connections before a draining API instance closes them.
    const keepaliveS = Number(/upstream dtq_api \{[^}]*keepalive_timeout (\d+)s;/.exec(conf)?.[1])
    const drainMs = Number(SETTINGS.find((s) => s.env === 'API_DRAIN_DELAY_MS')?.default)
    expect(keepaliveS * 1000).toBeLessThan(drainMs)
  })

  it('render.yaml: API health check on readiness, a worker, the console, Key Value with noeviction', () => {
    const r = parse(read('render.yaml')) as { services: Array<Record<string, unknown>> }
    const by = (name: string) => r.services.find((s) => s.name === name)!
    expect(by('dtq-api')).toMatchObject({ type: 'web', healthCheckPath: '/health/ready' })
    expect(by('dtq-worker')).toMatchObject({ type: 'worker' })
    expect(by('dtq-console')).toMatchObject({ runtime: 'static', staticPublishPath: 'ui/dist' })
    expect(by('dtq-redis')).toMatchObject({ type: 'keyvalue', maxmemoryPolicy: 'noeviction' })
    for (const s of r.services) {
      for (const e of (s.envVars as Array<{ key: string }> | undefined) ?? []) {
        if (e.key !== 'VITE_API_BASE_URL') expect(knownEnv, `${s.name} ${e.key}`).toContain(e.key)
      }
    }
  })

  it('docker-compose: Redis with AOF, noeviction and a password; API, two workers, nginx; grace above the budgets', () => {
    const c = parse(read('docker/docker-compose.yml'), { merge: true }) as {
      services: Record<string, Record<string, unknown>>
    }
    const redisCmd = (c.services.redis!.command as string[]).join(' ')
    expect(redisCmd).toMatch(/--appendonly yes/)
    expect(redisCmd).toMatch(/--maxmemory-policy noeviction/)
    expect(redisCmd).toMatch(/--requirepass/)
    const always = Object.keys(c.services).filter((n) => !c.services[n]!.profiles)
    expect(always.sort()).toEqual(['api', 'redis', 'web', 'worker-1', 'worker-2'])
    // prometheus and grafana: profile `monitoring` only (prometheus.test.ts checks them).
    expect(c.services.prometheus!.profiles).toEqual(['monitoring'])
    expect(c.services.grafana!.profiles).toEqual(['monitoring'])
    // Jaeger only with --profile tracing; the app's OTLP endpoint is empty (tracing off) by default.
    expect(c.services.jaeger!.profiles).toEqual(['tracing'])
    expect((c.services.jaeger!.environment as Record<string, string>).COLLECTOR_OTLP_ENABLED).toBe('true')
    const env = c.services.api!.environment as Record<string, string>
    expect(env.OTEL_EXPORTER_OTLP_ENDPOINT).toMatch(/^\$\{OTEL_EXPORTER_OTLP_ENDPOINT:-\}$/)
    for (const k of Object.keys(env)) if (!k.startsWith('OTEL_')) expect(knownEnv).toContain(k)
    const shutdownS = Number(env.SHUTDOWN_TIMEOUT_MS) / 1000
    expect(Number.parseInt(String(c.services['worker-1']!.stop_grace_period), 10)).toBeGreaterThan(shutdownS)
    expect(Number.parseInt(String(c.services.api!.stop_grace_period), 10)).toBeGreaterThan(
      Number(env.API_DRAIN_DELAY_MS) / 1000,
    )
    expect(c.services['worker-2']!.command).toEqual(['worker'])
    // The history (ADR 0027): PostgreSQL and an archiver, profile `history` only.
    expect(c.services.postgres!.profiles).toEqual(['history'])
    expect(c.services.archiver!.profiles).toEqual(['history'])
    expect(c.services.archiver!.command).toEqual(['archiver'])
    const archiverEnv = c.services.archiver!.environment as Record<string, string>
    expect(archiverEnv.DATABASE_URL).toMatch(/^postgres:\/\/dtq:.*@postgres:5432\/dtq$/)
    for (const k of Object.keys(archiverEnv)) if (!k.startsWith('OTEL_')) expect(knownEnv).toContain(k)
  })

  it('Kubernetes: probes, grace periods above the budgets, KEDA on stream lag, Redis with AOF and noeviction', () => {
    const config = docs('docker/k8s/config.yaml').find((d) => d.kind === 'ConfigMap').data as Record<
      string,
      string
    >
    for (const k of Object.keys(config)) expect(knownEnv).toContain(k)
    const [api] = docs('docker/k8s/api.yaml')
    const pod = api.spec.template.spec
    expect(pod.containers[0].readinessProbe.httpGet.path).toBe('/health/ready')
    expect(pod.containers[0].livenessProbe.httpGet.path).toBe('/health/live')
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(Number(config.API_DRAIN_DELAY_MS))
    expect(api.spec.strategy.rollingUpdate.maxUnavailable).toBe(0)
    const [worker, scaled] = docs('docker/k8s/worker.yaml')
    expect(worker.spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(
      Number(config.SHUTDOWN_TIMEOUT_MS),
    )
    expect(scaled.kind).toBe('ScaledObject')
    for (const t of scaled.spec.triggers) {
      expect(t.type).toBe('redis-streams')
      expect(t.metadata.stream).toMatch(/^dtq:\{default\}:stream:(high|normal|low)$/)
      expect(t.metadata.consumerGroup).toBe('workers')
      expect(t.metadata.lagCount).toBeDefined()
    }
    const [redis] = docs('docker/k8s/redis.yaml')
    const args = redis.spec.template.spec.containers[0].args.join(' ')
    expect(args).toMatch(/--appendonly yes/)
    expect(args).toMatch(/--maxmemory-policy noeviction/)
  })

  it('systemd units stop with SIGTERM and wait longer than the shutdown budget; the deploy script dry-runs', () => {
    const worker = read('scripts/deploy/dtq-worker.service')
    const api = read('scripts/deploy/dtq-api.service')
    expect(worker).toMatch(/^KillSignal=SIGTERM$/m)
    expect(Number(/^TimeoutStopSec=(\d+)$/m.exec(worker)?.[1]) * 1000).toBeGreaterThan(30_000)
    expect(api).toMatch(/^KillSignal=SIGTERM$/m)
    const r = spawnSync(
      'bash',
      [
        join(ROOT, 'scripts/deploy/rolling-deploy.sh'),
        '--target-group-arn',
        'arn:aws:tg',
        '--release',
        'dtq-9.9.9.tar.gz',
        '--instances',
        'i-a i-b',
        '--dry-run',
      ],
      {
        encoding: 'utf8',
      },
    )
    expect(r.status, r.stderr).toBe(0)
    const steps = r.stdout.split('\n').filter((l) => l.startsWith('+ '))
    const order = [
      'deregister-targets',
      'wait target-deregistered',
      'scp',
      'systemctl restart',
      '/health/ready',
      'register-targets',
      'wait target-in-service',
    ]
    for (const id of ['i-a', 'i-b']) {
      const mine = steps.filter((l) => l.includes(id) || !l.includes('Id='))
      let at = -1
      for (const o of order) {
        const next = mine.findIndex((l, i) => i > at && l.includes(o))
        expect(next, `${id}: ${o} after the previous step`).toBeGreaterThan(at)
        at = next
      }
    }
  })

  it('Dockerfile: non-root app image with a healthcheck, SIGTERM, built with pnpm deploy', () => {
    const d = read('docker/Dockerfile')
    expect(d).toMatch(/pnpm deploy --filter @dtq\/app --prod/)
    expect(d).toMatch(/^USER node$/m)
    expect(d).toMatch(/^HEALTHCHECK /m)
    expect(d).toMatch(/^STOPSIGNAL SIGTERM$/m)
    expect(d).toMatch(/COPY nginx.conf \/etc\/nginx\/nginx.conf/)
  })
})

describe('rolling restart behind nginx', () => {
  const cleanups: Array<() => unknown> = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  it('replaces two API instances and two workers one at a time under load: 0 non-2xx, 0 lost, 0 duplicates', async () => {
    const redis = await RedisServer.start()
    cleanups.push(() => redis.stop())
    // The drain outlasts nginx's upstream keepalive_timeout (2 s), as the defaults do.
    const sys = new System(redis.url, { API_DRAIN_DELAY_MS: '3000', TRUST_PROXY: '127.0.0.1' })
    cleanups.push(() => sys.stop())
    await sys.connect()
    const ports = [await freePort(), await freePort()]
    const apis = await Promise.all(ports.map((p) => sys.api({ PORT: String(p) }, p)))
    const workers = [sys.worker(), sys.worker()]
    await waitFor(async () => (await sys.redis.zcard(sys.keys.workers())) === 2)

    // nginx from the repository's nginx.conf, upstream = the two API instances.
    const dir = mkdtempSync(join(tmpdir(), 'dtq-roll-nginx-'))
    const webPort = await freePort()
    const conf = (down: number | null) =>
      read('nginx.conf')
        .replace(/listen 8080;/, `listen 127.0.0.1:${webPort};`)
        .replace(/root \/usr\/share\/nginx\/html;/, `root ${join(ROOT, 'ui/dist')};`)
        .replace('access_log /var/log/nginx/access.log;', `access_log ${dir}/access.log;`)
        .replace(
          /server 127\.0\.0\.1:8000 [^;]*;/,
          ports
            .map((p, i) => `server 127.0.0.1:${p} max_fails=3 fail_timeout=10s${down === i ? ' down' : ''};`)
            .join('\n        '),
        )
    const user = process.getuid?.() === 0 ? 'user root; ' : ''
    const g = `${user}pid ${dir}/nginx.pid; error_log ${dir}/error.log;`
    writeFileSync(join(dir, 'nginx.conf'), conf(null))
    const nginx = (...args: string[]) =>
      spawnSync('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', g, ...args], { encoding: 'utf8' })
    expect(nginx().status, 'nginx start').toBe(0)
    cleanups.push(() => nginx('-s', 'quit'))
    const base = `http://127.0.0.1:${webPort}/api`
    await waitFor(async () => (await fetch(`${base}/health/ready`)).ok)
    const setDown = (i: number | null) => {
      writeFileSync(join(dir, 'nginx.conf'), conf(i))
      expect(nginx('-s', 'reload').status).toBe(0)
    }

    const load = new LoadGenerator(base, () => ({ task_type: 'ledger', payload: { ms: 5 } }), 100)
    // nginx's reloads below close idle client keep-alive connections (see the option).
    load.resendOnDroppedConnection = true
    const running = load.run()
    await new Promise((r) => setTimeout(r, 1000))
    for (let i = 0; i < 2; i++) {
      // The EC2 script's order: out of the upstream, SIGTERM, start the new one, ready, back in.
      setDown(i)
      await new Promise((r) => setTimeout(r, 300))
      apis[i]!.proc.child.kill('SIGTERM')
      expect(await apis[i]!.proc.exited).toBe(0)
      apis[i] = await sys.api({ PORT: String(ports[i]) }, ports[i])
      await waitFor(async () => (await fetch(`http://127.0.0.1:${ports[i]}/health/ready`)).ok)
      setDown(null)
      await new Promise((r) => setTimeout(r, 500))
    }
    for (let i = 0; i < 2; i++) {
      workers[i]!.child.kill('SIGTERM')
      expect(await workers[i]!.exited).toBe(0)
      workers[i] = sys.worker()
      await waitFor(async () => (await sys.redis.zcard(sys.keys.workers())) === 2)
    }
    await new Promise((r) => setTimeout(r, 1000))
    load.stop()
    await running
    const non2xx = load.count('rejected') + load.count('indeterminate')
    await sys.drained()
    const v = verdict(load.outcomes, await sys.completedIds(), sys.executions())
    report('rolling restart', { ...v, non2xx, reasons: load.reasons })
    expect(v.accepted).toBeGreaterThan(300)
    expect(non2xx).toBe(0)
    // Each of the 4 reloads closes the client connections idle at that instant; how many depends
    // on the pool the load needed (more under CPU contention: 24 on a loaded CI run). Rare, not zero.
    expect(load.reasons.resent ?? 0).toBeLessThan(Math.max(20, v.accepted * 0.02))
    expect(v).toMatchObject({ lost: 0, duplicated: 0, unexpected: 0 })
  })
})
