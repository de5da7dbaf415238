/**
 * The console end to end: real Chromium → real nginx (repository nginx.conf) → real API and
 * worker → real redis-server. Every page is screenshotted into test-results/screenshots/.
 */
import { expect, type Page, test } from '@playwright/test'
import { TOKENS } from './stack'

const base = () => process.env.E2E_BASE_URL ?? ''
const api = () => process.env.E2E_API_URL ?? ''
const SHOTS = 'test-results/screenshots'

async function signIn(page: Page, role: keyof typeof TOKENS = 'admin') {
  await page.addInitScript((t) => localStorage.setItem('dtq.token', t), TOKENS[role])
}

/** Fails the test on any browser error (uncaught exceptions, console errors). */
function watchErrors(page: Page, allow: RegExp[] = []) {
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  page.on('console', (m) => {
    if (m.type() === 'error' && !allow.some((a) => a.test(m.text()))) errors.push(m.text())
  })
  return () => expect(errors, 'browser errors').toEqual([])
}

async function createJob(body: Record<string, unknown>): Promise<string> {
  const r = await fetch(`${api()}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.admin}` },
    body: JSON.stringify(body),
  })
  expect(r.status).toBe(201)
  return ((await r.json()) as { id: string }).id
}

/** The job's state, or `HTTP <status>` when the API does not answer one. */
async function jobState(id: string, queue?: string): Promise<string> {
  const r = await fetch(`${api()}/jobs/${id}${queue ? `?queue=${queue}` : ''}`, {
    headers: { authorization: `Bearer ${TOKENS.admin}` },
  })
  return r.ok ? ((await r.json()) as { state: string }).state : `HTTP ${r.status}`
}

const stateBadge = (page: Page) => page.locator('.card-head h2 .badge').first()

test('sign in with a token; a bad token is refused', async ({ page }) => {
  const check = watchErrors(page, [/401/])
  await page.goto(`${base()}/`)
  await expect(page.getByRole('heading', { name: 'DTQ console' })).toBeVisible()
  await page.screenshot({ path: `${SHOTS}/sign-in.png` })
  await page.getByLabel('API token').fill('not-a-valid-token-000000')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect(page.getByRole('alert')).toHaveText('That token is not valid.')
  await page.getByLabel('API token').fill(TOKENS.admin)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect(page.getByRole('link', { name: 'Dashboard' })).toBeVisible()
  await expect(page.getByText('admin', { exact: true })).toBeVisible()
  check()
})

test('create a job from the form: it appears and turns completed without a reload', async ({ page }) => {
  const check = watchErrors(page)
  await signIn(page)
  await page.goto(`${base()}/jobs/new`)
  await page.getByLabel('Task type').fill('sleep')
  const payload = page.getByLabel('Payload (JSON)')
  await payload.fill('{"ms": 1500')
  await expect(page.getByText(/^Invalid JSON/)).toBeVisible()
  await expect(page.getByRole('button', { name: 'Create job' })).toBeDisabled()
  await payload.fill('{"ms": 1500}')
  await expect(page.getByText('Valid JSON')).toBeVisible()
  await page.getByLabel('Priority').selectOption('high')
  await page.screenshot({ path: `${SHOTS}/new-job.png`, fullPage: true })
  await page.getByRole('button', { name: 'Create job' }).click()
  await expect(page).toHaveURL(/\/jobs\/[0-9]+\?queue=default$/)
  await expect(stateBadge(page)).toHaveText(/queued|active/)
  await expect(stateBadge(page)).toHaveText('active')
  await expect(stateBadge(page)).toHaveText('completed', { timeout: 15_000 })
  await expect(page.getByText('slept_ms')).toBeVisible()
  await page.screenshot({ path: `${SHOTS}/job-detail.png`, fullPage: true })
  // …and it is in the jobs list, live.
  await page.getByRole('link', { name: 'Jobs', exact: true }).click()
  const id = page.url().split('/').pop()
  await expect(page.getByRole('row').filter({ hasText: 'sleep' }).first()).toContainText('completed')
  await page.screenshot({ path: `${SHOTS}/jobs.png`, fullPage: true })
  expect(id).toBeTruthy()
  check()
})

