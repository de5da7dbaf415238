/**
 * Tracing in the console (ADR 0023): a job that carries a trace context shows its trace id (to
 * look up in Jaeger); one without shows no Trace row. The context comes from a schedule's job
 * template here (`trace`), so the stack needs no OpenTelemetry receiver.
 */
import { expect, test } from '@playwright/test'
import { TOKENS } from './stack'

const base = () => process.env.E2E_BASE_URL ?? ''
const api = () => process.env.E2E_API_URL ?? ''
const auth = { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.admin}` }

test('a job carrying a trace context shows its trace id; a job without one shows none', async ({ page }) => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const name = `traced-${Date.now()}`
  const put = await fetch(`${api()}/schedules/${name}`, {
    method: 'PUT',
    headers: auth,
    body: JSON.stringify({
      every_ms: 3_600_000,
      job: { task_type: 'echo', payload: {}, trace: `00-${traceId}-00f067aa0ba902b7-01` },
    }),
  })
  expect(put.status, await put.clone().text()).toBeLessThan(300)
  const fired = await fetch(`${api()}/schedules/${name}/trigger`, {
    method: 'POST',
    headers: { authorization: auth.authorization },
  })
  expect(fired.status).toBe(201)
  const { job_id } = (await fired.json()) as { job_id: string }
  const plain = await fetch(`${api()}/jobs`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ task_type: 'echo', payload: {} }),
  })
  const plainId = ((await plain.json()) as { id: string }).id

  await page.addInitScript((t) => localStorage.setItem('dtq.token', t), TOKENS.admin)
  await page.goto(`${base()}/jobs/${job_id}?queue=default`)
  const row = page.locator('dt', { hasText: /^Trace$/ })
  await expect(row).toBeVisible()
  await expect(row.locator('xpath=following-sibling::dd[1]')).toHaveText(traceId)
  await page.screenshot({ path: 'test-results/screenshots/job-trace.png', fullPage: true })
  await page.goto(`${base()}/jobs/${plainId}?queue=default`)
  await expect(page.locator('dt', { hasText: 'Timeout' })).toBeVisible()
  await expect(page.locator('dt', { hasText: /^Trace$/ })).toHaveCount(0)
  await fetch(`${api()}/schedules/${name}`, {
    method: 'DELETE',
    headers: { authorization: auth.authorization },
  })
})
