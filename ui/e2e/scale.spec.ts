/**
 * The console at size (issue 22, ADR 0033), in Chromium through nginx, on a stack of this file's
 * own (KEY_PREFIX e2e-scale): ~40 000 jobs seeded over four queues in several states (completed,
 * scheduled, queued, failed: 339 dead letters in three error classes) by POST /jobs/batch and
 * a worker of this file's own serving three of the queues. Then each operator task:
 *  - the jobs and DLQ pages' first rows in under a second (median of 3 loads, printed);
 *  - dead letters grouped on the server with exact counts, a group filtering the paged list;
 *  - "N jobs", jump to a time, the bounded payload filter;
 *  - cancel / delete / retry "all N matching", confirmed with the count, the system job's progress;
 *  - a permanent failure said plainly on the job page, its last stack open;
 *  - the jobs and DLQ endpoints' latency at this size (printed; bounded reads).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { expect, type Page, test } from '@playwright/test'
import { type Stack, startStack, TOKENS } from './stack'

const admin = { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.admin}` }
const SERVED = ['scale-a', 'scale-b', 'scale-c']
const IDLE = 'scale-d'
const PER_QUEUE = { completed: 6000, scheduled: 2500, failed: 113 }
const IDLE_QUEUED = 10_200
const IDLE_SCHEDULED = 4000
const CLASSES = ['TimeoutError: upstream slow', 'QuotaError: over the limit', 'ValueError: bad input']
const DEAD = PER_QUEUE.failed * SERVED.length
const TOTAL =
  SERVED.length * (PER_QUEUE.completed + PER_QUEUE.scheduled + PER_QUEUE.failed) +
  IDLE_QUEUED +
  IDLE_SCHEDULED

let stack: Stack
let worker: ChildProcess | undefined
let seededAt = 0

async function api<T = unknown>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const r = await fetch(`${stack.apiURL}${path}`, {
    method: init.method ?? 'GET',
    headers: admin,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  })
  expect(r.status, (await r.clone().text()).slice(0, 400)).toBeLessThan(300)
  return (await r.json()) as T
}

/** POST /jobs/batch, sent again on a 503 (nothing of it written: `not_created`), up to 5 times. */
async function batch(jobs: unknown[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const r = await fetch(`${stack.apiURL}/jobs/batch`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ jobs }),
    })
    if (r.status === 200) return
    const text = (await r.text()).slice(0, 300)
    if (r.status !== 503 || attempt === 5) throw new Error(`POST /jobs/batch: ${r.status} ${text}`)
    console.log(`POST /jobs/batch: 503, sent again (${text.slice(0, 160)})`)
    await new Promise((res) => setTimeout(res, 500 * attempt))
  }
}

const total = async (qs: string) => (await api<{ total: number | null }>(`/jobs?limit=1&${qs}`)).total

async function signIn(page: Page) {
  await page.addInitScript((t) => localStorage.setItem('dtq.token', t), TOKENS.admin)
}

/**
 * Time from navigation to the first row of the list, 3 loads after an uncounted warm-up (ms): measured in the page
 * (performance.now() -- ms since navigation start -- when a MutationObserver first sees a row
 * matching `selector`), and by the test's clock around page.goto + the row visible (which adds
 * the browser's start of navigation and Playwright's polling).
 */
