/**
 * The Analytics page (ADR 0030) against the stack's API with a history database of its own
 * (global-setup.ts): the known rows of app/test/history-seed.ts, written through the archiver's
 * own write two days back, drawn as charts and tables; filters narrow them; an error class links
 * to the dead letters. Without a history (a second `dtq api` on the same Redis, no DATABASE_URL,
 * answering the page's /analytics requests) the page says how to enable it and the rest works.
 */
import { expect, test } from '@playwright/test'
import { createPool, History, migrate } from '../../app/src/history/db.ts'
import { seedHistory } from '../../app/test/history-seed.ts'
import { startApiWithoutHistory, TOKENS } from './stack'

const base = () => process.env.E2E_BASE_URL ?? ''
const DAY = 86_400_000
/** Two days before today's UTC midnight: the seed's 48 hours end today, inside "last 7 days". */
const t0 = Math.floor(Date.now() / DAY) * DAY - 2 * DAY

test.beforeAll(async () => {
  const url = process.env.E2E_DATABASE_URL!
  await migrate(url, 'dtq')
  const pool = createPool(url, 2)
  try {
    await seedHistory(new History(pool, 'dtq'), t0)
  } finally {
    await pool.end()
  }
})

test('charts and tables from the history; filters; an error class links to its dead letters', async ({
  page,
}) => {
  await page.addInitScript((t) => localStorage.setItem('dtq.token', t), TOKENS.read)
  await page.goto(`${base()}/`)
  await page.getByRole('link', { name: 'Analytics' }).click()
  await expect(page).toHaveURL(/\/analytics$/)
  // Nine jobs ended in the last 7 days (the seed's two edge rows included: the range is wider).
  await expect(page.getByRole('img', { name: 'Jobs ended per bucket, by state: 9 in total' })).toBeVisible()
  await expect(page.getByRole('img', { name: /Failed \/ \(completed \+ failed\)/ })).toBeVisible()
  await expect(page.getByRole('img', { name: 'Wait time percentiles per bucket' })).toBeVisible()
  await expect(page.getByRole('img', { name: 'Run time percentiles per bucket' })).toBeVisible()

  const errors = page.locator('section', { has: page.getByRole('heading', { name: 'Top error classes' }) })
  const timeout = errors.getByRole('row', { name: /ETIMEDOUT/ })
  await expect(timeout).toContainText('timeout 1')
  await expect(timeout.getByRole('cell').nth(1)).toHaveText('2')
  await expect(errors.getByRole('row', { name: /TypeError/ })).toContainText('x is undefined')

  const slow = page.locator('section', { has: page.getByRole('heading', { name: /Slowest task types/ }) })
  await expect(slow.getByRole('row').nth(1)).toContainText('report')
  await expect(slow.getByRole('row').nth(1)).toContainText('9.5 s') // p95 of 0.5 s and 10 s
  const workers = page.locator('section', { has: page.getByRole('heading', { name: 'Workers' }) })
  // w1: 3 completed, 2 failed; w3 ran the two edge jobs.
  await expect(workers.getByRole('row', { name: /^w1 / })).toContainText(/w1\s*3\s*2/)
  // No archiver runs in this stack (the rows were written directly): the page says so.
  await expect(page.getByText(/archiving is off/)).toBeVisible()
  await page.screenshot({ path: 'test-results/screenshots/analytics.png', fullPage: true })
  await page.setViewportSize({ width: 390, height: 844 })
  await expect(page.getByRole('img', { name: /by state: 9 in total/ })).toBeVisible()
  await page.screenshot({ path: 'test-results/screenshots/analytics-narrow.png', fullPage: true })
  const wide = await page.evaluate(() =>
    [...document.querySelectorAll('main *')]
      .filter((e) => e.getBoundingClientRect().right > 391 && !e.closest('.table-wrap'))
      .map((e) => `${e.tagName}.${e.className}`)
      .slice(0, 8),
  )
  expect(wide).toEqual([])
  await page.setViewportSize({ width: 1280, height: 860 })

  // Filters: a task type, then day buckets.
  await page.getByRole('textbox', { name: 'Task type' }).fill('report')
  await page.getByRole('textbox', { name: 'Task type' }).blur()
  await expect(page).toHaveURL(/type=report/)
  await expect(page.getByRole('img', { name: 'Jobs ended per bucket, by state: 3 in total' })).toBeVisible()
  await expect(errors.getByRole('row', { name: /ETIMEDOUT/ })).toHaveCount(0)
  await page.getByRole('combobox', { name: 'Bucket' }).selectOption('day')
  await expect(page).toHaveURL(/bucket=day/)
  await expect(page.getByText(/\d{4}-\d{2}-\d{2} – \d{4}-\d{2}-\d{2}/).first()).toBeVisible()
  await page.screenshot({ path: 'test-results/screenshots/analytics-report-day.png', fullPage: true })

  // The error class's link: the dead letters filtered by its latest message and its type.
  await page.getByRole('textbox', { name: 'Task type' }).fill('')
  await page.getByRole('textbox', { name: 'Task type' }).blur()
  await timeout.getByRole('link', { name: 'In the DLQ' }).click()
  await expect(page).toHaveURL(/\/dlq\?type=email&error=timeout\+1$/)
})

test('without a history the page says how to enable it; the rest of the console works', async ({ page }) => {
  // A second API on the same Redis, without DATABASE_URL, answers the page's analytics requests.
  const api = await startApiWithoutHistory()
  try {
    await api.route(page, '**/api/analytics/**')
    await page.addInitScript((t) => localStorage.setItem('dtq.token', t), TOKENS.read)
    await page.goto(`${base()}/analytics`)
    const note = page.getByRole('note')
    await expect(page.getByRole('heading', { name: 'History is not enabled' })).toBeVisible()
    await expect(note).toContainText('DATABASE_URL')
    await expect(note).toContainText('dtq archiver')
    await expect(page.getByRole('img')).toHaveCount(0)
    await page.screenshot({ path: 'test-results/screenshots/analytics-disabled.png', fullPage: true })
    await page.getByRole('link', { name: 'Dashboard' }).click()
    await expect(page.getByRole('img', { name: /^Throughput, last 1h/ })).toBeVisible()
  } finally {
    await api.stop()
  }
})