test('a failing job retries, lands in Dead letters, and completes when retried from there', async ({
  page,
}) => {
  const check = watchErrors(page)
  await signIn(page)
  // Fails attempts 1-3: with max_retries 1 it is dead-lettered after attempt 2; retried from
  // the DLQ (fresh retries) it fails attempt 3, retries, and attempt 4 succeeds.
  const id = await createJob({
    task_type: 'fail',
    payload: { times: 3, message: 'downstream unavailable' },
    max_retries: 1,
  })
  await page.goto(`${base()}/dlq`)
  const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: id, exact: true }) })
  await expect(row).toBeVisible({ timeout: 20_000 })
  await expect(page.getByRole('cell', { name: 'downstream unavailable' }).first()).toBeVisible()
  await page.screenshot({ path: `${SHOTS}/dead-letters.png`, fullPage: true })
  await row.getByRole('button', { name: `retry ${id} in default` }).click()
  await expect(row).toHaveCount(0)
  await page.goto(`${base()}/jobs/${id}`)
  await expect(stateBadge(page)).toHaveText('completed', { timeout: 20_000 })
  await expect(page.getByText('Attempt 2', { exact: false }).first()).toBeVisible()
  await expect(page.locator('.timeline li.failed')).toHaveCount(3)
  check()
})

test('cancel a running sleep job', async ({ page }) => {
  const check = watchErrors(page)
  await signIn(page)
  const id = await createJob({ task_type: 'sleep', payload: { ms: 60_000 } })
  await page.goto(`${base()}/jobs/${id}`)
  await expect(stateBadge(page)).toHaveText('active')
  // A link without the queue that finds one job becomes that job's link.
  await expect(page).toHaveURL(new RegExp(`/jobs/${id}\\?queue=default$`))
  await page.getByRole('button', { name: 'Cancel', exact: true }).click()
  const dialog = page.getByRole('dialog', { name: 'Cancel job' })
  await expect(dialog).toContainText('The job is running')
  await page.screenshot({ path: `${SHOTS}/confirm-cancel.png` })
  await dialog.getByRole('button', { name: 'Cancel job' }).click()
  await expect(stateBadge(page)).toHaveText('cancelled')
  expect(await jobState(id)).toBe('cancelled')
  check()
})

test('pause a worker: it stops taking jobs; resume it', async ({ page }) => {
  const check = watchErrors(page)
  await signIn(page)
  await page.goto(`${base()}/workers`)
  const row = page
    .getByRole('row')
    .filter({ has: page.getByRole('button', { name: /^pause / }) })
    .first()
  const badge = row.locator('.badge')
  await expect(badge).toHaveText('running')
  await row.getByRole('button', { name: /^pause / }).click()
  const paused = page.getByRole('row').filter({ has: page.getByRole('button', { name: /^resume / }) })
  await expect(paused.locator('.badge')).toHaveText('paused')
  await page.screenshot({ path: `${SHOTS}/workers.png`, fullPage: true })
  const id = await createJob({ task_type: 'echo', payload: { while: 'paused' } })
  await page.waitForTimeout(1500)
  expect(await jobState(id)).toBe('queued')
  await paused.getByRole('button', { name: /^resume / }).click()
  await expect(page.locator('tbody .badge').first()).toHaveText('running')
  await expect.poll(() => jobState(id), { timeout: 10_000 }).toBe('completed')
  check()
})

