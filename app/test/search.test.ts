/**
 * Search and export (ADR 0029) over real Redis and real PostgreSQL (a database of this run's own
 * on 127.0.0.1:5432, dropped after): every filter on both sides, the live + archive merge and its
 * dedupe (the live copy wins), cursor pages that neither repeat nor skip, presets, CSV / NDJSON
 * exports (RFC 4180 parsed back; 100k rows streamed in bounded memory), bad input (400, nothing
 * written), history disabled and unavailable.
 */
import { randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { createPool, History, migrate, type Pool } from '../src/history/db.ts'
import type { JobRow } from '../src/history/rows.ts'
import type { Job } from '../src/queue/job.ts'
import { MAX_PRESETS, SearchStore } from '../src/redis/search-store.ts'
import { ArchiveSearch } from '../src/search/archive-query.ts'
import { historyError, SearchEngine } from '../src/search/engine.ts'
import { CSV_COLUMNS, csvField } from '../src/search/export.ts'
import { parseFilters, parseWhere, textTerms } from '../src/search/filters.ts'
import type { SearchReplyBody } from '../src/search/schemas.ts'
import { type ApiBundle, apiSetup, bearer, TOKEN_SETTING } from './api-helpers.ts'
import { targetEnv, testTarget } from './helpers.ts'
import { createTestDatabase, freePort, type TestDatabase } from './postgres.ts'
import { runCli } from './processes.ts'

let db: TestDatabase
beforeAll(async () => {
  db = await createTestDatabase()
})
afterAll(async () => {
  await db?.drop()
})

let b: ApiBundle | undefined
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
  await b?.cleanup()
  b = undefined
})

const DAY = 86_400_000

function withoutPayload(job: Job): Omit<Job, 'payload' | 'result'> {
  const { payload: _p, result: _r, ...rest } = job
  return rest
}

interface Kit {
  b: ApiBundle
  pool: Pool
  schema: string
  history: History
  /** Writes archived rows (jobs that are not in Redis) as the archiver would. */
  archive(rows: Array<Partial<Job> & { id: string; finished_at: number }>): Promise<void>
  search(query: string, role?: 'read' | 'write' | 'admin'): Promise<{ status: number; body: Reply }>
}

async function kit(config: Record<string, unknown> = {}): Promise<Kit> {
  const schema = `s_${randomBytes(4).toString('hex')}`
  await migrate(db.url, schema)
  const pool = createPool(db.url)
  cleanups.push(() => pool.end())
  const history = new History(pool, schema)
  b = await apiSetup({
    databaseUrl: db.url,
    historySchema: schema,
    apiTokens: TOKEN_SETTING,
    ...config,
  } as never)
  const bundle = b
  // A whole job record to shape archived rows from (its queue removed at once).
  const template = (await bundle.queue.add('echo', {}, { queue: 'template' })).job
  await bundle.queue.deleteQueue('template', { force: true })
  return {
    b: bundle,
    pool,
    schema,
    history,
    async archive(rows) {
      const jobRows: JobRow[] = rows.map((r) => {
        const job = {
          ...template,
          state: 'completed',
          queue: 'arch',
          task_type: 'echo',
          worker: null,
          error: null,
          error_class: null,
          payload: null,
          result: null,
          created_at: r.finished_at - 1000,
          ...r,
        } as Job
        return {
          queue: job.queue,
          job_id: job.id,
          task_type: job.task_type,
          state: job.state,
          priority: job.priority,
          payload: job.payload,
          result: job.result,
          error_class: job.error_class,
          error: job.error,
          attempts: job.attempts,
          max_retries: job.max_retries,
          worker: job.worker,
          partition_key: null,
          created_at: job.created_at,
          queued_at: null,
          started_at: null,
          finished_at: job.finished_at!,
          flow_id: null,
          schedule: null,
          trace: null,
          idempotency_key: null,
          // As the archiver writes it: payload and result in their own columns only.
          job: withoutPayload(job) as JobRow['job'],
        }
      })
      await history.write(jobRows, [])
    },
    async search(query, role = 'read') {
      const res = await bundle.app.inject({ method: 'GET', url: `/search?${query}`, headers: bearer(role) })
      return { status: res.statusCode, body: res.json() }
    },
  }
}

