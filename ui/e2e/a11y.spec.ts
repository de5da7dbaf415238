/**
 * Accessibility and small screens (issue 22), on the real stack behind nginx: axe-core on every
 * console page in light and dark, 1280 px and 390 px wide, fails on a serious or critical
 * finding; at 390 px no page is wider than the screen (tables turn into stacked cards); the
 * keyboard flows: the skip link first, rows one tab stop with arrows / Enter / shortcuts, the
 * Keyboard help (`?`); the worker page. The pages with tables of their own (a job's timeline, a
 * comparison, a queue's breakers) are checked open, each table no wider than the screen either,
 * and at tablet widths none of them scrolls sideways.
 * Screenshots in test-results/screenshots/a11y-* (390 px; the wide ones of those three pages too).
 */
import AxeBuilder from '@axe-core/playwright'
import { expect, type Page, test } from '@playwright/test'
import { TOKENS } from './stack'

const base = () => process.env.E2E_BASE_URL ?? ''
const api = () => process.env.E2E_API_URL ?? ''
const SHOTS = 'test-results/screenshots'
const auth = { authorization: `Bearer ${TOKENS.admin}` }
/** A queue no worker serves, with a breaker (its limits page draws the breakers table). */
const LIMITED = 'a11y-limited'

async function post(path: string, body: unknown, method = 'POST'): Promise<Record<string, unknown>> {
  const r = await fetch(`${api()}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify(body),
  })
  expect(r.status, `${method} ${path}`).toBeLessThan(300)
  return (await r.json()) as Record<string, unknown>
}

/** The worker running the job (its page lists it), once its heartbeat says so. */
async function workerRunning(job: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const { items } = (await (await fetch(`${api()}/workers`, { headers: auth })).json()) as {
      items: Array<{ id: string }>
    }
    for (const w of items) {
      const d = (await (await fetch(`${api()}/workers/${w.id}`, { headers: auth })).json()) as {
        running?: Array<{ id: string }>
      }
      if (d.running?.some((r) => r.id === job)) return w.id
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`no worker says it runs ${job}`)
}

/** What is wider than the screen: the page, or a table (a scroll box would hide it from the page's width). */
async function tooWide(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = []
    const w = document.scrollingElement?.scrollWidth ?? 0
    if (w > window.innerWidth) out.push(`page ${w} px`)
    for (const t of document.querySelectorAll('table'))
      if (t.scrollWidth > window.innerWidth || t.getBoundingClientRect().right > window.innerWidth)
        out.push(`table "${t.caption?.textContent ?? t.getAttribute('aria-label')}" ${t.scrollWidth} px`)
    return out
  })
}

async function signIn(page: Page, theme: 'light' | 'dark') {
  await page.addInitScript(
    ([t, th]) => {
      localStorage.setItem('dtq.token', t)
      localStorage.setItem('dtq.theme', th)
    },
    [TOKENS.admin, theme] as const,
  )
}

interface Seeded {
  job: string
  /** Failed once then completed: its timeline has attempts and a failure. */
  retried: string
  worker: string
  flow: string
  sleeping: string
}

let seeded: Seeded

test.beforeAll(async () => {
  // A finished job, a dead letter (two rows at least in the DLQ), a running job (the worker page
  // shows it), a flow.
  const job = (await post('/jobs', { task_type: 'echo', payload: { a11y: true } })).id as string
  const retried = (await post('/jobs', { task_type: 'fail', payload: { times: 1 }, max_retries: 2 }))
    .id as string
  await post(
    `/queues/${LIMITED}/limits`,
    { types: { mail: { breaker: { failures: 3, cooldown_ms: 600_000 } } } },
    'PUT',
  )
  await post(`/queues/${LIMITED}/breakers/mail`, { action: 'open' })
  for (let i = 0; i < 2; i++)
    await post('/jobs', {
      task_type: 'fail',
      payload: { permanent: true, message: `a11y ${i}` },
      max_retries: 0,
    })
  const sleeping = (await post('/jobs', { task_type: 'sleep', payload: { ms: 1_800_000 } })).id as string
  const flow = (
    await post('/flows', {
      nodes: [
        { key: 'a', task_type: 'echo', payload: {} },
        { key: 'b', task_type: 'echo', payload: {}, depends_on: ['a'] },
      ],
    })
  ).id as string
  await expect
    .poll(async () => {
      const r = await fetch(`${api()}/jobs/${retried}?queue=default`, { headers: auth })
      return ((await r.json()) as { state: string }).state
    })
    .toBe('completed')
  seeded = { job, retried, worker: await workerRunning(sleeping), flow, sleeping }
})

test.afterAll(async () => {
  await post(`/jobs/${seeded.sleeping}/cancel?queue=default`, {})
})

test('worker page: running jobs with how long, rates, failures, confirmed commands', async ({ page }) => {
  await signIn(page, 'light')
  await page.goto(`${base()}/workers`)
  await page.getByRole('link', { name: seeded.worker }).click()
  await expect(page).toHaveURL(new RegExp(`/workers/${seeded.worker}$`))
  const running = page.getByRole('table', { name: `Jobs worker ${seeded.worker} runs now` })
  const sleepRow = running.locator('tbody > tr').filter({ hasText: 'sleep' }).first()
  await expect(sleepRow).toBeVisible()
  await expect(sleepRow).toContainText(/\d+(\.\d)? s|min/)
  await expect(page.getByText('Completed / min (5 min)')).toBeVisible()
  const failures = page.getByRole('table', { name: /Latest failed attempts/ })
  await expect(failures.getByText(/a11y \d/).first()).toBeVisible()
  // Pause asks first; cancelled, the worker still runs.
  await page.getByRole('button', { name: 'Pause', exact: true }).click()
  const dialog = page.getByRole('dialog', { name: `Pause worker ${seeded.worker}` })
  await expect(dialog).toBeVisible()
  await dialog.getByRole('button', { name: 'Cancel' }).click()
  await expect(page.locator('.card-head h2 .badge')).toHaveText('running')
  // Enter on a running job's row opens the job.
  await page.setViewportSize({ width: 390, height: 844 })
  await page.screenshot({ path: `${SHOTS}/a11y-390-worker-detail.png`, fullPage: true })
  await sleepRow.focus()
  await page.keyboard.press('Enter')
  await expect(page).toHaveURL(/\/jobs\/[^/]+\?queue=default$/)
  // An unknown worker: said so, not an error.
  await page.goto(`${base()}/workers/nobody-here`)
  await expect(page.getByRole('heading', { name: 'Worker not found' })).toBeVisible()
})

/** Every page of the router (ui/src/app/App.tsx) and what shows it has drawn. */
function pages(s: Seeded): Array<{ name: string; path: string; ready: (p: Page) => Promise<void> }> {
  const heading = (name: string | RegExp) => async (p: Page) => {
    await expect(p.getByRole('heading', { name }).first()).toBeVisible()
  }
  return [
    { name: 'dashboard', path: '/', ready: heading(/Queues|Throughput|Totals/i) },
    { name: 'queues', path: '/queues', ready: heading('Queues') },
    { name: 'queue', path: '/queues/default', ready: heading('Queue default') },
    {
      name: 'jobs',
      path: '/jobs',
      ready: async (p) => void (await expect(p.getByRole('row').nth(1)).toBeVisible()),
    },
    {
      name: 'job',
      path: `/jobs/${s.retried}?queue=default`,
      ready: async (p) => {
        await p.getByRole('button', { name: 'Show timeline' }).click()
        await expect(
          p
            .getByRole('table', { name: /^Timeline of job/ })
            .locator('tr.tl-completed')
            .first(),
        ).toBeVisible()
      },
    },
    {
      name: 'compare',
      path: `/compare?a=default/${s.job}&b=default/${s.retried}`,
      ready: async (p) =>
        void (await expect(
          p
            .getByRole('table', { name: /^Comparison/ })
            .locator('tr.diff')
            .first(),
        ).toBeVisible()),
    },
    { name: 'new-job', path: '/jobs/new', ready: heading(/New job/i) },
    {
      name: 'dlq',
      path: '/dlq',
      ready: async (p) => void (await expect(p.getByText('a11y 0').first()).toBeAttached()),
    },
    {
      name: 'workers',
      path: '/workers',
      ready: async (p) => void (await expect(p.getByRole('row').nth(1)).toBeVisible()),
    },
    { name: 'worker', path: `/workers/${s.worker}`, ready: heading(/Running now/) },
    { name: 'schedules', path: '/schedules', ready: heading(/Schedules/) },
    { name: 'flow', path: `/flows/${s.flow}`, ready: heading(/Flow/) },
    {
      name: 'limits',
      path: `/queues/${LIMITED}/limits`,
      ready: async (p) => void (await expect(p.locator('[data-breaker="mail"]')).toContainText('open')),
    },
    { name: 'alerts', path: '/alerts', ready: heading(/Alerts/) },
    { name: 'audit', path: '/audit', ready: heading(/Audit/) },
    { name: 'search', path: '/search', ready: heading(/Search/) },
    { name: 'analytics', path: '/analytics', ready: heading(/Analytics|Throughput|Errors/) },
  ]
}

const WIDTHS = [
  { label: 'wide', width: 1280, height: 860 },
  { label: '390', width: 390, height: 844 },
]

// Every theme meets every width once: light wide and dark at 390 px by default (the colours are
// the theme's, the layout the width's); A11Y_FULL=1 runs all four pairs.
const PAIRS = (['light', 'dark'] as const)
  .flatMap((theme) => WIDTHS.map((size) => ({ theme, size })))
  .filter(({ theme, size }) => process.env.A11Y_FULL === '1' || (theme === 'light') === (size.width !== 390))
for (const { theme, size } of PAIRS) {
  test(`axe: every page, ${theme}, ${size.label}: no serious or critical finding${size.width === 390 ? ', none wider than the screen' : ''}`, async ({
    page,
  }) => {
    test.setTimeout(180_000)
    await page.setViewportSize({ width: size.width, height: size.height })
    await signIn(page, theme)
    const findings: string[] = []
    const overflow: string[] = []
    for (const p of pages(seeded)) {
      const t0 = Date.now()
      await page.goto(`${base()}${p.path}`)
      await p.ready(page)
      await expect(page.getByText(/^Loading/)).toHaveCount(0)
      const t1 = Date.now()
      const r = await new AxeBuilder({ page })
        .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'])
        .analyze()
      for (const v of r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical'))
        findings.push(
          `${p.name}: ${v.id} (${v.impact}) ${v.help} -- ${v.nodes
            .slice(0, 3)
            .map((n) => n.target.join(' '))
            .join(' | ')}`,
        )
      console.log(`a11y ${theme} ${size.label} ${p.name}: drawn in ${t1 - t0} ms, axe ${Date.now() - t1} ms`)
      if (size.width === 390) {
        for (const what of await tooWide(page)) overflow.push(`${p.name}: ${what}`)
        if (['dlq', 'workers', 'jobs', 'worker', 'queues', 'dashboard'].includes(p.name))
          await page.screenshot({ path: `${SHOTS}/a11y-390-${theme}-${p.name}.png`, fullPage: true })
      }
      if (['job', 'compare', 'limits'].includes(p.name))
        await page.screenshot({ path: `${SHOTS}/a11y-${size.label}-${theme}-${p.name}.png`, fullPage: true })
    }
    expect.soft(findings, 'axe findings (serious, critical)').toEqual([])
    expect(overflow, 'pages wider than 390 px').toEqual([])
  })
}

test('tablet widths (641, 800 px): the timeline, the comparison and the breakers fit their card, no sideways scroll', async ({
  page,
}) => {
  await signIn(page, 'light')
  const scrolling: string[] = []
  for (const width of [641, 800])
    for (const p of pages(seeded).filter((x) => ['job', 'compare', 'limits'].includes(x.name))) {
      await page.setViewportSize({ width, height: 860 })
      await page.goto(`${base()}${p.path}`)
      await p.ready(page)
      const boxes = await page.evaluate(
        () =>
          [...document.querySelectorAll('.table-wrap')].filter((d) => d.scrollWidth > d.clientWidth).length,
      )
      if (boxes) scrolling.push(`${p.name} at ${width} px: ${boxes} table(s) scroll sideways`)
    }
  expect(scrolling).toEqual([])
})

test('keyboard: the skip link is the first tab stop and moves focus to the content', async ({ page }) => {
  await signIn(page, 'light')
  await page.goto(`${base()}/jobs`)
  await expect(page.getByRole('row').nth(1)).toBeVisible()
  await page.keyboard.press('Tab')
  const skip = page.getByRole('link', { name: 'Skip to content' })
  await expect(skip).toBeFocused()
  await expect(skip).toBeVisible()
  await page.keyboard.press('Enter')
  await expect(page.locator('main#content')).toBeFocused()
  // The next tab stop is inside the content, not the navigation.
  await page.keyboard.press('Tab')
  expect(await page.evaluate(() => !!document.activeElement?.closest('main'))).toBe(true)
})

test('keyboard: table rows are one tab stop; arrows move, x selects, Enter opens; r asks first', async ({
  page,
}) => {
  await signIn(page, 'light')
  await page.goto(`${base()}/dlq`)
  const table = page.getByRole('table', { name: 'Dead letters, newest first' })
  const rows = table.locator('tbody > tr')
  await expect(rows.nth(1)).toBeVisible()
  // One row focusable by Tab, the others by the arrows only; the controls of other rows are out of the tab order.
  await expect(table.locator('tbody > tr[tabindex="0"]')).toHaveCount(1)
  await expect(rows.nth(1).getByRole('button', { name: /^retry / })).toHaveAttribute('tabindex', '-1')
  await rows.first().focus()
  await page.keyboard.press('ArrowDown')
  await expect(rows.nth(1)).toBeFocused()
  await expect(rows.nth(1)).toHaveAttribute('tabindex', '0')
  await expect(rows.first()).toHaveAttribute('tabindex', '-1')
  await page.keyboard.press('ArrowUp')
  await expect(rows.first()).toBeFocused()
  await page.keyboard.press('x')
  await expect(rows.first().getByRole('checkbox')).toBeChecked()
  await page.keyboard.press('r')
  const dialog = page.getByRole('dialog', { name: 'Retry dead letter' })
  await expect(dialog).toBeVisible()
  await page.keyboard.press('Escape')
  await expect(dialog).toBeHidden()
  await expect(rows.first()).toBeFocused()
  // Tab from a row goes into its controls; Escape goes back to the row.
  await page.keyboard.press('Tab')
  expect(await page.evaluate(() => document.activeElement?.closest('tr')?.getAttribute('tabindex'))).toBe('0')
  await page.keyboard.press('Escape')
  await expect(rows.first()).toBeFocused()
  const link = await rows.first().getByRole('link').first().getAttribute('href')
  await page.keyboard.press('Enter')
  await expect(page).toHaveURL(new RegExp(`${(link ?? '').replace(/[?]/g, '\\?')}$`))
})

test('keyboard: sortable headers are buttons and say their order (aria-sort)', async ({ page }) => {
  await signIn(page, 'light')
  await page.goto(`${base()}/workers`)
  const table = page.getByRole('table', { name: 'Live workers' })
  await expect(table.locator('tbody > tr').first()).toBeVisible()
  const header = table.getByRole('columnheader', { name: /Processed/ })
  await expect(header).not.toHaveAttribute('aria-sort')
  await expect(table.getByRole('columnheader', { name: /Worker/ })).toHaveAttribute('aria-sort', 'ascending')
  await header.getByRole('button').click()
  await expect(header).toHaveAttribute('aria-sort', 'ascending')
  await header.getByRole('button').click()
  await expect(header).toHaveAttribute('aria-sort', 'descending')
  await expect(table.getByRole('columnheader', { name: /Worker/ })).not.toHaveAttribute('aria-sort')
})

test('keyboard: ? opens the Keyboard help, listing the page’s row shortcuts', async ({ page }) => {
  await signIn(page, 'light')
  await page.goto(`${base()}/jobs`)
  await expect(page.getByRole('row').nth(1)).toBeVisible()
  await page.keyboard.press('?')
  const help = page.getByRole('dialog', { name: 'Keyboard' })
  await expect(help).toBeVisible()
  await expect(help).toContainText('Skip to content')
  await expect(help).toContainText('next row')
  await expect(help).toContainText('retry the job (confirmed)')
  await expect(help).toContainText('cancel the job (confirmed)')
  await page.screenshot({ path: `${SHOTS}/a11y-keyboard-help.png` })
  await page.keyboard.press('Escape')
  await expect(help).toBeHidden()
  // Typed into a field, ? is a character, not the help.
  await page.getByRole('searchbox').fill('?')
  await expect(help).toBeHidden()
  // The header's button opens it too.
  await page.getByRole('button', { name: 'Keyboard' }).click()
  await expect(help).toBeVisible()
})

test('390 px: the DLQ filters are behind a Filters toggle; rows are cards', async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 })
  await signIn(page, 'light')
  await page.goto(`${base()}/dlq`)
  const toggle = page.getByRole('button', { name: /^Filters/ })
  await expect(toggle).toHaveAttribute('aria-expanded', 'false')
  await expect(page.getByLabel('Error contains')).toBeHidden()
  await toggle.click()
  await expect(page.getByLabel('Error contains')).toBeVisible()
  const row = page.getByRole('table', { name: 'Dead letters, newest first' }).locator('tbody > tr').first()
  const box = await row.boundingBox()
  expect(box && box.x + box.width).toBeLessThanOrEqual(390)
  await page.setViewportSize({ width: 1280, height: 860 })
  await expect(toggle).toBeHidden()
  await expect(page.getByLabel('Error contains')).toBeVisible()
})