async function firstRows(
  page: Page,
  url: string,
  selector: string,
): Promise<{ inPage: number[]; wall: number[] }> {
  const inPage: number[] = []
  const wall: number[] = []
  // One load first, not counted: the API's and the browser's first pass over these code paths
  // (JIT, connections) is not what an operator opening the page on a running server waits for.
  await page.goto(url)
  await page.locator(selector).first().waitFor({ state: 'visible' })
  // Five loads, the median judged: a CI run on 2 busy cores once took 1078 and 1135 ms for the
  // first two DLQ loads and 371 for the third (locally ~300 each) -- one slow pair is not the page.
  for (let i = 0; i < 5; i++) {
    await page.goto('about:blank')
    const t0 = Date.now()
    await page.goto(url)
    await page.locator(selector).first().waitFor({ state: 'visible' })
    wall.push(Date.now() - t0)
    inPage.push(
      await page.evaluate(() => Math.round((window as unknown as { __firstRowAt: number }).__firstRowAt)),
    )
    const timing = await page.evaluate(() =>
      performance
        .getEntriesByType('resource')
        .filter(
          (e) => e.name.includes('/api/jobs?') || e.name.includes('/api/dlq?') || e.name.endsWith('.js'),
        )
        .map(
          (e) =>
            `${new URL(e.name).pathname} ${Math.round(e.startTime)}-${Math.round((e as PerformanceResourceTiming).responseEnd)}`,
        )
        .join(', '),
    )
    console.log(
      `  ${new URL(url).pathname}: first row at ${inPage.at(-1)} ms in the page, ${wall.at(-1)} ms by the test (${timing})`,
    )
  }
  return { inPage, wall }
}