/** A search's answer, or an error's. */
type Reply = SearchReplyBody & { message: string; code: string }

const ids = (body: { items: Array<{ job: { id: string } }> }) => body.items.map((i) => i.job.id)
const qs = (o: Record<string, string | number | string[]>) => {
  const u = new URLSearchParams()
  for (const [k, v] of Object.entries(o)) for (const x of Array.isArray(v) ? v : [v]) u.append(k, String(x))
  return u.toString()
}

describe('filters (pure)', () => {
  it('parses paths and values, and names what is wrong', () => {
    expect(parseWhere('user.id=42')).toEqual({ path: ['user', 'id'], op: 'eq', value: 42 })
    expect(parseWhere('payload.items[0].sku="a=b"')).toEqual({
      path: ['items', 0, 'sku'],
      op: 'eq',
      value: 'a=b',
    })
    expect(parseWhere('name=ann')).toEqual({ path: ['name'], op: 'eq', value: 'ann' })
    expect(parseWhere('note~Hello World')).toEqual({ path: ['note'], op: 'contains', value: 'Hello World' })
    for (const [bad, msg] of [
      ['user..id=1', /a path is dotted names/],
      ['1abc=1', /a path is dotted names/],
      ['a.b.c.d.e.f.g.h.i=1', /at most 8 steps/],
      ['a[1', /after the path comes =/],
      ['a={"x":1}', /scalar/],
      ['a~', /needs some text/],
      [`${'a'.repeat(65)}=1`, /after the path comes/],
    ] as const)
      expect(() => parseWhere(bad)).toThrow(msg)
    expect(textTerms('"disk full" -retry or timeout')).toEqual({
      must: ['disk', 'full', 'timeout'],
      not: ['retry'],
    })
    expect(historyError({ code: '57014' })).toMatch(/SEARCH_TIMEOUT_MS: narrow the time range/)
    expect(historyError({ code: '42P01' })).toMatch(/run `dtq archiver`/)
    expect(historyError(new Error('connect ECONNREFUSED'))).toMatch(/unreachable: connect ECONNREFUSED/)
  })

  it('escapes CSV fields as RFC 4180 says', () => {
    expect(csvField('plain')).toBe('plain')
    expect(csvField('a,b')).toBe('"a,b"')
    expect(csvField('say "hi"')).toBe('"say ""hi"""')
    expect(csvField('two\nlines')).toBe('"two\nlines"')
    expect(csvField(null)).toBe('')
    expect(csvField(3)).toBe('3')
  })
})

