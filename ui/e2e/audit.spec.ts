/**
 * Operations pages end to end (ADR 0026): the audit log page with its filters, the DLQ page's
 * groups from GET /dlq/stats (exact counts by queue, type, priority and error class), and the
 * dashboard's throughput and latency charts over 1h / 6h / 24h -- real Chromium, nginx, API,
 * worker and redis-server. The 24-hour history is seeded in Redis (20 hours ago) the way the
 * scripts write it: per-minute throughput buckets and the leader's histogram snapshots.
 */
import { expect, type Page, test } from '@playwright/test'
import { connectRedis, createRedis } from '../../app/src/redis/connection.ts'
import { HISTOGRAM_BUCKETS_MS, Keys } from '../../app/src/redis/keys.ts'
import { TOKENS } from './stack'

const base = () => process.env.E2E_BASE_URL ?? ''
const api = () => process.env.E2E_API_URL ?? ''
const SHOTS = 'test-results/screenshots'

async function signIn(page: Page, role: keyof typeof TOKENS = 'admin') {
  await page.addInitScript((t) => localStorage.setItem('dtq.token', t), TOKENS[role])
}

function watchErrors(page: Page, allow: RegExp[] = []) {
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  page.on('console', (m) => {
    if (m.type() === 'error' && !allow.some((a) => a.test(m.text()))) errors.push(m.text())
  })
  return () => expect(errors, 'browser errors').toEqual([])
}

