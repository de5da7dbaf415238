import { it } from 'vitest'
import { apiSetup } from './api-helpers.ts'
it('probe', async () => {
  const b = await apiSetup()
  for (const n of [1, 100, 1000, 3000]) {
    const have = (await b.queue.queueNames()).length
    if (n > have) await b.queue.addBulk(Array.from({ length: n - have }, (_, i) => ({ task_type: 'echo', queue: `q${have + i}` })))
    for (const url of ['/stats', '/metrics', '/queues', '/jobs?limit=50', '/dlq', '/jobs/zz-none']) {
      const t: number[] = []
      let size = 0
      for (let k = 0; k < 5; k++) {
        const t0 = performance.now()
        const r = await b.app.inject({ method: 'GET', url })
        t.push(performance.now() - t0)
        size = r.body.length
      }
      t.sort((a, c) => a - c)
      console.log(`queues=${n} ${url} median ${t[2]!.toFixed(1)} ms, ${Math.round(size / 1024)} KB`)
    }
  }
  await b.cleanup()
})
