/**
 * The Search page (ADR 0029) in Chromium, against real stacks:
 *  - the shared stack's Redis through a second API without DATABASE_URL (the shared stack has a
 *    history): a notice says how to enable the history, live search works;
 *  - a stack of this file's own with a history: a private PostgreSQL database on 127.0.0.1:5432
 *    (dropped after) and a `dtq archiver` process; completed jobs leave Redis once archived
 *    (COMPLETED_RETENTION_S=0), so results are archived ones beside a live scheduled job.
 *    Payload filter rows, free text, presets saved / loaded / deleted, "More", and a CSV export.
 */
import { readFileSync } from 'node:fs'
import { expect, type Page, test } from '@playwright/test'
import { createTestDatabase, type TestDatabase } from '../../app/test/postgres.ts'
import { type Stack, startApiWithoutHistory, startStack, TOKENS } from './stack'

const admin = { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.admin}` }

async function post(api: string, path: string, body: unknown) {
  const r = await fetch(`${api}${path}`, { method: 'POST', headers: admin, body: JSON.stringify(body) })
  expect(r.status, await r.clone().text()).toBeLessThan(300)
  return r.json()
}

async function signIn(page: Page) {
  await page.addInitScript((t) => localStorage.setItem('dtq.token', t), TOKENS.admin)
}

test('without a history: the page says how to enable it, and live search works', async ({ page }) => {
  const api = process.env.E2E_API_URL ?? ''
  const tag = `nohist-${Date.now()}`
  await post(api, '/jobs', { task_type: 'echo', payload: { tag, user: { id: 7 } }, delay_ms: 3_600_000 })
  await post(api, '/jobs', { task_type: 'echo', payload: { tag, user: { id: 8 } }, delay_ms: 3_600_000 })
  const noHistory = await startApiWithoutHistory()
  try {
    await noHistory.route(page, '**/api/search**')
    await signIn(page)
    await page.goto(`${process.env.E2E_BASE_URL}/search`)
    await expect(page.getByRole('note').filter({ hasText: 'History is off' })).toContainText('DATABASE_URL')
    await expect(page.getByRole('note').filter({ hasText: 'History is off' })).toContainText('dtq archiver')
    await page.getByRole('button', { name: 'Add payload filter' }).click()
    await page.getByLabel('payload path 1').fill('tag')
    await page.getByLabel('payload value 1').fill(tag)
    await page.getByRole('button', { name: 'Add payload filter' }).click()
    await page.getByLabel('payload path 2').fill('user.id')
    await page.getByLabel('payload value 2').fill('8')
    await page.getByRole('button', { name: 'Search', exact: true }).click()
    const rows = page.locator('tbody tr')
    await expect(rows).toHaveCount(1)
    await expect(rows.first().locator('.source')).toHaveText('live')
    await expect(rows.first()).toContainText('"id":8')
    await page.screenshot({ path: 'test-results/screenshots/search-no-history.png', fullPage: true })
  } finally {
    await noHistory.stop()
  }
})

test.describe('with a history', () => {
  let db: TestDatabase
  let stack: Stack
  test.beforeAll(async () => {
    test.setTimeout(120_000)
    db = await createTestDatabase()
    stack = await startStack({
      env: { DATABASE_URL: db.url, HISTORY_SCHEMA: 'dtq', COMPLETED_RETENTION_S: '0', KEY_PREFIX: 'e2eh' },
      archiver: true,
    })
  })
  test.afterAll(async () => {
    await stack?.stop()
    await db?.drop()
  })

  test('payload rows, free text, presets, More, export; archived and live badges', async ({ page }) => {
    test.setTimeout(120_000)
    const api = stack.apiURL
    // The queue exists and the archiver has switched it on before any job finishes (it scans for
    // new queues every 2 s; with COMPLETED_RETENTION_S=0 a job finishing before that is gone).
    await post(api, '/jobs', { task_type: 'echo', payload: { warmup: true }, delay_ms: 3_600_000 })
    await expect
      .poll(
        async () => {
          const r = await fetch(`${api}/history/status`, { headers: admin })
          const b = (await r.json()) as { queues: Array<{ queue: string; enabled: boolean }> }
          return b.queues.some((q) => q.queue === 'default' && q.enabled)
        },
        { timeout: 30_000 },
      )
      .toBe(true)
    const jobs = Array.from({ length: 60 }, (_, i) => ({
      task_type: 'echo',
      payload: {
        user: { id: i % 2 ? 42 : 7, name: i === 3 ? 'Ann "the, tester" Lee' : `user ${i}` },
        batch: 'spring',
      },
    }))
    await post(api, '/jobs/batch', { jobs })
    await post(api, '/jobs', {
      task_type: 'echo',
      payload: { user: { id: 42 }, later: true },
      delay_ms: 3_600_000,
    })
    // Every completed job archived and gone from Redis.
    await expect
      .poll(
        async () => {
          const r = await fetch(`${api}/search?where=batch%3Dspring&limit=500`, { headers: admin })
          const b = (await r.json()) as { items: Array<{ source: string }> }
          return b.items.filter((i) => i.source === 'archive').length
        },
        { timeout: 60_000 },
      )
      .toBe(60)

    await signIn(page)
    await page.goto(`${stack.baseURL}/search`)
    await expect(page.getByText('History is off')).toHaveCount(0)
    await expect(page.getByText(/no “From” given/)).toBeVisible()
    // user.id = 42: 30 archived + the live scheduled one.
    await page.getByRole('button', { name: 'Add payload filter' }).click()
    await page.getByLabel('payload path 1').fill('user.id')
    await page.getByLabel('payload value 1').fill('42')
    await page.getByRole('button', { name: 'Search', exact: true }).click()
    const rows = page.locator('tbody tr')
    await expect(rows).toHaveCount(31)
    const badge = (text: string) =>
      rows.filter({ has: page.locator('.source', { hasText: new RegExp(`^${text}$`) }) })
    await expect(badge('archived')).toHaveCount(30)
    await expect(badge('live')).toHaveCount(1)
    await page.screenshot({ path: 'test-results/screenshots/search-payload.png', fullPage: true })

    // Save it as a preset; a new search; load the preset back.
    await page.getByLabel('preset name').fill('answer 42')
    await page.getByRole('button', { name: 'Save current filters' }).click()
    await expect(page.getByRole('status').filter({ hasText: 'preset' })).toHaveText('Saved preset answer 42')
    await page.goto(`${stack.baseURL}/search?q=tester`)
    await expect(rows).toHaveCount(1)
    await expect(rows.first()).toContainText('Ann')
    await page.getByLabel('preset', { exact: true }).selectOption('answer 42')
    await page.getByRole('button', { name: 'Load', exact: true }).click()
    await expect(rows).toHaveCount(31)
    await expect(page.getByLabel('payload path 1')).toHaveValue('user.id')

    // 60 in the batch: a first page of 50, then More.
    await page.goto(`${stack.baseURL}/search?where=batch%3Dspring`)
    await expect(rows).toHaveCount(50)
    await page.getByRole('button', { name: /More/ }).click()
    await expect(rows).toHaveCount(60)
    await expect(page.getByRole('button', { name: /More/ })).toHaveCount(0)

    // Export the search as CSV: a download with every row, quotes and commas escaped.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export CSV' }).click(),
    ])
    const csv = readFileSync((await download.path())!, 'utf8')
    const lines = csv.trim().split('\r\n')
    expect(lines[0]).toMatch(/^source,queue,job_id,task_type,state/)
    expect(lines).toHaveLength(61)
    expect(csv).toContain('""Ann \\""the, tester\\"" Lee""')

    // Delete the preset.
    await page.getByLabel('preset', { exact: true }).selectOption('answer 42')
    await page.getByRole('button', { name: 'Delete', exact: true }).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Delete preset' }).click()
    await expect(page.getByRole('status').filter({ hasText: 'preset' })).toHaveText(
      'Deleted preset answer 42',
    )
    await expect(page.getByLabel('preset', { exact: true }).locator('option')).toHaveCount(1)
    await page.screenshot({ path: 'test-results/screenshots/search-more.png', fullPage: true })

    // An archived job (not in Redis any more) opens on its job page, from the history: its
    // timeline from the archive, and Replay makes a new job of it (ADR 0028).
    await page.goto(`${stack.baseURL}/search?q=tester`)
    await expect(rows).toHaveCount(1)
    await expect(badge('archived')).toHaveCount(1)
    await rows.first().getByRole('link').click()
    await expect(page.getByRole('note').filter({ hasText: 'Archived' })).toContainText('past its retention')
    await expect(page.getByText('Logs are not archived.')).toBeVisible()
    await page.getByRole('button', { name: 'Show timeline' }).click()
    await expect(page.locator('td', { hasText: /^archive$/ }).first()).toBeVisible()
    await expect(page.getByRole('button', { name: 'Retry' })).toBeDisabled()
    await page.screenshot({ path: 'test-results/screenshots/search-archived-job.png', fullPage: true })
    const archivedURL = page.url()
    await page.getByRole('button', { name: 'Replay', exact: true }).click()
    // The editor's own Replay button, once the editor is there: `.last()` taken before it had
    // rendered was the page's Replay button again, and the replay never went (a CI flake).
    await expect(page.getByRole('heading', { name: /^Replay job \S+ as a new job$/ })).toBeVisible()
    await page.locator('.replay-editor ~ .actions').getByRole('button', { name: 'Replay' }).click()
    // The page is the new job's. With COMPLETED_RETENTION_S=0 the new echo job may itself have
    // completed and been archived by now, so whether it shows the Archived note is a race: the
    // link to the original is what says this is the replay.
    await expect(page.getByRole('status').filter({ hasText: 'Replay created' })).toBeVisible()
    await expect(page).not.toHaveURL(archivedURL)
    await page.screenshot({ path: 'test-results/screenshots/search-archived-replayed.png', fullPage: true })
  })
})
