// Profiling aid: where a waiting job's bytes go (MEMORY USAGE of its hash, stream share,
// events share), against a private redis-server. Usage: node scripts/bench/profile-memory.ts
import { Queue } from '@dtq/app'
import { Redis } from 'ioredis'
import { privateRedis } from './private-redis.ts'

const N = 20000
const { port, cfg, stop } = await privateRedis('b')
const admin = new Redis({ port })
const q = await Queue.connect(cfg)
await q.add('noop', {})
const used = async () => Number(/^used_memory:(\d+)/m.exec(await admin.info('memory'))?.[1])
const m0 = await used()
for (let i = 0; i < N; i += 1000)
  await q.addBulk(Array.from({ length: 1000 }, () => ({ task_type: 'noop', payload: { n: 1 } })))
const m1 = await used()
const k = q.store.keys
const one = (await q.listJobs({ limit: 1 })).items[0]!
const mu = async (key: string) => Number(await admin.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'))
console.log(`per waiting job: ${((m1 - m0) / N).toFixed(0)} B`)
console.log(
  `job hash (MEMORY USAGE): ${await mu(k.job('default', one.id))} B; fields: ${JSON.stringify(await admin.hgetall(k.job('default', one.id)))}`,
)
console.log(`ready stream per job: ${((await mu(k.stream('default', 'normal'))) / N).toFixed(0)} B`)
console.log(
  `events stream per job: ${((await mu(k.events('default'))) / N).toFixed(0)} B (${await admin.xlen(k.events('default'))} entries)`,
)
console.log(`main dict: ~${(await admin.dbsize()) > 0 ? 8 : 0} B/key of table + entry`)
await q.close()
stop()
admin.disconnect()