test('a read-only token cannot mutate anything', async ({ page }) => {
  const check = watchErrors(page)
  await signIn(page, 'read')
  const failed = await createJob({ task_type: 'fail', payload: { permanent: true }, max_retries: 0 })
  const waiting = await createJob({ task_type: 'sleep', payload: { ms: 1 }, delay_ms: 600_000 })
  await page.goto(`${base()}/jobs/new`)
  await expect(page.getByText('read', { exact: true })).toBeVisible()
  await expect(page.getByRole('button', { name: 'Create job' })).toBeDisabled()
  await expect(page.getByRole('button', { name: 'Generate' })).toBeDisabled()
  await page.goto(`${base()}/jobs/${waiting}`)
  await expect(stateBadge(page)).toHaveText('scheduled')
  await expect(page.getByRole('button', { name: 'Cancel', exact: true })).toBeDisabled()
  await expect(page.getByRole('button', { name: 'Retry' })).toBeDisabled()
  await page.goto(`${base()}/jobs`)
  await page.getByRole('checkbox', { name: `select job ${waiting} in default`, exact: true }).check()
  await expect(page.getByRole('button', { name: 'Cancel selected' })).toBeDisabled()
  await expect(page.getByRole('button', { name: 'Retry selected' })).toBeDisabled()
  await page.goto(`${base()}/dlq`)
  await expect(
    page.getByRole('row').filter({ has: page.getByRole('link', { name: failed, exact: true }) }),
  ).toBeVisible({ timeout: 15_000 })
  for (const name of [
    'Retry all matching',
    'Retry selected',
    'Delete selected',
    'Purge',
    `retry ${failed} in default`,
  ]) {
    await expect(page.getByRole('button', { name, exact: true })).toBeDisabled()
  }
  await page.goto(`${base()}/workers`)
  await expect(page.getByRole('button', { name: /^pause / }).first()).toBeDisabled()
  await expect(page.getByRole('button', { name: 'Drain' }).first()).toBeDisabled()
  await page.goto(`${base()}/queues`)
  await expect(page.getByRole('button', { name: /queue default/ })).toBeDisabled()
  await page.screenshot({ path: `${SHOTS}/read-only-queues.png`, fullPage: true })
  // And the API agrees: the token cannot write.
  const r = await fetch(`${api()}/jobs/${waiting}/cancel`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKENS.read}` },
  })
  expect(r.status).toBe(403)
  check()
})

test('deep links load directly through nginx; the dashboard is live, light and dark, wide and narrow', async ({
  page,
}) => {
  const check = watchErrors(page)
  await signIn(page)
  const id = await createJob({ task_type: 'echo', payload: { deep: 'link' } })
  const res = await page.goto(`${base()}/jobs/${id}`)
  expect(res?.status()).toBe(200)
  await expect(page.getByRole('heading', { name: new RegExp(id) })).toBeVisible()
  await page.goto(`${base()}/dlq?type=fail`)
  await expect(page.getByLabel('Type')).toHaveValue('fail')
  await page.goto(`${base()}/jobs?status=completed`)
  await expect(page.getByLabel('State')).toHaveValue('completed')
  await page.goto(`${base()}/`)
  await expect(page.getByText('Live', { exact: true })).toBeVisible()
  const before = (await page.locator('.tile.state-completed .tile-n').textContent()) ?? ''
  await createJob({ task_type: 'echo' })
  await expect(page.locator('.tile.state-completed .tile-n')).not.toHaveText(before)
  await page.screenshot({ path: `${SHOTS}/dashboard.png`, fullPage: true })
  await page.getByRole('button', { name: /switch to dark theme/ }).click()
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark')
  await page.screenshot({ path: `${SHOTS}/dashboard-dark.png`, fullPage: true })
  await page.setViewportSize({ width: 390, height: 844 })
  await page.screenshot({ path: `${SHOTS}/dashboard-narrow.png`, fullPage: true })
  await page.goto(`${base()}/queues`)
  await page.screenshot({ path: `${SHOTS}/queues.png`, fullPage: true })
  check()
})

/** The row of a table that shows this job id in this queue (ids are unique within a queue only). */
const rowOf = (page: Page, id: string, queue: string) =>
  page.getByRole('row').filter({ hasText: id }).filter({ hasText: queue })

test('the same job id in two queues: each opens with its queue, cancelling one leaves the other, a link without the queue offers both', async ({
  page,
}) => {
  // The link without the queue is answered 409 AMBIGUOUS_JOB_ID, which the browser logs.
  const check = watchErrors(page, [/409/])
  await signIn(page)
  const id = 'twin-report'
  for (const queue of ['mail', 'billing'])
    await createJob({ job_id: id, queue, task_type: 'sleep', payload: { ms: 1 }, delay_ms: 600_000 })

  // Search by id: one row per queue.
  await page.goto(`${base()}/jobs`)
  await page.getByLabel('Search', { exact: true }).fill(id)
  await page.getByRole('button', { name: 'Search', exact: true }).click()
  await expect(page.getByRole('row').filter({ hasText: id })).toHaveCount(2)
  await page.screenshot({ path: `${SHOTS}/jobs-same-id.png`, fullPage: true })

  for (const queue of ['mail', 'billing']) {
    await rowOf(page, id, queue).getByRole('link', { name: id, exact: true }).click()
    await expect(page).toHaveURL(new RegExp(`/jobs/${id}\\?queue=${queue}$`))
    await expect(stateBadge(page)).toHaveText('scheduled')
    await expect(page.locator('.facts')).toContainText(`${queue} · normal`)
    if (queue === 'mail') await page.goBack()
  }
  // Cancel billing's: mail's is untouched.
  await page.getByRole('button', { name: 'Cancel', exact: true }).click()
  await page.getByRole('dialog', { name: 'Cancel job' }).getByRole('button', { name: 'Cancel job' }).click()
  await expect(stateBadge(page)).toHaveText('cancelled')
  await page.screenshot({ path: `${SHOTS}/job-in-queue.png`, fullPage: true })
  expect(await jobState(id, 'billing')).toBe('cancelled')
  expect(await jobState(id, 'mail')).toBe('scheduled')
  await page.goBack()
  await expect(rowOf(page, id, 'billing')).toContainText('cancelled')
  await expect(rowOf(page, id, 'mail')).toContainText('scheduled')

  // An old link, without the queue: the user picks one.
  await page.goto(`${base()}/jobs/${id}`)
  const pick = page.getByRole('list', { name: 'queues with this job id' })
  await expect(pick.getByRole('link')).toHaveCount(2)
  await page.screenshot({ path: `${SHOTS}/job-pick-queue.png`, fullPage: true })
  await pick.getByRole('link', { name: /mail/ }).click()
  await expect(page).toHaveURL(new RegExp(`/jobs/${id}\\?queue=mail$`))
  await expect(stateBadge(page)).toHaveText('scheduled')
  check()
})

test('the same job id dead-lettered in two queues: retry one from the DLQ, delete the other', async ({
  page,
}) => {
  const check = watchErrors(page)
  await signIn(page)
  const id = 'twin-dead'
  // Fails its first attempt (no retries: dead-lettered), succeeds when retried from the DLQ.
  for (const queue of ['mail', 'billing'])
    await createJob({ job_id: id, queue, task_type: 'fail', payload: { times: 1 }, max_retries: 0 })
  await page.goto(`${base()}/dlq`)
  await expect(rowOf(page, id, 'mail')).toBeVisible({ timeout: 20_000 })
  await expect(rowOf(page, id, 'billing')).toBeVisible({ timeout: 20_000 })

  await rowOf(page, id, 'billing')
    .getByRole('button', { name: `retry ${id} in billing` })
    .click()
  await expect(rowOf(page, id, 'billing')).toHaveCount(0)
  await expect.poll(() => jobState(id, 'billing'), { timeout: 15_000 }).toBe('completed')
  expect(await jobState(id, 'mail')).toBe('failed')

  await page.getByRole('checkbox', { name: `select dead letter ${id} in mail` }).check()
  await page.getByRole('button', { name: 'Delete selected' }).click()
  await page.getByRole('dialog', { name: 'Delete selected' }).getByRole('button', { name: 'Delete' }).click()
  await expect(rowOf(page, id, 'mail')).toHaveCount(0)
  expect(await jobState(id, 'mail')).toBe('HTTP 404')
  expect(await jobState(id, 'billing')).toBe('completed')
  check()
})

test('schedules: create one with its next fire times previewed in its zone, trigger it, follow the history to the job', async ({
  page,
}) => {
  const check = watchErrors(page, [/400 \(Bad Request\)/]) // the preview of a bad cron
  await signIn(page)
  await page.goto(`${base()}/schedules`)
  await expect(page.getByText('No schedules yet')).toBeVisible()
  const form = page.getByRole('form', { name: 'Schedule' })
  await form.getByLabel('Name').fill('e2e-nightly')
  await form.getByLabel(/^Cron/).fill('0 30 2 * * *')
  await form.getByLabel('Time zone').fill('Europe/Berlin')
  const preview = page.getByRole('region', { name: 'Next fire times' }).getByRole('listitem')
  await expect(preview).toHaveCount(5)
  // Read in the schedule's zone: 02:30 each day (03:00 on a spring-forward day).
  await expect(preview.first()).toHaveText(/ 0[23]:[03]0:00$/)
  await form.getByLabel('Cron (seconds first; 5 fields also work)').fill('not a cron')
  await expect(page.getByRole('region', { name: 'Next fire times' }).getByText(/cron/)).toBeVisible()
  await form.getByLabel(/^Cron/).fill('0 30 2 * * *')
  await expect(preview).toHaveCount(5)
  await form.getByLabel('Task type').fill('echo')
  await form.getByLabel('Queue', { exact: true }).fill('default')
  await page.screenshot({ path: `${SHOTS}/schedule-form.png`, fullPage: true })
  await form.getByRole('button', { name: 'Save schedule' }).click()
  const row = page.getByRole('row', { name: /e2e-nightly/ })
  await expect(row).toBeVisible()
  await expect(row.getByText('Europe/Berlin')).toBeVisible()
  await row.getByRole('button', { name: 'pause e2e-nightly' }).click()
  await expect(row.getByText('paused')).toBeVisible()
  await row.getByRole('button', { name: 'resume e2e-nightly' }).click()
  await expect(row.getByRole('button', { name: 'pause e2e-nightly' })).toBeVisible()
  await row.getByRole('button', { name: 'trigger e2e-nightly' }).click()
  const history = page.locator('section.card', {
    has: page.getByRole('heading', { name: 'History of e2e-nightly' }),
  })
  const jobLink = history.getByRole('row', { name: /triggered/ }).getByRole('link')
  await expect(jobLink).toBeVisible()
  await expect(row.getByText('completed')).toBeVisible({ timeout: 15_000 })
  await page.screenshot({ path: `${SHOTS}/schedules.png`, fullPage: true })
  const id = (await jobLink.textContent()) ?? ''
  await jobLink.click()
  await expect(page).toHaveURL(new RegExp(`/jobs/${id}\\?queue=default$`))
  await expect(stateBadge(page)).toHaveText('completed')
  await page.getByRole('link', { name: 'e2e-nightly' }).click()
  await expect(page.getByRole('heading', { name: 'History of e2e-nightly' })).toBeVisible()
  check()
})

test('schedules: an every-N-ms schedule with a run limit fires by itself, as often as the limit allows', async ({
  page,
}) => {
  const check = watchErrors(page)
  await signIn(page)
  await page.goto(`${base()}/schedules`)
  const form = page.getByRole('form', { name: 'Schedule' })
  await form.getByLabel('Name').fill('e2e-every')
  await form.getByLabel('Fires').selectOption('every')
  await expect(page.getByRole('region', { name: 'Next fire times' })).toHaveCount(0)
  await form.getByLabel('Every (ms)').fill('1000')
  await form.getByLabel('Run limit (empty: none)').fill('2')
  await form.getByLabel('After downtime').selectOption('catch_up')
  await form.getByLabel('Catch up at most').fill('3')
  await form.getByLabel('Task type').fill('echo')
  await form.getByRole('button', { name: 'Save schedule' }).click()
  const row = page.getByRole('row', { name: /e2e-every/ })
  await expect(row.getByText('every 1000 ms')).toBeVisible()
  const history = page.locator('section.card', {
    has: page.getByRole('heading', { name: 'History of e2e-every' }),
  })
  // Fired by the stack's runners, no trigger: two jobs, then the limit ends it.
  await expect(history.getByRole('row', { name: /\bjob\b/ })).toHaveCount(2, { timeout: 15_000 })
  const r = await fetch(`${api()}/schedules/e2e-every`, {
    headers: { authorization: `Bearer ${TOKENS.admin}` },
  })
  const s = (await r.json()) as { runs: number; max_runs: number; catch_up_max: number; misfire: string }
  expect(s).toMatchObject({ runs: 2, max_runs: 2, catch_up_max: 3, misfire: 'catch_up' })
  check()
})

test('a flow: submitted through the API, drawn as a graph whose nodes turn completed; a node opens its job', async ({
  page,
}) => {
  const check = watchErrors(page)
  const r = await fetch(`${api()}/flows`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.admin}` },
    body: JSON.stringify({
      nodes: [
        { key: 'fetch', task_type: 'sleep', payload: { ms: 1500 } },
        { key: 'parse', task_type: 'sleep', payload: { ms: 300 }, depends_on: ['fetch'] },
        {
          key: 'thumbs',
          task_type: 'echo',
          payload: { n: 1 },
          depends_on: [{ node: 'fetch', on_failure: 'ignore' }],
        },
        { key: 'store', task_type: 'echo', payload: { n: 2 }, depends_on: ['parse', 'thumbs'] },
      ],
    }),
  })
  expect(r.status).toBe(201)
  const flow = (await r.json()) as { id: string }
  await signIn(page)
  await page.goto(`${base()}/flows/${flow.id}`)
  const graph = page.getByRole('navigation', { name: 'flow nodes' })
  const node = (key: string) => graph.locator(`[data-node="${key}"]`)
  await expect(node('store')).toHaveAttribute('data-state', 'waiting')
  await page.screenshot({ path: `${SHOTS}/flow-running.png`, fullPage: true })
  for (const key of ['fetch', 'parse', 'thumbs', 'store'])
    await expect(node(key)).toHaveAttribute('data-state', 'completed', { timeout: 20_000 })
  await page.screenshot({ path: `${SHOTS}/flow-completed.png`, fullPage: true })
  await node('store').click()
  await expect(page).toHaveURL(new RegExp(`/jobs/${flow.id}\\.store\\?queue=default$`))
  await expect(stateBadge(page)).toHaveText('completed')
  await page.getByRole('link', { name: flow.id }).click()
  await expect(page).toHaveURL(new RegExp(`/flows/${flow.id}$`))
  check()
})