describe('GET /search', () => {
  it('without DATABASE_URL: live jobs only, history disabled, every live filter', async () => {
    b = await apiSetup({ apiTokens: TOKEN_SETTING } as never)
    const q = b.queue
    await q.add('mail', { user: { id: 42, name: 'Ann Lee' }, tags: ['vip', 'eu'] }, { queue: 'qa' })
    await q.add('mail', { user: { id: 7, name: 'Bob' }, tags: ['eu'] }, { queue: 'qa' })
    await q.add('report', { user: { id: 42 }, items: [{ sku: 'x-1' }, { sku: 'y-2' }] }, { queue: 'qb' })
    const get = async (o: Record<string, string | number | string[]>) => {
      const res = await b!.app.inject({ method: 'GET', url: `/search?${qs(o)}`, headers: bearer('read') })
      expect(res.statusCode, res.body).toBe(200)
      return res.json()
    }
    const all = await get({})
    expect(all.history).toBe('disabled')
    expect(all.items).toHaveLength(3)
    expect(all.items.every((i: { source: string }) => i.source === 'live')).toBe(true)
    expect(all.live).toEqual({ scanned: 3, capped: false })
    const pay = (o: Record<string, string | number | string[]>) =>
      get(o).then((r) =>
        r.items
          .map((i: { job: Job }) => i.job.payload)
          .map((p: unknown) => (p as { user: { id: number } }).user.id),
      )
    expect(await pay({ where: 'user.id=42' })).toEqual([42, 42])
    expect(await pay({ where: ['user.id=42', 'tags=vip'] })).toEqual([42])
    expect(await pay({ where: 'items[1].sku=y-2' })).toEqual([42])
    expect(await pay({ where: 'items[0].sku=y-2' })).toEqual([])
    expect(await pay({ where: 'user.name~lee' })).toEqual([42])
    expect(await pay({ where: 'user.id="42"' })).toEqual([]) // a string is not the number
    expect(await pay({ q: 'bob' })).toEqual([7])
    expect(await pay({ q: 'eu -vip' })).toEqual([7])
    expect(await pay({ queue: 'qb' })).toEqual([42])
    expect(await pay({ task_type: 'mail', state: 'queued' })).toHaveLength(2)
    expect(await pay({ state: 'completed' })).toEqual([])
    expect(await pay({ from: Date.now() + DAY })).toEqual([])
  })

  it('the live part is capped at SEARCH_LIVE_SCAN and says so', async () => {
    b = await apiSetup({ apiTokens: TOKEN_SETTING, searchLiveScan: 100 } as never)
    await b.queue.addBulk(Array.from({ length: 150 }, (_, i) => ({ task_type: 'echo', payload: { i } })))
    const res = await b.app.inject({ method: 'GET', url: '/search?limit=500', headers: bearer('read') })
    const body = res.json()
    expect(body.live).toEqual({ scanned: 100, capped: true })
    expect(body.items).toHaveLength(100)
  })

  it('archive: every filter in SQL, merged with live jobs, deduplicated (the live copy wins)', async () => {
    const k = await kit()
    const now = Date.now()
    await k.archive([
      {
        id: 'a1',
        finished_at: now - 5000,
        task_type: 'mail',
        worker: 'w-1',
        payload: { user: { id: 42 }, tags: ['vip'] },
      },
      {
        id: 'a2',
        finished_at: now - 4000,
        state: 'failed',
        error: 'SMTP timeout talking to mx',
        error_class: 'ETIMEDOUT',
        payload: { user: { id: 7, name: 'Ann Lee' } },
      },
      {
        id: 'a3',
        finished_at: now - 3000,
        queue: 'other',
        task_type: 'report',
        worker: 'w-2',
        payload: { items: [{ sku: 'x-1' }, { sku: 'y-2' }] },
      },
      { id: 'old', finished_at: now - 10 * DAY, payload: { user: { id: 42 } } },
    ])
    // A job both live and archived: its archived row (stale payload) must not show.
    const live = (await k.b.queue.add('mail', { user: { id: 42 }, fresh: true }, { queue: 'arch' })).job
    await k.archive([{ id: live.id, finished_at: now - 2000, payload: { user: { id: 42 }, fresh: false } }])

    const r = await k.search('')
    expect(r.status).toBe(200)
    expect(r.body.history).toBe('enabled')
    expect(r.body.range.defaulted).toBe(true)
    expect(r.body.range.to - r.body.range.from).toBe(7 * DAY + 0)
    const rows = r.body.items.map((i: { source: string; job: Job }) => `${i.source}:${i.job.id}`)
    expect(rows).toEqual([`live:${live.id}`, 'archive:a3', 'archive:a2', 'archive:a1'])
    expect(r.body.items[0]?.job.payload).toMatchObject({ fresh: true })

    const find = async (o: Record<string, string | number | string[]>) => {
      const res = await k.search(qs(o))
      expect(res.status, JSON.stringify(res.body)).toBe(200)
      return ids(res.body)
    }
    expect(await find({ where: 'user.id=42' })).toEqual([live.id, 'a1'])
    expect(await find({ where: 'user.id=42', from: now - 30 * DAY })).toEqual([live.id, 'a1', 'old'])
    expect(await find({ where: 'tags=vip' })).toEqual(['a1'])
    expect(await find({ where: 'items[1].sku=y-2' })).toEqual(['a3'])
    expect(await find({ where: 'items[0].sku=y-2' })).toEqual([])
    expect(await find({ where: 'user.name~LEE' })).toEqual(['a2'])
    expect(await find({ where: 'user.name~%' })).toEqual([]) // LIKE wildcards are literal
    expect(await find({ q: 'smtp timeout' })).toEqual(['a2'])
    expect(await find({ q: 'ETIMEDOUT' })).toEqual(['a2'])
    expect(await find({ q: 'smtp -mx' })).toEqual([])
    expect(await find({ queue: 'other' })).toEqual(['a3'])
    expect(await find({ task_type: 'report' })).toEqual(['a3'])
    expect(await find({ state: 'failed' })).toEqual(['a2'])
    expect(await find({ state: 'queued' })).toEqual([live.id])
    expect(await find({ worker: 'w-1' })).toEqual(['a1'])
    expect(await find({ from: now - 4500, to: now - 3500 })).toEqual(['a2'])
  })

  it("a queue's filter covers its partitions, and only them", async () => {
    const k = await kit()
    const now = Date.now()
    await k.archive([
      { id: 'p0', queue: 'o_her', finished_at: now - 3000 },
      { id: 'p1', queue: 'o_her~1', finished_at: now - 2000 },
      { id: 'p2', queue: 'o_her~2.1', finished_at: now - 1000 },
      { id: 'x1', queue: 'oxher~1', finished_at: now - 1500 },
      { id: 'x2', queue: 'o_herx', finished_at: now - 1500 },
    ])
    expect(ids((await k.search('queue=o_her')).body)).toEqual(['p2', 'p1', 'p0'])
  })

  it('cursor pages over live and archived jobs neither repeat nor skip', async () => {
    const k = await kit()
    const now = Date.now()
    // Ties on time across queues and ids, and live jobs interleaved with archived ones.
    await k.archive(
      Array.from({ length: 40 }, (_, i) => ({
        id: `j${String(i).padStart(3, '0')}`,
        queue: i % 3 ? 'arch' : 'arch2',
        finished_at: now - 60_000 + Math.floor(i / 4) * 1000,
        payload: { n: i },
      })),
    )
    for (let i = 0; i < 9; i++) await k.b.queue.add('echo', { n: 100 + i }, { queue: 'arch' })
    const whole = await k.search('limit=500')
    expect(whole.body.items).toHaveLength(49)
    const seen: string[] = []
    let cursor: string | null = null
    for (let pages = 0; pages < 20; pages++) {
      const r: { body: Reply } = await k.search(`limit=7${cursor ? `&cursor=${cursor}` : ''}`)
      seen.push(...r.body.items.map((i: { job: Job }) => `${i.job.queue}/${i.job.id}`))
      cursor = r.body.next_cursor
      if (!cursor) break
      // Jobs arriving meanwhile are newer than the position: later pages neither show nor shift.
      if (pages === 1) await k.b.queue.add('echo', { n: 999 }, { queue: 'arch', delay_ms: 3_600_000 })
    }
    expect(seen).toEqual(whole.body.items.map((i: { job: Job }) => `${i.job.queue}/${i.job.id}`))
    expect(new Set(seen).size).toBe(49)
  })

  it('bad input is a 400 naming the problem, and nothing is written', async () => {
    const k = await kit()
    const before = await k.b.keys()
    for (const [query, msg] of [
      ['where=user..id%3D1', /a path is dotted names/],
      ['where=a.b.c.d.e.f.g.h.i%3D1', /at most 8 steps/],
      ['where=a%3D%7B%22x%22%3A1%7D', /scalar/],
      ['where=justapath', /after the path comes/],
      [qs({ where: Array.from({ length: 9 }, (_, i) => `a${i}=1`) }), /where/],
      ['from=5000&to=4000', /from must be before to/],
      ['cursor=abc', /cursor is not valid/],
      ['limit=100000', /limit/],
      ['state=nope', /state/],
      ['q=%00', /q/],
      ['unknown=1', /unknown|additional/i],
    ] as const) {
      const r = await k.search(query)
      expect(r.status, query).toBe(400)
      expect(r.body.message, query).toMatch(msg)
    }
    const exp = await k.b.app.inject({
      method: 'GET',
      url: '/search/export?limit=2000000',
      headers: bearer('read'),
    })
    expect(exp.statusCode).toBe(400)
    expect(exp.json().message).toMatch(/SEARCH_EXPORT_MAX \(1000000\)/)
    const preset = await k.b.app.inject({
      method: 'POST',
      url: '/search/presets',
      headers: bearer('write'),
      payload: { name: 'bad', filters: { where: ['user..id=1'] } },
    })
    expect(preset.statusCode).toBe(400)
    expect(await k.b.keys()).toEqual(before)
  })

  it('PostgreSQL unreachable: the live part with history unavailable; an export is a 503', async () => {
    const port = await freePort()
    b = await apiSetup({
      apiTokens: TOKEN_SETTING,
      databaseUrl: `postgres://postgres@127.0.0.1:${port}/none`,
    } as never)
    await b.queue.add('echo', { a: 1 })
    const r = await b.app.inject({ method: 'GET', url: '/search', headers: bearer('read') })
    expect(r.statusCode).toBe(200)
    expect(r.json().history).toBe('unavailable')
    expect(r.json().history_error).toMatch(/PostgreSQL is unreachable/)
    expect(r.json().items).toHaveLength(1)
    const e = await b.app.inject({ method: 'GET', url: '/search/export', headers: bearer('read') })
    expect(e.statusCode).toBe(503)
    expect(e.json().code).toBe('HISTORY_UNAVAILABLE')
  })

  it('no tables yet: says to run the archiver', async () => {
    b = await apiSetup({
      apiTokens: TOKEN_SETTING,
      databaseUrl: db.url,
      historySchema: 'nothing_here',
    } as never)
    const r = await b.app.inject({ method: 'GET', url: '/search', headers: bearer('read') })
    expect(r.json().history).toBe('unavailable')
    expect(r.json().history_error).toMatch(/dtq archiver/)
  })
})

