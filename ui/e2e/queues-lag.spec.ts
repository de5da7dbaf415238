/**
 * A stream lag the API reports as null (unknown: Redis reported none and it was too costly to
 * count, issue 22) shows as "—" on the queues page and the dashboard, and nothing else breaks.
 * The API's answers are the real ones with one queue's lag made null on the way (the state
 * itself is made for real in app/test/reads.test.ts).
 */
import { expect, type Page, type Route, test } from '@playwright/test'
import { TOKENS } from './stack'

const base = () => process.env.E2E_BASE_URL ?? ''
const api = () => process.env.E2E_API_URL ?? ''
const SHOTS = 'test-results/screenshots'

interface Row {
  queue: string
  streams: Record<string, { lag: number | null }>
}

/**
 * Answers with the API's real reply, the `default` queue's normal-priority lag made null. A
 * request of a page the test has navigated away from (the live refresh of /queues while / loads)
 * is disposed under the handler: it has no one to answer, so that alone is not an error (CI saw
 * "apiResponse.json: Response has been disposed" fail the test once).
 */
async function unknownLag(route: Route) {
  try {
    const res = await route.fetch()
    const body = (await res.json()) as { items?: Row[]; queues?: Row[] }
    for (const row of [...(body.items ?? []), ...(body.queues ?? [])])
      if (row.queue === 'default') row.streams.normal!.lag = null
    await route.fulfill({ response: res, json: body })
  } catch (err) {
    if (!/disposed|has been closed|already handled/i.test((err as Error).message)) throw err
  }
}

async function openWithUnknownLag(page: Page) {
  await page.addInitScript((t) => localStorage.setItem('dtq.token', t), TOKENS.admin)
  await page.route(/\/api\/(queues|stats)(\?.*)?$/, unknownLag)
}

test.beforeAll(async () => {
  const r = await fetch(`${api()}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.admin}` },
    body: JSON.stringify({ task_type: 'echo' }),
  })
  expect(r.status).toBe(201)
})

test('an unknown lag shows as — on the queues page and the dashboard', async ({ page }) => {
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  await openWithUnknownLag(page)
  for (const path of ['/queues', '/']) {
    await page.goto(`${base()}${path}`)
    const row = page.getByRole('row', { name: /^queue default,/ })
    await expect(row).toBeVisible()
    const cells = row.getByRole('cell')
    // Waiting (h / n / l): the normal priority unknown; Lag (their sum): unknown.
    await expect(cells.nth(1)).toHaveText(/^\d[\d,]* \/ — \/ \d[\d,]*$/)
    await expect(cells.nth(4)).toHaveText('—')
    await expect(cells.nth(4).getByTitle(/unknown/)).toBeVisible()
    await page.screenshot({
      path: `${SHOTS}/unknown-lag${path === '/' ? '-dashboard' : '-queues'}.png`,
      fullPage: true,
    })
  }
  expect(errors).toEqual([])
})