test('a job that depends on existing jobs: created from the form, waits, runs after them; its flow shows both', async ({
  page,
}) => {
  const check = watchErrors(page, [/status of 400/])
  const parent = await createJob({ task_type: 'sleep', payload: { ms: 6000 } })
  await signIn(page)
  await page.goto(`${base()}/jobs/new`)
  await page.getByLabel('Task type').fill('echo')
  await page.getByLabel('Depends on').fill(parent)
  await page.getByLabel('If a parent fails').selectOption('cancel')
  await page.screenshot({ path: `${SHOTS}/new-job-depends-on.png`, fullPage: true })
  await page.getByRole('button', { name: 'Create job' }).click()
  await expect(page).toHaveURL(/\/jobs\/f[A-Za-z0-9_-]{20}\.job\?queue=default$/)
  await expect(stateBadge(page)).toHaveText(/waiting/)
  await expect(stateBadge(page)).toHaveText('completed', { timeout: 20_000 })
  expect(await jobState(parent, 'default')).toBe('completed')
  await expect(page.getByRole('heading', { name: "Parents' results" })).toBeVisible()
  await expect(page.getByText('slept_ms')).toBeVisible()
  await page.screenshot({ path: `${SHOTS}/job-depends-on.png`, fullPage: true })
  const flowId = page.url().split('/jobs/')[1]!.split('.')[0]!
  await page.getByRole('link', { name: flowId }).click()
  const graph = page.getByRole('navigation', { name: 'flow nodes' })
  await expect(graph.locator(`[data-node="${parent}"]`)).toHaveAttribute('data-state', 'completed')
  await page.screenshot({ path: `${SHOTS}/flow-depends-on.png`, fullPage: true })
  // An unknown parent: a clear error, no job.
  await page.goto(`${base()}/jobs/new`)
  await page.getByLabel('Depends on').fill('no-such-job')
  await page.getByRole('button', { name: 'Create job' }).click()
  await expect(page.getByText(/depends_on names jobs that do not exist: no-such-job/)).toBeVisible()
  check()
})

