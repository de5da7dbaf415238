/**
 * Replay and debugging in the console (ADR 0028), against the real stack: a dead letter replayed
 * from the DLQ page through the editor (JSON checked as typed, a dry run, then the new job, which
 * links back to its original and the original to it); a job's timeline after retries; two jobs
 * compared from the job list and from "Compare with…"; two attempts of one job compared.
 */
import { expect, type Page, test } from '@playwright/test'
import { TOKENS } from './stack'

const base = () => process.env.E2E_BASE_URL ?? ''
const api = () => process.env.E2E_API_URL ?? ''
const auth = { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.admin}` }

interface Job {
  id: string
  queue: string
  state: string
}

async function addJob(body: object): Promise<Job> {
  const r = await fetch(`${api()}/jobs`, { method: 'POST', headers: auth, body: JSON.stringify(body) })
  expect(r.status, await r.clone().text()).toBe(201)
  return (await r.json()) as Job
}

async function getJob(j: { id: string; queue: string }): Promise<Job & Record<string, unknown>> {
  const r = await fetch(`${api()}/jobs/${j.id}?queue=${j.queue}`, { headers: auth })
  return (await r.json()) as Job & Record<string, unknown>
}

async function until(j: Job, state: string): Promise<void> {
  await expect.poll(async () => (await getJob(j)).state, { timeout: 20_000 }).toBe(state)
}

async function signIn(page: Page) {
  await page.addInitScript((t) => localStorage.setItem('dtq.token', t), TOKENS.admin)
}

test('a dead letter replayed from the DLQ page: edited, dry-run, then a new job linked both ways', async ({
  page,
}) => {
  const marker = `replay-${Date.now()}`
  const dead = await addJob({ task_type: 'fail', payload: { times: 9, marker }, max_retries: 0 })
  await until(dead, 'failed')
  await signIn(page)
  await page.goto(`${base()}/dlq?type=fail`)
  await expect(page.getByRole('link', { name: `replay ${dead.id} in ${dead.queue}` })).toBeVisible()
  await page.screenshot({ path: 'test-results/screenshots/dlq-replay.png', fullPage: true })
  await page.getByRole('link', { name: `replay ${dead.id} in ${dead.queue}` }).click()
  await expect(page).toHaveURL(/replay=1/)
  await expect(page.getByRole('heading', { name: `Replay job ${dead.id} as a new job` })).toBeVisible()

  const editor = page.getByLabel('replay payload')
  await editor.fill('{"times": 0, ')
  await expect(page.getByRole('alert')).toContainText('Not valid JSON')
  await expect(page.getByRole('button', { name: 'Replay', exact: true }).last()).toBeDisabled()
  await editor.fill(JSON.stringify({ times: 0, marker }, null, 2))
  await expect(page.getByText('Valid JSON.')).toBeVisible()
  await page.getByLabel('replay priority').selectOption('high')

  await page.getByRole('button', { name: 'Dry run' }).click()
  const dry = page.getByRole('region', { name: 'dry run result' })
  await expect(dry).toContainText('Dry run: nothing was written')
  await expect(dry).toContainText('Would create a new job')
  await page.screenshot({ path: 'test-results/screenshots/replay-editor-dry-run.png', fullPage: true })
  // The dry run wrote nothing: the original still has no replays.
  expect((await getJob(dead)).replays).toBeUndefined()

  await page.locator('.replay-editor ~ .actions').getByRole('button', { name: 'Replay' }).click()
  await expect(page.getByRole('status').filter({ hasText: 'Replay created' })).toBeVisible()
  const url = new URL(page.url())
  const newId = url.pathname.split('/').pop()!
  expect(newId).not.toBe(dead.id)
  const fresh = { id: newId, queue: url.searchParams.get('queue') ?? 'default', state: '' }
  await until(fresh, 'completed')
  await expect(page.locator('h2').first()).toContainText('completed')
  const replayOf = page.locator('dt', { hasText: /^Replay of$/ }).locator('xpath=following-sibling::dd[1]')
  await expect(replayOf).toHaveText(`${dead.queue}/${dead.id}`)
  await expect(
    page.locator('dt', { hasText: /^Queue$/ }).locator('xpath=following-sibling::dd[1]'),
  ).toContainText('high')
  await page.screenshot({ path: 'test-results/screenshots/replay-new-job.png', fullPage: true })

  await replayOf.getByRole('link').click()
  const replays = page.locator('dt', { hasText: /^Replays$/ }).locator('xpath=following-sibling::dd[1]')
  await expect(replays).toContainText(`1: ${fresh.queue}/${newId}`)
  // The original stays in the DLQ (a replay is not a retry).
  expect((await getJob(dead)).state).toBe('failed')
})

test("a job's timeline after retries, and two of its attempts compared", async ({ page }) => {
  const j = await addJob({ task_type: 'fail', payload: { times: 2 }, max_retries: 3 })
  await until(j, 'completed')
  await signIn(page)
  await page.goto(`${base()}/jobs/${j.id}?queue=${j.queue}`)
  await page.getByRole('button', { name: 'Show timeline' }).click()
  const table = page.getByRole('table', { name: 'timeline' })
  await expect(table.locator('tr.tl-attempt_failed')).toHaveCount(2)
  await expect(table.locator('tr.tl-completed').first()).toBeVisible()
  await expect(table.locator('tr.tl-attempt_failed').first()).toContainText('intentional failure')
  await table.scrollIntoViewIfNeeded()
  await page.screenshot({ path: 'test-results/screenshots/job-timeline.png', fullPage: true })

  await page.getByLabel('first attempt').selectOption('1')
  await page.getByLabel('second attempt').selectOption('3')
  await page.getByRole('button', { name: 'Compare attempts' }).click()
  await expect(page).toHaveURL(/\/compare\?a=.*attempts=1%2C3/)
  const cmp = page.getByRole('table', { name: 'comparison' })
  await expect(cmp.locator('tr[data-diff="changed"]', { hasText: 'outcome' })).toContainText('"failed"')
  await expect(cmp.locator('tr[data-diff="changed"]', { hasText: 'outcome' })).toContainText('"completed"')
  await page.screenshot({ path: 'test-results/screenshots/compare-attempts.png', fullPage: true })
})

test('two jobs compared: selected in the job list, and from "Compare with…"', async ({ page }) => {
  // A queue no worker serves: the jobs stay queued, their payloads and options are compared.
  const queue = `cmp-${Date.now()}`
  const a = await addJob({ task_type: 'echo', queue, payload: { to: 'a@example.com', n: 1 } })
  const b = await addJob({
    task_type: 'echo',
    queue,
    priority: 'high',
    payload: { to: 'b@example.com', n: 1 },
  })
  await signIn(page)
  await page.goto(`${base()}/jobs?queue=${queue}`)
  await page.getByLabel(`select job ${a.id} in ${queue}`).check()
  await page.getByLabel(`select job ${b.id} in ${queue}`).check()
  await page.getByRole('button', { name: 'Compare selected' }).click()
  const cmp = page.getByRole('table', { name: 'comparison' })
  await expect(cmp.locator('tr[data-diff="changed"]', { hasText: 'payload/to' })).toBeVisible()
  await expect(cmp.locator('tr[data-diff="changed"]', { hasText: 'options/priority' })).toBeVisible()
  await expect(cmp.locator('tr[data-diff="same"]', { hasText: 'payload/n' })).toBeVisible()
  await page.screenshot({ path: 'test-results/screenshots/compare-jobs.png', fullPage: true })
  await page.getByLabel('only differences').check()
  await expect(cmp.locator('tr[data-diff="same"]')).toHaveCount(0)

  await page.goto(`${base()}/jobs/${a.id}?queue=${queue}`)
  await page.getByLabel('job to compare with').fill(`${queue}/${b.id}`)
  await page.getByRole('button', { name: 'Compare jobs' }).click()
  await expect(page.getByRole('table', { name: 'comparison' }).locator('tr.diff')).not.toHaveCount(0)
  // A job that does not exist: the error is shown.
  await page.goto(`${base()}/compare?a=${queue}/${a.id}&b=${queue}/nope`)
  await expect(page.getByText(/not found/)).toBeVisible()
})

test('the New job form dry-runs: a new job, or the job an idempotency key already names; nothing written', async ({
  page,
}) => {
  const key = `dry-${Date.now()}`
  const first = await addJob({ task_type: 'echo', queue: 'billing', payload: {}, idempotency_key: key })
  /** Jobs ever created in default and billing (the stats' `created` counters). */
  const created = async () => {
    const r = await fetch(`${api()}/stats`, { headers: auth })
    const { queues } = (await r.json()) as {
      queues: Array<{ queue: string; totals: Record<string, number> }>
    }
    return queues
      .filter((q) => ['default', 'billing'].includes(q.queue))
      .reduce((n, q) => n + (q.totals.created ?? 0), 0)
  }
  await signIn(page)
  await page.goto(`${base()}/jobs/new`)
  await page.getByLabel('Task type').fill('echo')
  await page.getByLabel('Payload (JSON)').fill('{"x": 1}')
  const before = await created()
  await page.getByRole('button', { name: 'Dry run' }).click()
  const dry = page.getByRole('region', { name: 'dry run result' })
  await expect(dry).toContainText('Would create a new job in queue default')
  await page.getByLabel('Queue').fill('billing')
  await page.getByLabel('Idempotency key').fill(key)
  await page.getByRole('button', { name: 'Dry run' }).click()
  await expect(dry).toContainText('Would create nothing: its id or idempotency key names job')
  await expect(dry.getByRole('link', { name: first.id })).toBeVisible()
  await page.screenshot({ path: 'test-results/screenshots/new-job-dry-run.png', fullPage: true })
  expect(await created()).toBe(before)
  await expect(page).toHaveURL(/\/jobs\/new$/)
})

test('a read-only token sees replays and timelines but cannot replay', async ({ page }) => {
  const j = await addJob({ task_type: 'echo', payload: { r: 1 } })
  await until(j, 'completed')
  await page.addInitScript((t) => localStorage.setItem('dtq.token', t), TOKENS.read)
  await page.goto(`${base()}/jobs/${j.id}?queue=${j.queue}&replay=1`)
  await expect(page.getByRole('button', { name: 'Replay', exact: true }).first()).toBeDisabled()
  // The editor opened by the link refuses to replay or dry-run for this role.
  const actions = page.locator('.replay-editor ~ .actions')
  await expect(actions.getByRole('button', { name: 'Replay' })).toBeDisabled()
  await expect(actions.getByRole('button', { name: 'Dry run' })).toBeDisabled()
  await page.getByRole('button', { name: 'Show timeline' }).click()
  await expect(page.getByRole('table', { name: 'timeline' }).locator('tr.tl-completed').first()).toBeVisible()
})