/** Records when a row matching `selector` first appears (performance.now(): since navigation). */
async function watchFirstRow(page: Page, selector: string) {
  await page.addInitScript((sel) => {
    const w = window as unknown as { __firstRowAt?: number }
    const seen = () => {
      if (w.__firstRowAt === undefined && document.querySelector(sel)) {
        w.__firstRowAt = performance.now()
        obs.disconnect()
      }
    }
    const obs = new MutationObserver(seen)
    obs.observe(document, { childList: true, subtree: true })
  }, selector)
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

test.describe.configure({ mode: 'serial' })

test.beforeAll(async () => {
  test.setTimeout(180_000)
  stack = await startStack({ env: { KEY_PREFIX: 'e2e-scale' } })
  const cli = resolve(import.meta.dirname, '../../app/src/cli/main.ts')
  worker = spawn(process.execPath, [cli, 'worker', '--concurrency', '64', '--queues', SERVED.join(',')], {
    env: { ...process.env, ...stack.env },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const t0 = Date.now()
  const batches: Array<Array<Record<string, unknown>>> = []
  let n = 0
  const job = (queue: string, task_type: string, extra: Record<string, unknown> = {}) => {
    const i = n++
    const { payload, ...rest } = extra
    return { task_type, queue, payload: { user: { id: i % 500 }, n: i, ...(payload as object) }, ...rest }
  }
  const push = (items: Array<Record<string, unknown>>) => {
    for (let i = 0; i < items.length; i += 1000) batches.push(items.slice(i, i + 1000))
  }
  for (const q of SERVED) {
    push(Array.from({ length: PER_QUEUE.completed }, () => job(q, 'echo')))
    push(Array.from({ length: PER_QUEUE.scheduled }, () => job(q, 'echo', { delay_ms: 6 * 3_600_000 })))
    push(
      Array.from({ length: PER_QUEUE.failed }, (_, k) =>
        job(q, 'fail', { max_retries: 0, payload: { message: CLASSES[k % 3] } }),
      ),
    )
  }
  push(Array.from({ length: IDLE_QUEUED }, () => job(IDLE, 'echo')))
  push(Array.from({ length: IDLE_SCHEDULED }, () => job(IDLE, 'echo', { delay_ms: 6 * 3_600_000 })))
  // Four requests at a time.
  for (let i = 0; i < batches.length; i += 4) {
    await Promise.all(batches.slice(i, i + 4).map(batch))
  }
  const sent = Date.now() - t0
  // Every served job has run: completed and dead letters at their counts.
  await expect
    .poll(async () => [await total('status=completed'), (await api<{ total: number }>('/dlq/stats')).total], {
      timeout: 90_000,
      intervals: [500],
    })
    .toEqual([SERVED.length * PER_QUEUE.completed, DEAD])
  seededAt = Date.now()
  const seconds = (seededAt - t0) / 1000
  console.log(
    `seeded ${TOTAL} jobs (${DEAD} dead letters): sent in ${sent} ms, all settled in ${seconds.toFixed(1)} s`,
  )
  expect(await total('')).toBe(TOTAL)
  expect(seconds).toBeLessThan(60)
})

test.afterAll(async () => {
  if (worker && worker.exitCode === null) {
    worker.kill('SIGTERM')
    await new Promise((r) => worker?.once('exit', r))
  }
  await stack?.stop()
})

test('the jobs and DLQ pages show their first rows in under a second at this size', async ({ page }) => {
  await signIn(page)
  const JOB_ROW = 'tbody tr input[aria-label^="select job "]'
  const DEAD_ROW = 'tbody tr input[aria-label^="select dead letter "]'
  await watchFirstRow(page, `${JOB_ROW}, ${DEAD_ROW}`)
  const jobs = await firstRows(page, `${stack.baseURL}/jobs`, JOB_ROW)
  await expect(page.getByRole('status').filter({ hasText: / jobs$/ })).toHaveText(
    `${TOTAL.toLocaleString('en-US')} jobs`,
  )
  const dlq = await firstRows(page, `${stack.baseURL}/dlq`, DEAD_ROW)
  const say = (t: { inPage: number[]; wall: number[] }) =>
    `${t.inPage.join(', ')} ms in the page (median ${median(t.inPage)}); ${t.wall.join(', ')} ms by the test (median ${median(t.wall)})`
  console.log(`first rows at ${TOTAL} jobs: /jobs ${say(jobs)}; /dlq ${say(dlq)}`)
  expect(median(jobs.inPage)).toBeLessThan(1000)
  expect(median(dlq.inPage)).toBeLessThan(1000)

  // The API at this size: each read is bounded (a page, the per-state counts, a paged DLQ walk).
  const timings: string[] = []
  for (const path of [
    '/jobs?limit=50',
    '/jobs?limit=50&task_type=fail',
    `/jobs?limit=50&queue=${IDLE}&status=scheduled`,
    '/dlq?limit=50',
    '/dlq/stats',
  ]) {
    const t0 = Date.now()
    await api(path)
    timings.push(`${path} ${Date.now() - t0} ms`)
  }
  console.log(`API at ${TOTAL} jobs: ${timings.join('; ')}`)
})

test('dead letters: exact groups over the whole DLQ, a group filters the paged list', async ({ page }) => {
  await signIn(page)
  await page.goto(`${stack.baseURL}/dlq`)
  const groups = page.getByRole('table').first()
  await expect(page.getByText(`(${DEAD} in all)`)).toBeVisible()
  // 3 queues × 3 classes, each exact: 113 split 38 / 38 / 37.
  await expect(groups.locator('tbody tr')).toHaveCount(9)
  const counts = await groups.locator('tbody tr td:nth-child(5)').allInnerTexts()
  expect(counts.map(Number).reduce((a, b) => a + b, 0)).toBe(DEAD)
  await page.setViewportSize({ width: 1280, height: 860 })
  await page.screenshot({ path: 'test-results/screenshots/scale-dlq-wide.png', fullPage: true })

  // Paged: 50 a page, Older / Newer.
  const rows = page.getByRole('checkbox', { name: /^select dead letter / })
  await expect(rows).toHaveCount(50)
  await expect(page.getByText(/page 1$/)).toBeVisible()
  await page.getByRole('button', { name: 'Older →' }).click()
  await expect(page.getByText(/page 2$/)).toBeVisible()
  await expect(rows).toHaveCount(50)
  await page.getByRole('button', { name: '← Newer' }).click()
  await expect(page.getByText(/page 1$/)).toBeVisible()

  // A group: the list filtered on the server to exactly its count.
  const row = groups.locator('tbody tr').filter({ hasText: 'QuotaError' }).filter({ hasText: 'scale-a' })
  const n = Number(await row.locator('td:nth-child(5)').textContent())
  await row.getByRole('button', { name: 'Show only these' }).click()
  await expect(page).toHaveURL(/class=QuotaError/)
  await expect(page.getByText(`(${n} matching)`)).toBeVisible()
  await expect(rows).toHaveCount(n)
  for (const e of await page.locator('table').last().locator('tbody td.error-text').allInnerTexts())
    expect(e).toContain('QuotaError')

  // Delete all matching: one queue, by type and error text (class and priority filters cleared).
  await page.goto(`${stack.baseURL}/dlq?queue=scale-c&error=QuotaError`)
  await expect(rows.first()).toBeVisible()
  await page.getByRole('button', { name: /^Delete all matching$/ }).click()
  const dialog = page.getByRole('dialog', { name: 'Delete all matching' })
  await expect(dialog).toContainText('queue scale-c')
  await dialog.getByRole('button', { name: /^Delete/ }).click()
  await expect(page.getByRole('status').filter({ hasText: 'delete by filter' })).toBeVisible()
  await expect
    .poll(async () => (await api<{ items: unknown[] }>('/dlq?queue=scale-c&error=QuotaError')).items.length, {
      timeout: 30_000,
    })
    .toBe(0)
  await expect
    .poll(async () => (await api<{ total: number }>('/dlq/stats?queue=scale-c')).total)
    .toBe(PER_QUEUE.failed - 38)

  await page.setViewportSize({ width: 390, height: 844 })
  await page.goto(`${stack.baseURL}/dlq`)
  await expect(rows.first()).toBeVisible()
  await page.screenshot({ path: 'test-results/screenshots/scale-dlq-390.png', fullPage: true })
})

test('jobs: N jobs, jump to a time, the bounded payload filter', async ({ page }) => {
  await signIn(page)
  const rows = page.getByRole('checkbox', { name: /^select job / })
  const summary = page.locator('.list-summary')
  await page.goto(`${stack.baseURL}/jobs?queue=scale-a&status=completed`)
  await expect(summary).toHaveText(`${PER_QUEUE.completed.toLocaleString('en-US')} jobs`)
  await expect(rows).toHaveCount(50)

  // Jump to a time: before the seed there is nothing; the picker's value lands in the URL.
  const before = new Date(Date.now() - 3_600_000)
  const local = new Date(before.getTime() - before.getTimezoneOffset() * 60_000).toISOString().slice(0, 19)
  await page.getByLabel('list from this time (local)').fill(local)
  await expect(page).toHaveURL(/from=\d+/)
  await expect(page.getByText('No jobs match these filters.')).toBeVisible()
  const now = new Date(Date.now() + 60_000)
  await page
    .getByLabel('list from this time (local)')
    .fill(new Date(now.getTime() - now.getTimezoneOffset() * 60_000).toISOString().slice(0, 19))
  await expect(rows).toHaveCount(50)

  // Oldest first: the first row is the oldest completed job of the queue (the API agrees).
  await page.goto(`${stack.baseURL}/jobs?queue=scale-a&status=completed`)
  await page.getByLabel('Sort').selectOption('updated-asc')
  await expect(page).toHaveURL(/order=asc/)
  const oldest = await api<{ items: Array<{ id: string }> }>(
    '/jobs?queue=scale-a&status=completed&order=asc&limit=1',
  )
  await expect(page.locator('tbody tr a').first()).toHaveText(oldest.items[0]!.id)

  // Payload filter within a queue: bounded, and it says what it scanned.
  await page.goto(`${stack.baseURL}/jobs?queue=${IDLE}`)
  const payload = page.getByLabel('Payload (field=value)')
  await payload.fill('user.id=42')
  await payload.blur()
  await expect(page).toHaveURL(/where=user.id/)
  await expect(summary).toContainText('live job(s) scanned')
  await expect(summary).toContainText('cut short at 10,000')
  await expect(rows.first()).toBeVisible()
  const found = await rows.count()
  expect(found).toBeGreaterThan(0)
  expect(found).toBeLessThanOrEqual(50)
  // Each one's payload does say user.id 42.
  const link = page.locator('tbody tr a').first()
  const href = (await link.getAttribute('href')) ?? ''
  const [, id, q] = href.match(/\/jobs\/([^?]+)\?queue=(.+)$/) ?? []
  expect((await api<{ payload: { user: { id: number } } }>(`/jobs/${id}?queue=${q}`)).payload.user.id).toBe(
    42,
  )
  // A bulk action is not driven by a payload filter.
  await expect(page.getByRole('button', { name: /Cancel .*matching/ })).toBeDisabled()
  await page.screenshot({ path: 'test-results/screenshots/scale-jobs-payload.png', fullPage: true })
})

test('act on everything matching: cancel, delete and retry all N, with the system job progress', async ({
  page,
}) => {
  test.setTimeout(120_000)
  await signIn(page)
  const progress = page.getByRole('region', { name: 'bulk action progress' })
  await page.goto(`${stack.baseURL}/jobs?queue=scale-b&status=scheduled`)
  await page.getByLabel('rate per second').fill('5000')
  const count = PER_QUEUE.scheduled.toLocaleString('en-US')
  await page.getByRole('button', { name: `Cancel all ${count} matching` }).click()
  let dialog = page.getByRole('dialog', { name: 'Cancel all matching jobs' })
  await expect(dialog).toContainText(`Cancel ${count} job(s)`)
  await dialog.getByRole('button', { name: `Cancel ${count}` }).click()
  await expect(progress).toContainText('cancel by filter')
  await expect(progress).toContainText(`completed · ${count} of ${count} done`, { timeout: 60_000 })
  await page.screenshot({ path: 'test-results/screenshots/scale-jobs-bulk.png', fullPage: true })
  expect(await total('queue=scale-b&status=scheduled')).toBe(0)

  // Delete: only finished jobs, per queue, admin.
  await page.goto(`${stack.baseURL}/jobs?queue=scale-b&status=cancelled`)
  await page.getByLabel('rate per second').fill('5000')
  await page.getByRole('button', { name: `Delete all ${count} matching` }).click()
  dialog = page.getByRole('dialog', { name: 'Delete all matching jobs' })
  await expect(dialog).toContainText(`Delete ${count} job(s)`)
  await dialog.getByRole('button', { name: `Delete ${count}` }).click()
  await expect(progress).toContainText(`completed · ${count} of ${count} done`, { timeout: 60_000 })
  await expect(page.locator('.list-summary')).toHaveText('0 jobs')
  // Refused where it would be unsafe: no queue, or a state that is not finished.
  await page.goto(`${stack.baseURL}/jobs?status=completed`)
  await expect(page.getByRole('button', { name: /^Delete .*matching$/ })).toBeDisabled()
  await page.goto(`${stack.baseURL}/jobs?queue=scale-b&status=queued`)
  await expect(page.getByRole('button', { name: /^Delete .*matching$/ })).toBeDisabled()

  // Retry every dead letter of a queue: they fail again (permanent) and come back.
  await page.goto(`${stack.baseURL}/jobs?queue=scale-a&status=failed`)
  await page.getByRole('button', { name: `Retry all ${PER_QUEUE.failed} matching` }).click()
  dialog = page.getByRole('dialog', { name: 'Retry all matching jobs' })
  await dialog.getByRole('button', { name: `Retry ${PER_QUEUE.failed}` }).click()
  await expect(progress).toContainText(`completed · ${PER_QUEUE.failed} of ${PER_QUEUE.failed} done`, {
    timeout: 60_000,
  })
})

test('job detail: a permanent failure said plainly, the last stack open', async ({ page }) => {
  await signIn(page)
  const dead = await api<{ items: Array<{ id: string; queue: string }> }>('/dlq?queue=scale-a&limit=1')
  const { id, queue } = dead.items[0]!
  await page.goto(`${stack.baseURL}/jobs/${id}?queue=${queue}`)
  await expect(page.getByRole('note').filter({ hasText: 'Failed permanently' })).toContainText(
    /Failed permanently after \d+ attempts?: moved to dead letters/,
  )
  const stack_ = page.locator('details[open]').filter({ hasText: 'Stack' }).last()
  await expect(stack_.locator('pre')).toBeVisible()
  await page.screenshot({ path: 'test-results/screenshots/scale-job-failed.png', fullPage: true })
  await page.setViewportSize({ width: 390, height: 844 })
  await page.goto(`${stack.baseURL}/jobs?queue=scale-a`)
  await expect(page.getByRole('checkbox', { name: /^select job / }).first()).toBeVisible()
  await page.screenshot({ path: 'test-results/screenshots/scale-jobs-390.png', fullPage: true })
})