test('limits: set a queue cap and a breaker from the console, see held jobs, open and close the breaker (confirmed)', async ({
  page,
}) => {
  const check = watchErrors(page)
  await signIn(page)
  // Held jobs to show: a cap of 1 on a queue no worker serves, two jobs in it.
  await createJob({ task_type: 'echo', queue: 'limited' })
  await page.goto(`${base()}/queues`)
  await page.getByRole('link', { name: 'Limits of queue limited' }).click()
  await expect(page).toHaveURL(/\/queues\/limited\/limits$/)
  await page.getByLabel('Concurrency (fleet-wide)').fill('1')
  await page.getByLabel(/^Per task type/).fill('{"mail": {"breaker": {"failures": 3, "cooldown_ms": 60000}}}')
  await page.getByRole('button', { name: 'Save limits' }).click()
  await expect(page.getByText(/^Saved/)).toBeVisible()
  const row = page.locator('[data-breaker="mail"]')
  await expect(row).toContainText('closed')
  await row.getByRole('button', { name: 'Open' }).click()
  await page.getByRole('dialog').getByRole('button', { name: 'open' }).click()
  await expect(row).toContainText('open')
  await page.screenshot({ path: `${SHOTS}/limits.png`, fullPage: true })
  await row.getByRole('button', { name: 'Close' }).click()
  await page.getByRole('dialog').getByRole('button', { name: 'close' }).click()
  await expect(row).toContainText('closed')
  // Bad input: a clear error, nothing changed.
  await page.getByLabel('Concurrency (fleet-wide)').fill('0')
  await page.getByRole('button', { name: 'Save limits' }).click()
  await expect(page.getByText(/concurrency/i).last()).toBeVisible()
  check()
})

