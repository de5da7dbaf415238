/** GET /events over a real socket: live events, filters, heartbeats, resume, browser auth. */
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { freePort } from '../src/redis/local-server.ts'
import { type ApiBundle, apiSetup, TOKEN_SETTING, TOKENS } from './api-helpers.ts'
import { waitFor } from './helpers.ts'

let b: ApiBundle
let base: string
async function start(config = {}) {
  b = await apiSetup({ sseHeartbeatMs: 200, ...config })
  const port = await freePort()
  await b.app.listen({ port, host: '127.0.0.1' })
  base = `http://127.0.0.1:${port}`
}
afterEach(() => b.cleanup())

interface Feed {
  events: EventSourceMessage[]
  comments: string[]
  status: number
  close(): void
}

async function follow(path: string, headers: Record<string, string> = {}): Promise<Feed> {
  const ac = new AbortController()
  const res = await fetch(base + path, { headers, signal: ac.signal })
  const feed: Feed = { events: [], comments: [], status: res.status, close: () => ac.abort() }
  if (res.status !== 200 || !res.body) return feed
  const parser = createParser({
    onEvent: (e) => feed.events.push(e),
    onComment: (c) => feed.comments.push(c),
  })
  const reader = res.body.getReader()
  const decoder = new TextDecoder()
  void (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        parser.feed(decoder.decode(value, { stream: true }))
      }
    } catch {}
  })()
  return feed
}

const post = (body: unknown) => b.app.inject({ method: 'POST', url: '/jobs', payload: body as never })

describe('GET /events', () => {
  beforeEach(() => start())

  it('streams lifecycle events live, with heartbeats', async () => {
    const feed = await follow('/events')
    expect(feed.status).toBe(200)
    await new Promise((r) => setTimeout(r, 100))
    const w = b.worker()
    await w.start()
    const id = (await post({ task_type: 'echo' })).json().id
    await waitFor(() => feed.events.filter((e) => JSON.parse(e.data).job_id === id).length >= 3)
    const mine = feed.events.filter((e) => JSON.parse(e.data).job_id === id)
    expect(mine.map((e) => e.event)).toEqual(['queued', 'active', 'completed'])
    expect(JSON.parse(mine[0]!.data)).toMatchObject({
      queue: 'default',
      job_id: id,
      event: 'queued',
      task_type: 'echo',
    })
    expect(mine[0]!.id).toMatch(/^\d+-\d+$/)
    await waitFor(() => feed.comments.includes('ping'))
    feed.close()
  })

  it('filters by queue, type and job id', async () => {
    const byType = await follow('/events?task_type=sleep')
    const byQueue = await follow('/events?queue=other')
    await new Promise((r) => setTimeout(r, 100))
    const a = (await post({ task_type: 'echo' })).json().id
    const c = (await post({ task_type: 'sleep', queue: 'other' })).json().id
    const byJob = await follow(`/events?job_id=${a}`)
    await b.app.inject({ method: 'POST', url: `/jobs/${a}/cancel` })
    await waitFor(() => byType.events.length >= 1 && byQueue.events.length >= 1 && byJob.events.length >= 1)
    await new Promise((r) => setTimeout(r, 200))
    expect(byType.events.map((e) => JSON.parse(e.data).job_id)).toEqual([c])
    expect(byQueue.events.map((e) => JSON.parse(e.data).job_id)).toEqual([c])
    expect(byJob.events.map((e) => e.event)).toEqual(['cancelled'])
    for (const f of [byType, byQueue, byJob]) f.close()
  })

  it('resumes after Last-Event-ID without gaps or repeats', async () => {
    const first = await follow('/events')
    await new Promise((r) => setTimeout(r, 100))
    await post({ task_type: 'echo', payload: 1 })
    await waitFor(() => first.events.length === 1)
    const lastId = first.events[0]!.id!
    first.close()
    // Missed while disconnected, in two queues:
    const x = (await post({ task_type: 'echo', payload: 2 })).json().id
    const y = (await post({ task_type: 'echo', payload: 3, queue: 'second' })).json().id
    const resumed = await follow('/events', { 'last-event-id': lastId })
    const z = (await post({ task_type: 'echo', payload: 4 })).json().id
    await waitFor(() => resumed.events.length >= 3)
    await new Promise((r) => setTimeout(r, 200))
    expect(resumed.events.map((e) => JSON.parse(e.data).job_id)).toEqual([x, y, z])
    resumed.close()
    expect((await follow('/events', { 'last-event-id': 'garbage' })).status).toBe(400)
  })

  it('expands an entry of several events (one batch) and resumes from inside it', async () => {
    const feed = await follow('/events')
    await new Promise((r) => setTimeout(r, 100))
    const batch = await b.app.inject({
      method: 'POST',
      url: '/jobs/batch',
      payload: { jobs: [1, 2, 3, 4].map((n) => ({ task_type: 'echo', payload: n })) },
    })
    const ids = (batch.json().items as Array<{ job: { id: string } }>).map((i) => i.job.id)
    await waitFor(() => feed.events.length >= 4)
    feed.close()
    expect(feed.events.map((e) => JSON.parse(e.data).job_id)).toEqual(ids)
    const entry = feed.events[0]!.id!
    expect(entry).toMatch(/^\d+-\d+$/)
    expect(feed.events.map((e) => e.id)).toEqual([entry, `${entry}.1`, `${entry}.2`, `${entry}.3`])
    // Resuming after the second event of the entry gives the third and fourth, then what follows.
    const resumed = await follow('/events', { 'last-event-id': `${entry}.1` })
    const after = (await post({ task_type: 'echo', payload: 5 })).json().id
    await waitFor(() => resumed.events.length >= 3)
    await new Promise((r) => setTimeout(r, 200))
    expect(resumed.events.map((e) => JSON.parse(e.data).job_id)).toEqual([ids[2], ids[3], after])
    resumed.close()
  })
})

describe('GET /events with tokens', () => {
  beforeEach(() => start({ apiTokens: TOKEN_SETTING }))

  it('takes the Authorization header, or access_token in the query for a browser EventSource', async () => {
    expect((await follow('/events')).status).toBe(401)
    expect((await follow('/events?access_token=wrong-token-000000000')).status).toBe(401)
    const viaHeader = await follow('/events', { authorization: `Bearer ${TOKENS.read}` })
    const viaQuery = await follow(`/events?access_token=${TOKENS.read}`)
    expect([viaHeader.status, viaQuery.status]).toEqual([200, 200])
    viaHeader.close()
    viaQuery.close()
  })
})