describe('presets', () => {
  it('save, list, replace, delete; write role to change; capped', async () => {
    b = await apiSetup({ apiTokens: TOKEN_SETTING } as never)
    const post = (name: string, filters: object, role: 'read' | 'write' = 'write') =>
      b!.app.inject({
        method: 'POST',
        url: '/search/presets',
        headers: bearer(role),
        payload: { name, filters },
      })
    expect((await post('vip mail', { task_type: 'mail', where: ['tags=vip'] }, 'read')).statusCode).toBe(403)
    const created = await post('vip mail', { task_type: 'mail', where: ['tags=vip'] })
    expect(created.statusCode).toBe(201)
    expect((await post('vip mail', { task_type: 'mail', q: 'timeout' })).statusCode).toBe(200)
    const list = await b.app.inject({ method: 'GET', url: '/search/presets', headers: bearer('read') })
    expect(list.json().items).toEqual([
      { name: 'vip mail', filters: { task_type: 'mail', q: 'timeout' }, saved_at: expect.any(Number) },
    ])
    for (let i = 1; i < MAX_PRESETS; i++) expect((await post(`p${i}`, {})).statusCode).toBe(201)
    const full = await post('one-too-many', {})
    expect(full.statusCode).toBe(409)
    expect(full.json().message).toMatch(/100 presets/)
    expect((await post('p1', { queue: 'x' })).statusCode).toBe(200) // replacing is fine when full
    const del = (name: string, role: 'read' | 'write' = 'write') =>
      b!.app.inject({
        method: 'DELETE',
        url: `/search/presets/${encodeURIComponent(name)}`,
        headers: bearer(role),
      })
    expect((await del('vip mail', 'read')).statusCode).toBe(403)
    expect((await del('vip mail')).statusCode).toBe(204)
    expect((await del('vip mail')).statusCode).toBe(404)
    expect((await post('one-too-many', {})).statusCode).toBe(201)
  })
})