test('dedup and a start deadline from the New job form: a repeat opens the first job, marked deduplicated', async ({
  page,
}) => {
  const check = watchErrors(page, [/status of 400/])
  await signIn(page)
  const fill = async (mode: string, windowMs: string) => {
    await page.goto(`${base()}/jobs/new`)
    await page.getByLabel('Task type').fill('sleep')
    await page.getByLabel('Payload (JSON)').fill(`{"ms": 500, "run": ${run}}`)
    await page.getByLabel('Deduplicate').selectOption(mode)
    await page.getByLabel('Dedup window (ms)').fill(windowMs)
    await page.getByLabel('Expires in (ms)').fill('600000')
  }
  const run = Date.now()
  await fill('throttle', '600000')
  await page.screenshot({ path: `${SHOTS}/new-job-dedup.png`, fullPage: true })
  await page.getByRole('button', { name: 'Create job' }).click()
  await expect(page).toHaveURL(/\/jobs\/[0-9]+\?queue=default$/)
  const first = page.url()
  await expect(page.getByText('throttle, window 10 min 0 s')).toBeVisible()
  await expect(page.getByText('Start by')).toBeVisible()
  await expect(page.getByText(/^Deduplicated/)).toHaveCount(0)
  // The same add again: no new job, the first one opens and says why.
  await fill('throttle', '600000')
  await page.getByRole('button', { name: 'Create job' }).click()
  await expect(page.getByText(/^Deduplicated: no new job was created/)).toBeVisible()
  expect(page.url()).toBe(first)
  await page.screenshot({ path: `${SHOTS}/job-deduplicated.png`, fullPage: true })
  // A debounce without its window: a clear error, no job.
  await fill('debounce', '')
  await page.getByRole('button', { name: 'Create job' }).click()
  await expect(page.getByText(/dedup.ttl_ms is required for debounce/)).toBeVisible()
  check()
})

