/**
 * The Alerts page end to end (ADR 0025): real Chromium → nginx → API and worker (which
 * evaluate the rules under the alerts lease) → redis-server. A rule added over the API fires
 * on a real dead letter; the page acknowledges it, silences it and ends the silence, adds and
 * disables a rule, shows the history and the test alert's answer; a read-only token sees the
 * controls disabled. Screenshots in test-results/screenshots/alerts-*.png.
 */
import { expect, type Page, test } from '@playwright/test'
import { TOKENS } from './stack'

const base = () => process.env.E2E_BASE_URL ?? ''
const api = () => process.env.E2E_API_URL ?? ''
const SHOTS = 'test-results/screenshots'
/** A card of the page by its heading. */
const card = (page: Page, title: string) =>
  page.locator('section.card').filter({ has: page.getByRole('heading', { name: title, exact: true }) })

async function signIn(page: Page, role: keyof typeof TOKENS = 'admin') {
  await page.addInitScript((t) => localStorage.setItem('dtq.token', t), TOKENS[role])
}

async function call(method: string, path: string, body?: unknown) {
  const r = await fetch(`${api()}${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.admin}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: r.status, json: (await r.json()) as Record<string, unknown> }
}

function watchErrors(page: Page) {
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text())
  })
  return () => expect(errors, 'browser errors').toEqual([])
}

test('alerts: a rule fires on a dead letter; acknowledge, silence, rules, history, test alert', async ({
  page,
}) => {
  const check = watchErrors(page)
  expect(
    (
      await call('PUT', '/alerts/rules/e2e-billing', {
        kind: 'dlq_depth',
        queue: 'billing',
        threshold: 0,
        severity: 'critical',
        description: 'billing dead letters',
      })
    ).status,
  ).toBe(200)
  expect(
    (
      await call('POST', '/jobs', {
        task_type: 'fail',
        queue: 'billing',
        payload: { permanent: true, message: 'card declined' },
        max_retries: 0,
      })
    ).status,
  ).toBe(201)
  await signIn(page)
  await page.goto(`${base()}/alerts`)
  await page.getByRole('link', { name: 'Alerts' }).waitFor()
  const row = card(page, 'Alerts').getByRole('row', { name: /e2e-billing:billing/ })
  await expect(row).toContainText('firing', { timeout: 20_000 })
  await expect(row).toContainText('billing: 1 dead letters (threshold 0)')
  await expect(page.getByRole('row', { name: /e2e-billing dlq_depth/ })).toContainText('stored')
  // The nav counts what fires, on every page.
  await expect(
    page.getByRole('navigation', { name: 'main' }).getByRole('link', { name: /Alerts/ }),
  ).toHaveText(/Alerts\s*\d+/)
  await page.screenshot({ path: `${SHOTS}/alerts-firing.png`, fullPage: true })

  // Acknowledge.
  await row.getByRole('button', { name: 'Acknowledge' }).click()
  await expect(row).toContainText('acked by console')
  // Silence it for an hour (confirmed), then end the silence.
  await row.getByRole('button', { name: 'Silence 1 h' }).click()
  await page.getByRole('dialog').getByRole('button', { name: 'Silence 1 h' }).click()
  await expect(row).toContainText('silenced')
  const silences = card(page, 'Silences')
  await expect(silences.getByRole('row', { name: /e2e-billing/ })).toContainText('console')
  await page.screenshot({ path: `${SHOTS}/alerts-acked-silenced.png`, fullPage: true })
  await silences
    .getByRole('row', { name: /e2e-billing/ })
    .getByRole('button', { name: 'End' })
    .click()
  await expect(silences.getByText('No silence.')).toBeVisible()

  // A silence from the form: a queue for 30 minutes.
  const form = page.getByRole('form', { name: 'New silence' })
  await form.getByLabel('Queue').fill('mail')
  await form.getByLabel('For (minutes)').fill('30')
  await form.getByLabel('Comment').fill('maintenance')
  await form.getByRole('button', { name: 'Silence' }).click()
  await expect(silences.getByRole('row', { name: /maintenance/ })).toContainText('mail')

  // A rule from the form, then disabled from the table.
  const rule = page.getByRole('form', { name: 'Rule' })
  await rule.getByLabel('Id').fill('e2e-slo')
  await rule.getByLabel('Kind').selectOption('oldest_waiting')
  await rule.getByLabel(/Threshold/).fill('60000')
  await rule.getByRole('button', { name: 'Save rule' }).click()
  const sloRow = page.getByRole('row', { name: /e2e-slo oldest_waiting/ })
  await expect(sloRow).toBeVisible()
  // The box shows the stored state: it turns off once the rule is saved and read back.
  await sloRow.getByRole('checkbox', { name: 'enable e2e-slo' }).click()
  await expect(sloRow.getByRole('checkbox', { name: 'enable e2e-slo' })).not.toBeChecked()
  const stored = (await call('GET', '/alerts/rules')).json.rules as Array<{ id: string; enabled: boolean }>
  expect(stored.find((r) => r.id === 'e2e-slo')).toMatchObject({ enabled: false })

  // History and the test alert (no channel configured in this stack).
  const history = card(page, 'History')
  await expect(history).toContainText('acknowledged')
  await expect(history).toContainText('silenced')
  await page.getByRole('button', { name: 'Send test alert' }).click()
  await expect(page.getByRole('list', { name: 'Test alert results' })).toContainText(
    'No channel is configured',
  )
  await page.screenshot({ path: `${SHOTS}/alerts-rules-history.png`, fullPage: true })
  check()
})

test('alerts: a read-only token sees the alerts and cannot act', async ({ page }) => {
  await signIn(page, 'read')
  await page.goto(`${base()}/alerts`)
  const row = card(page, 'Alerts').getByRole('row', { name: /e2e-billing:billing/ })
  await expect(row).toContainText('firing', { timeout: 20_000 })
  await expect(page.getByRole('button', { name: 'Send test alert' })).toBeDisabled()
  await expect(page.getByRole('button', { name: 'Save rule' })).toBeDisabled()
  await expect(page.getByRole('checkbox', { name: 'enable e2e-billing' })).toBeDisabled()
  await page.screenshot({ path: `${SHOTS}/alerts-read-only.png`, fullPage: true })
})
