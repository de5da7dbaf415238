/**
 * The whole system for the browser tests, from real parts: a private redis-server, `dtq api`
 * and `dtq worker` processes, and nginx running the repository's nginx.conf (only its port,
 * console root and upstream address replaced) in front of the built console.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { freePort } from '../../app/src/redis/local-server.ts'

export const TOKENS = { admin: 'e2e-admin-token-0123456789', read: 'e2e-read-token-0123456789' }
const ROOT = resolve(import.meta.dirname, '../..')

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

export interface Stack {
  baseURL: string
  apiURL: string
  /** The private redis-server (specs that seed history read and write it directly). */
  redisURL: string
  /** The settings the API and worker run with (a spec may start another process on them). */
  env: Record<string, string>
  stop(): Promise<void>
}

/** `env`: more settings for the API, worker (and archiver); `archiver`: run `dtq archiver` too. */
export async function startStack(
  opts: { env?: Record<string, string>; archiver?: boolean } = {},
): Promise<Stack> {
  const dist = join(ROOT, 'ui/dist')
  if (!existsSync(join(dist, 'index.html')))
    throw new Error('build the console first: pnpm --filter @dtq/ui build')
  const dir = mkdtempSync(join(tmpdir(), 'dtq-e2e-'))
  const procs: ChildProcess[] = []
  const start = (cmd: string, args: string[], env: Record<string, string> = {}) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] })
    procs.push(p)
    return p
  }

  const redisPort = await freePort()
  mkdirSync(join(dir, 'redis'))
  start('redis-server', [
    '--port',
    String(redisPort),
    '--bind',
    '127.0.0.1',
    '--dir',
    join(dir, 'redis'),
    '--appendonly',
    'yes',
    '--save',
    '',
    '--logfile',
    '',
  ])

  const apiPort = await freePort()
  const env = {
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    KEY_PREFIX: 'e2e',
    API_TOKENS: `${TOKENS.admin}:admin,${TOKENS.read}:read`,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_MIN: '0',
    TRUST_PROXY: '127.0.0.1',
    INITIAL_BACKOFF_MS: '200',
    MAX_BACKOFF_MS: '400',
    LEASE_MS: '500',
    CLAIM_IDLE_MS: '3000',
    API_DRAIN_DELAY_MS: '0',
    SHUTDOWN_TIMEOUT_MS: '1000',
    // Alerts (e2e/alerts.spec.ts): evaluated twice a second, not every 15 s.
    ALERT_EVAL_INTERVAL_MS: '500',
    ...opts.env,
  }
  const cli = join(ROOT, 'app/src/cli/main.ts')
  start(process.execPath, [cli, 'api', '--port', String(apiPort)], env)
  // Two queues besides the default, for the same job id in two queues (ADR 0016).
  start(process.execPath, [cli, 'worker', '--concurrency', '4', '--queues', 'default,mail,billing'], env)
  if (opts.archiver) start(process.execPath, [cli, 'archiver'], env)

  const webPort = await freePort()
  const conf = readFileSync(join(ROOT, 'nginx.conf'), 'utf8')
    .replace(/listen 8080;/, `listen 127.0.0.1:${webPort};`)
    .replace(/root \/usr\/share\/nginx\/html;/, `root ${dist};`)
    .replace(/server 127\.0\.0\.1:8000 /, `server 127.0.0.1:${apiPort} `)
    .replace('access_log /var/log/nginx/access.log;', `access_log ${join(dir, 'access.log')};`)
  writeFileSync(join(dir, 'nginx.conf'), conf)
  // Workers run as this user, so they can read a checkout that is private to it (a 0700 temp dir).
  const user = process.getuid?.() === 0 ? 'user root; ' : ''
  const globals = `${user}pid ${dir}/nginx.pid; error_log ${dir}/error.log;`
  const conf_ = join(dir, 'nginx.conf')
  const check = spawnSync('nginx', ['-t', '-p', dir, '-c', conf_, '-g', globals], { encoding: 'utf8' })
  if (check.status !== 0) throw new Error(`nginx -t failed: ${check.stderr}`)
  start('nginx', ['-p', dir, '-c', conf_, '-g', `daemon off; ${globals}`])

  const baseURL = `http://127.0.0.1:${webPort}`
  await waitFor('the API behind nginx', async () => (await fetch(`${baseURL}/health/ready`)).status === 200)
  await waitFor('a live worker', async () => {
    const r = await fetch(`${baseURL}/api/workers`, { headers: { authorization: `Bearer ${TOKENS.admin}` } })
    return ((await r.json()) as { items: unknown[] }).items.length > 0
  })
  return {
    baseURL,
    apiURL: `${baseURL}/api`,
    redisURL: env.REDIS_URL,
    env,
    async stop() {
      for (const p of procs.reverse()) {
        if (p.exitCode === null) p.kill('SIGTERM')
        await new Promise((r) => {
          if (p.exitCode !== null) return r(null)
          const t = setTimeout(() => {
            p.kill('SIGKILL')
            r(null)
          }, 5000)
          p.once('exit', () => {
            clearTimeout(t)
            r(null)
          })
        })
      }
    },
  }
}

/**
 * A second `dtq api` on the shared stack's Redis without DATABASE_URL, for the pages' "history is
 * off" states (the shared stack has a history): `route(page, glob)` sends the page's requests
 * matching the glob to it. Stop it with `stop()`.
 */
export async function startApiWithoutHistory() {
  const env = { ...(JSON.parse(process.env.E2E_STACK_ENV ?? '{}') as Record<string, string>) }
  delete env.DATABASE_URL
  const port = await freePort()
  const cli = resolve(import.meta.dirname, '../../app/src/cli/main.ts')
  const api: ChildProcess = spawn(process.execPath, [cli, 'api', '--port', String(port)], {
    env: { ...process.env, ...env, DATABASE_URL: '' },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const stop = async () => {
    if (api.exitCode === null) api.kill('SIGTERM')
    await new Promise((r) => (api.exitCode !== null ? r(null) : api.once('exit', r)))
  }
  try {
    await waitFor(
      'the API without a history',
      async () => (await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200,
    )
  } catch (err) {
    await stop()
    throw err
  }
  return {
    route: (page: import('@playwright/test').Page, glob: string) =>
      page.route(glob, (route) =>
        route.continue({
          url: route
            .request()
            .url()
            .replace(/^.*?\/api\//, `http://127.0.0.1:${port}/`),
        }),
      ),
    stop,
  }
}