// ---- day-2 operations (ADR 0020) ------------------------------------------------------------

test('day-2 on a job: change priority, edit the payload (a bad one refused), run now, delete -- each confirmed', async ({
  page,
}) => {
  const check = watchErrors(page, [/400|404/])
  await signIn(page)
  // A queue no worker serves: the job stays where the operations put it.
  const id = await createJob({ task_type: 'echo', payload: { x: 1 }, queue: 'ops2', delay_ms: 600_000 })
  await page.goto(`${base()}/jobs/${id}?queue=ops2`)
  await expect(stateBadge(page)).toHaveText('scheduled')

  await page.getByRole('button', { name: 'Priority', exact: true }).click()
  const prio = page.getByRole('dialog', { name: 'Change priority' })
  await prio.getByLabel('new priority').selectOption('high')
  await page.screenshot({ path: `${SHOTS}/day2-priority.png` })
  await prio.getByRole('button', { name: 'Change priority' }).click()
  await expect(page.getByText('ops2 · high')).toBeVisible()

  await page.getByRole('button', { name: 'Edit payload' }).click()
  const edit = page.getByRole('dialog', { name: 'Edit payload' })
  await edit.getByLabel('new payload').fill('{bad')
  await edit.getByRole('button', { name: 'Save payload' }).click()
  await expect(page.getByText('Not valid JSON: nothing was saved.')).toBeVisible()
  await page.getByRole('button', { name: 'Edit payload' }).click()
  await edit.getByLabel('new payload').fill('{"x": 2}')
  await page.screenshot({ path: `${SHOTS}/day2-edit-payload.png` })
  await edit.getByRole('button', { name: 'Save payload' }).click()
  await expect(page.getByText(/1 time, last by console/)).toBeVisible()
  const stored = await fetch(`${api()}/jobs/${id}?queue=ops2`, {
    headers: { authorization: `Bearer ${TOKENS.admin}` },
  })
  expect(((await stored.json()) as { payload: unknown }).payload).toEqual({ x: 2 })

  await page.getByRole('button', { name: 'Run now' }).click()
  await page.getByRole('dialog', { name: 'Run job now' }).getByRole('button', { name: 'Run now' }).click()
  await expect(stateBadge(page)).toHaveText('queued')
  await page.screenshot({ path: `${SHOTS}/day2-job.png`, fullPage: true })
  await page.getByRole('button', { name: 'Delete', exact: true }).click()
  const del = page.getByRole('dialog', { name: 'Delete job' })
  await expect(del).toContainText('deleted for good')
  await del.getByRole('button', { name: 'Delete job' }).click()
  await expect(page).toHaveURL(/\/jobs$/)
  expect(await jobState(id, 'ops2')).toBe('HTTP 404')
  check()
})