/** A minimal RFC 4180 parser (quoted fields, doubled quotes, CRLF) to read an export back. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let field = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quoted) {
      if (c !== '"') field += c
      else if (text[i + 1] === '"') {
        field += '"'
        i++
      } else quoted = false
    } else if (c === '"') quoted = true
    else if (c === ',') {
      row.push(field)
      field = ''
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field)
      rows.push(row)
      row = []
      field = ''
      i++
    } else field += c
  }
  return rows
}

describe('GET /search/export', () => {
  it('CSV and NDJSON hold every result, escaped correctly, live and archived', async () => {
    const k = await kit()
    const now = Date.now()
    const tricky = { note: 'comma, "quotes" and\r\na new line', n: 1 }
    await k.archive([
      { id: 'e1', finished_at: now - 2000, payload: tricky, error: 'bad, "very"\nbad', state: 'failed' },
      { id: 'e2', finished_at: now - 1000, payload: { n: 2 } },
    ])
    await k.b.queue.add('echo', { n: 3 }, { queue: 'arch' })
    const csv = await k.b.app.inject({
      method: 'GET',
      url: '/search/export?format=csv',
      headers: bearer('read'),
    })
    expect(csv.statusCode).toBe(200)
    expect(csv.headers['content-type']).toMatch(/text\/csv/)
    expect(csv.headers['x-dtq-history']).toBe('enabled')
    const rows = parseCsv(csv.body)
    expect(rows[0]).toEqual([...CSV_COLUMNS])
    expect(CSV_COLUMNS.slice(0, 5)).toEqual(['source', 'queue', 'job_id', 'task_type', 'state'])
    expect(rows.slice(1).map((r) => [r[0], r[2]])).toEqual([
      ['live', expect.any(String)],
      ['archive', 'e2'],
      ['archive', 'e1'],
    ])
    const e1 = rows[3]!
    expect(e1[4]).toBe('failed')
    expect(e1[10]).toBe('bad, "very"\nbad')
    expect(JSON.parse(e1[11]!)).toEqual(tricky)
    expect(e1[6]).toBe(new Date(now - 2000).toISOString())

    const nd = await k.b.app.inject({
      method: 'GET',
      url: '/search/export?format=ndjson&where=n%3D1',
      headers: bearer('read'),
    })
    expect(nd.headers['content-type']).toMatch(/ndjson/)
    const lines = nd.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines).toEqual([
      { source: 'archive', at: now - 2000, job: expect.objectContaining({ id: 'e1', payload: tricky }) },
    ])
    const capped = await k.b.app.inject({
      method: 'GET',
      url: '/search/export?format=ndjson&limit=2',
      headers: bearer('read'),
    })
    expect(capped.body.trim().split('\n')).toHaveLength(2)
  })

  it('streams 100k archived rows with bounded memory', { timeout: 120_000 }, async () => {
    const k = await kit()
    const now = Date.now()
    const N = 100_000
    await k.history.ensureDays([now - DAY, now - 2 * DAY, now])
    // ~1.2 KB of payload a row: the whole export is ~130 MB, far above the bound checked below.
    await k.pool.query(
      `INSERT INTO "${k.schema}".jobs (queue, job_id, task_type, state, priority, payload, attempts,
         max_retries, created_at, finished_at, job)
       SELECT 'bulk', 'b' || g, 'echo', 'completed', 'normal', jsonb_build_object('n', g, 'pad', repeat('x', 1200)),
         1, 3, f - interval '1 second', f,
         jsonb_build_object('id', 'b' || g, 'queue', 'bulk', 'task_type', 'echo', 'state', 'completed',
           'attempts', 1,
           'created_at', 0, 'finished_at', (extract(epoch from f) * 1000)::bigint)
       FROM (SELECT g, to_timestamp(($1::float8 - g * 1000) / 1000) AS f FROM generate_series(1, $2::int) g) s`,
      [now, N],
    )
    const port = await freePort()
    await k.b.app.listen({ port, host: '127.0.0.1' })
    const batches = vi.spyOn(ArchiveSearch.prototype, 'batch')
    const base = process.memoryUsage().rss
    let bytes = 0
    let newlines = 0
    let whilePaused = { batches: 0, rss: 0 }
    await new Promise<void>((resolve, reject) => {
      const req = request(
        { port, host: '127.0.0.1', path: '/search/export?format=ndjson&queue=bulk', headers: bearer('read') },
        (res) => {
          let paused = false
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length
            for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) newlines++
            if (paused) return
            // A slow reader: the server must stop reading PostgreSQL while its socket is full.
            paused = true
            res.pause()
            setTimeout(() => {
              whilePaused = { batches: batches.mock.calls.length, rss: process.memoryUsage().rss }
              setTimeout(() => {
                expect(batches.mock.calls.length).toBe(whilePaused.batches) // nothing more read meanwhile
                res.resume()
              }, 500)
            }, 1500)
          })
          res.on('end', resolve)
          res.on('error', reject)
        },
      )
      req.on('error', reject)
      req.end()
    })
    batches.mockRestore()
    expect(newlines).toBe(N)
    expect(bytes).toBeGreaterThan(120_000_000)
    // Paused after its first chunk, the reader held up the export at a few batches of 1000 rows.
    expect(whilePaused.batches).toBeLessThanOrEqual(5)
    const peak = whilePaused.rss
    expect(peak - base).toBeLessThan(60_000_000)

    // A query past the statement timeout: the live part, and the history said unavailable and why.
    const slow = ArchiveSearch.pool(db.url, 1)
    cleanups.push(() => slow.end())
    const engine = new SearchEngine(
      k.b.queue,
      new SearchStore(k.b.redis, k.b.prefix),
      new ArchiveSearch(slow, k.schema),
      {
        liveScan: 100,
        defaultDays: 7,
        now: () => Date.now(),
      },
    )
    const page = await engine.page(parseFilters({ where: 'pad~nothing-like-this' }), undefined, 50)
    expect(page.history).toBe('unavailable')
    expect(page.history_error).toMatch(/SEARCH_TIMEOUT_MS/)
  })
})

describe('dtq search', () => {
  it('a table, JSON, a CSV export; bad input is an error', async () => {
    const k = await kit()
    const now = Date.now()
    await k.archive([{ id: 'c1', finished_at: now - 1000, payload: { user: { id: 42 } } }])
    await k.b.queue.add('echo', { user: { id: 42 } }, { queue: 'arch', delay_ms: 3_600_000 })
    const env = {
      ...targetEnv(testTarget()),
      KEY_PREFIX: k.b.prefix,
      DATABASE_URL: db.url,
      HISTORY_SCHEMA: k.schema,
    }
    const table = await runCli(env, ['search', '--where', 'user.id=42'])
    expect(table).toMatch(/^live {5}arch\/\d+ +scheduled echo/m)
    expect(table).toMatch(/^archived arch\/c1 +completed echo/m)
    const json = JSON.parse(
      await runCli(env, ['search', '--where', 'user.id=42', '--format', 'json', '--limit', '1']),
    )
    expect(json.items).toHaveLength(1)
    expect(json.next_cursor).toEqual(expect.any(String))
    const csv = await runCli(env, ['search', '--text', '42', '--format', 'csv'])
    expect(csv.trim().split('\r\n')).toHaveLength(3)
    await expect(runCli(env, ['search', '--where', 'user..id=1'])).rejects.toThrow(/a path is dotted names/)
  }, 30_000)
})