async function call(method: string, path: string, role: keyof typeof TOKENS = 'admin', body?: unknown) {
  const r = await fetch(`${api()}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKENS[role]}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: r.status, body: (await r.json().catch(() => null)) as Record<string, unknown> }
}

test('the audit page lists operator actions with who, what, result and where, filtered; admin only', async ({
  page,
}) => {
  const check = watchErrors(page)
  expect((await call('POST', '/queues/mail/pause')).status).toBe(200)
  expect((await call('POST', '/queues/mail/resume')).status).toBe(200)
  expect((await call('DELETE', '/dlq?older_than_days=3650&queue=mail', 'read')).status).toBe(403)
  await signIn(page)
  await page.goto(`${base()}/`)
  await page.getByRole('link', { name: 'Audit' }).click()
  await expect(page).toHaveURL(/\/audit$/)
  const pause = page.getByRole('row').filter({ hasText: 'POST /queues/:queue/pause' }).first()
  await expect(pause).toContainText('admin-1')
  await expect(pause).toContainText('queue=mail')
  await expect(pause).toContainText('200 ok')
  await expect(pause).toContainText('127.0.0.1')
  const refused = page.getByRole('row').filter({ hasText: 'DELETE /dlq' }).first()
  await expect(refused).toContainText('read-2')
  await expect(refused).toContainText('403 FORBIDDEN')
  await page.screenshot({ path: `${SHOTS}/audit.png`, fullPage: true })

  await page.getByLabel('Result').selectOption('FORBIDDEN')
  await expect(page).toHaveURL(/result=FORBIDDEN/)
  await expect(page.getByRole('row').filter({ hasText: 'POST /queues/:queue/pause' })).toHaveCount(0)
  await expect(page.getByRole('row').filter({ hasText: 'read-2' }).first()).toBeVisible()
  await page.getByLabel('Actor').fill('admin-1')
  await page.getByLabel('Actor').blur()
  await expect(page.getByText('No operator actions match these filters.')).toBeVisible()
  await page.screenshot({ path: `${SHOTS}/audit-filtered.png`, fullPage: true })
  check()
})

test('a read-only token sees no Audit link, and the page says it is forbidden', async ({ page }) => {
  const check = watchErrors(page, [/403/])
  await signIn(page, 'read')
  await page.goto(`${base()}/`)
  await expect(page.getByRole('link', { name: 'Dashboard' })).toBeVisible()
  await expect(page.getByRole('link', { name: 'Audit' })).toHaveCount(0)
  await page.goto(`${base()}/audit`)
  await expect(page.getByText(/needs the admin role/)).toBeVisible()
  check()
})

test('the DLQ page groups dead letters from /dlq/stats: exact counts by queue, type, priority, error class', async ({
  page,
}) => {
  const check = watchErrors(page)
  const jobs = [
    { priority: 'high', message: 'QuotaError: over quota' },
    { priority: 'high', message: 'QuotaError: over quota again' },
    { priority: 'low', message: 'QuotaError: low one' },
    { priority: 'low', message: 'no class in this one' },
  ]
  for (const j of jobs) {
    const r = await call('POST', '/jobs', 'admin', {
      queue: 'billing',
      task_type: 'fail',
      priority: j.priority,
      payload: { message: j.message },
      max_retries: 0,
    })
    expect(r.status).toBe(201)
  }
  await signIn(page)
  await page.goto(`${base()}/dlq?queue=billing`)
  const groups = page.locator('.card').filter({ hasText: 'Grouped by queue, type, priority and error class' })
  const row = (prio: string, cls: string) =>
    groups.getByRole('row').filter({ hasText: `billing` }).filter({ hasText: prio }).filter({ hasText: cls })
  await expect(row('high', 'QuotaError')).toContainText('2', { timeout: 20_000 })
  await expect(row('low', 'QuotaError')).toContainText('1')
  // Its newest dead letter's age: seconds, not a stale time (a loaded CI machine drew "12.0 s ago").
  await expect(row('low', 'QuotaError')).toContainText(/just now|\b\d+(\.\d)? s ago/)
  await expect(page.getByRole('cell', { name: 'QuotaError: low one' })).toBeVisible()
  await page.screenshot({ path: `${SHOTS}/dlq-groups.png`, fullPage: true })
  // Show only these: the listing and the groups follow the group's queue, type and priority.
  await row('low', 'QuotaError').getByRole('button', { name: 'Show only these' }).click()
  await expect(page).toHaveURL(/priority=low/)
  await expect(page.getByLabel('Priority')).toHaveValue('low')
  await expect(groups.getByRole('row').filter({ hasText: 'high' })).toHaveCount(0)
  const listed = page.locator('.card').filter({ hasText: 'newest first' }).getByRole('row')
  await expect(listed.filter({ hasText: 'low one' })).toBeVisible()
  await expect(listed.filter({ hasText: 'over quota' })).toHaveCount(0)
  // …and its class: the low dead letter of class Error is not listed (the listing filters by class in Redis).
  await expect(page).toHaveURL(/class=QuotaError/)
  await expect(listed.filter({ hasText: 'no class in this one' })).toHaveCount(0)
  await expect(page.getByRole('button', { name: 'Retry all matching' })).toBeDisabled()
  await page.screenshot({ path: `${SHOTS}/dlq-groups-low.png`, fullPage: true })
  check()
})

test('the dashboard charts throughput and latency over 1h, 6h and 24h, per queue or all', async ({
  page,
}) => {
  const check = watchErrors(page)
  const redis = createRedis({ target: process.env.E2E_REDIS_URL ?? '', commandTimeoutMs: 5000 })
  const keys = new Keys('e2e')
  const q = 'reports'
  const now = Math.floor(Date.now() / 60_000)
  /** A cumulative snapshot: run and wait counts per bucket upper bound (ms), as history_snapshot writes it. */
  const snap = (run: Record<number, number>, wait: Record<number, number>) => {
    const arr = (c: Record<number, number>) => HISTOGRAM_BUCKETS_MS.map((b) => c[b] ?? 0).concat([0])
    return [...arr(run), 0, ...arr(wait), 0].join(' ')
  }
  // 20 hours ago: 6 hours of work -- 40 completed and 2 failed a minute, and a snapshot every 15
  // minutes whose run times drift up (p95/p99 grow) while waits stay short.
  const from = now - 20 * 60
  let runs = 0
  try {
    await connectRedis(redis)
    await redis.sadd(keys.queues(), q)
    const p = redis.pipeline()
    for (let m = from; m < from + 360; m++) {
      p.hset(keys.throughput(q, m), 'completed', 40, 'failed', 2)
      p.expire(keys.throughput(q, m), 90_000)
    }
    const run: Record<number, number> = {}
    const wait: Record<number, number> = {}
    for (let k = 0; k <= 24; k++) {
      const m = from + 15 * k
      if (k > 0) {
        run[100] = (run[100] ?? 0) + 500
        run[250] = (run[250] ?? 0) + 20 * k
        run[1000] = (run[1000] ?? 0) + k
        wait[10] = (wait[10] ?? 0) + 500 + 21 * k
        runs += 500 + 21 * k
      }
      p.set(keys.histogramSnapshot(q, m), snap(run, wait), 'EX', 90_000)
      p.zadd(keys.histogramSnapshots(q), m, String(m))
    }
    await p.exec()
  } finally {
    redis.disconnect()
  }
  await signIn(page)
  await page.goto(`${base()}/`)
  const throughput = page.getByRole('img', { name: /^Throughput, last 1h/ })
  await expect(throughput).toBeVisible()
  await expect(page.getByRole('button', { name: '1h' })).toHaveAttribute('aria-pressed', 'true')
  await page.getByRole('button', { name: '24h' }).click()
  await expect(page).toHaveURL(/range=24h/)
  await expect(page.getByRole('img', { name: /^Throughput, last 24h: \d+ completed/ })).toBeVisible()
  const label = async (re: RegExp) =>
    (await page.getByRole('img', { name: re }).getAttribute('aria-label')) ?? ''
  const completed = Number(/: (\d+) completed/.exec(await label(/^Throughput, last 24h/))?.[1])
  expect(completed).toBeGreaterThanOrEqual(14_400)
  await expect(
    page.getByRole('img', { name: /^Run \(started to ended\) latency, last 24h: [\d,]+ attempts/ }),
  ).toBeVisible()
  const seen = Number(
    /: ([\d,]+) attempts/
      .exec(await label(/^Run \(started to ended\) latency, last 24h/))?.[1]
      ?.replace(/,/g, ''),
  )
  expect(seen).toBeGreaterThanOrEqual(runs)
  await page.screenshot({ path: `${SHOTS}/charts-24h.png`, fullPage: true })

  // One queue: just the seeded one, exactly.
  await page.getByLabel('Charts of queue').selectOption(q)
  await expect(
    page.getByRole('img', { name: /^Throughput, last 24h, queue reports: 14400 completed, 720 failed/ }),
  ).toBeVisible()
  const runLabel = await label(/^Run \(started to ended\) latency, last 24h, queue reports/)
  expect(Number(/: ([\d,]+) attempts/.exec(runLabel)?.[1]?.replace(/,/g, ''))).toBe(runs)
  // The last interval's p99 lies in the (250, 1000] ms bucket.
  expect(runLabel).toMatch(/peak p99 [2-9]\d\d ms/)
  await page.screenshot({ path: `${SHOTS}/charts-24h-queue.png`, fullPage: true })
  // 6 hours back, the seeded work is out of range.
  await page.getByRole('button', { name: '6h' }).click()
  await expect(
    page.getByRole('img', { name: /^Throughput, last 6h, queue reports: 0 completed, 0 failed/ }),
  ).toBeVisible()
  await page.getByRole('button', { name: /switch to dark theme/ }).click()
  await page.getByRole('button', { name: '24h' }).click()
  await page.screenshot({ path: `${SHOTS}/charts-24h-dark.png`, fullPage: true })
  check()
})