test('queues: empty a queue and delete it, each after a confirmation', async ({ page }) => {
  const check = watchErrors(page)
  await signIn(page)
  for (let i = 0; i < 3; i++) await createJob({ task_type: 'echo', queue: 'ops3' })
  await createJob({ task_type: 'echo', queue: 'ops3', delay_ms: 600_000 })
  await page.goto(`${base()}/queues`)
  const row = page.getByRole('row').filter({ hasText: 'ops3' })
  await row.getByRole('button', { name: 'Empty' }).click()
  const empty = page.getByRole('dialog', { name: 'Empty queue ops3' })
  await expect(empty).toContainText('4 jobs waiting to run')
  await page.screenshot({ path: `${SHOTS}/day2-empty-queue.png` })
  await empty.getByRole('button', { name: 'Empty queue' }).click()
  await expect(row.getByRole('status')).toHaveText(/removed 4/)
  await row.getByRole('button', { name: 'Delete' }).click()
  await page
    .getByRole('dialog', { name: 'Delete queue ops3' })
    .getByRole('button', { name: 'Delete queue' })
    .click()
  await expect(page.getByRole('row').filter({ hasText: 'ops3' })).toHaveCount(0)
  const r = await fetch(`${api()}/queues`, { headers: { authorization: `Bearer ${TOKENS.admin}` } })
  expect(((await r.json()) as { items: Array<{ queue: string }> }).items.map((q) => q.queue)).not.toContain(
    'ops3',
  )
  check()
})

test("workers: change a worker's concurrency after a confirmation (0 refused)", async ({ page }) => {
  const check = watchErrors(page, [/400/])
  await signIn(page)
  await page.goto(`${base()}/workers`)
  const row = page
    .getByRole('row')
    .filter({ has: page.getByRole('button', { name: 'Concurrency' }) })
    .first()
  await expect(row).toContainText('/ 4')
  await row.getByRole('button', { name: 'Concurrency' }).click()
  const dialog = page.getByRole('dialog', { name: /^Concurrency of / })
  await dialog.getByLabel('new concurrency').fill('0')
  await dialog.getByRole('button', { name: 'Set concurrency' }).click()
  await expect(page.getByRole('alert').first()).toContainText(/concurrency/)
  await row.getByRole('button', { name: 'Concurrency' }).click()
  await dialog.getByLabel('new concurrency').fill('6')
  await page.screenshot({ path: `${SHOTS}/day2-concurrency.png` })
  await dialog.getByRole('button', { name: 'Set concurrency' }).click()
  await expect(row).toContainText('/ 6', { timeout: 10_000 })
  await page.screenshot({ path: `${SHOTS}/day2-workers.png`, fullPage: true })
  // Back to 4 for the other tests.
  await row.getByRole('button', { name: 'Concurrency' }).click()
  await dialog.getByLabel('new concurrency').fill('4')
  await dialog.getByRole('button', { name: 'Set concurrency' }).click()
  await expect(row).toContainText('/ 4', { timeout: 10_000 })
  check()
})

test('jobs: cancel every job matching the filters at a rate, after a confirmation', async ({ page }) => {
  const check = watchErrors(page)
  await signIn(page)
  const ids: string[] = []
  for (let i = 0; i < 3; i++) ids.push(await createJob({ task_type: 'bulkme', delay_ms: 600_000 }))
  await page.goto(`${base()}/jobs?type=bulkme&status=scheduled`)
  await page.getByRole('button', { name: 'Cancel all matching' }).click()
  const dialog = page.getByRole('dialog', { name: 'Cancel all matching jobs' })
  await expect(dialog).toContainText('state scheduled, type bulkme')
  await page.screenshot({ path: `${SHOTS}/day2-bulk.png` })
  await dialog.getByRole('button', { name: 'Cancel matching' }).click()
  await expect(page.getByText(/cancel by filter at 100\/s; follow job \d+/)).toBeVisible()
  for (const id of ids)
    await expect.poll(() => jobState(id, 'default'), { timeout: 15_000 }).toBe('cancelled')
  check()
})
