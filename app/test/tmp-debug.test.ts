import { connect } from 'node:net'
import { it } from 'vitest'
import { freePort } from '../src/redis/local-server.ts'
import { apiSetup, TOKEN_SETTING, bearer } from './api-helpers.ts'
import { waitFor } from './helpers.ts'
it('debug', async () => {
  const auth = process.env.AUTH === '1'
  const b = await apiSetup({ sseReplayMaxEvents: 50_000, sseStallTimeoutMs: 1500, sseHeartbeatMs: Number(process.env.HB ?? 15000), ...(auth ? { apiTokens: TOKEN_SETTING } : {}) })
  const port = await freePort()
  await b.app.listen({ port, host: '127.0.0.1' })
  const keys = b.queue.store.keys
  await b.redis.sadd(keys.queues(), 'default')
  for (let i = 0; i < 20000; i += 1000) {
    const p = b.redis.pipeline()
    for (let j = i; j < i + 1000; j++) p.xadd(keys.events('default'), '*', 'job', `job-${j}-${'x'.repeat(90)}`, 'event', 'queued', 'type', 'echo')
    await p.exec()
  }
  if (process.env.FOLLOW) { const r = await fetch(`http://127.0.0.1:${port}/events`, { headers: auth ? bearer('read') : {} }); void r.body!.getReader().read() ; await waitFor(() => b.app.dtq.hub.size === 1) }
  const t0 = Date.now()
  const n = Number(process.env.N ?? 1)
  const h = auth ? `authorization: ${bearer('read').authorization}\r\n` : ''
  for (let i = 0; i < n; i++) {
  const s = connect(port, '127.0.0.1'); s.pause(); s.on('error', () => {})
  s.write(`GET /events HTTP/1.1\r\nhost: x\r\n${h}last-event-id: 0-0\r\n\r\n`)
  }
  await waitFor(() => b.app.dtq.hub.size === n + (process.env.FOLLOW ? 1 : 0))
  console.log('joined', Date.now() - t0)
  let stop = false
  if (process.env.POST) void (async () => { while (!stop) { await fetch(`http://127.0.0.1:${port}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', ...(auth ? bearer('write') : {}) }, body: JSON.stringify({ task_type: 'echo' }) }); await new Promise((r) => setTimeout(r, 20)) } })()
  await waitFor(() => b.app.dtq.hub.size === (process.env.FOLLOW ? 1 : 0), { timeoutMs: 20000 })
  console.log('gone', Date.now() - t0); stop = true
  await b.cleanup()
})
