/**
 * The topology harness (test/topology.ts) against real processes: a 3-master / 3-replica Redis
 * Cluster and a Sentinel group, each with a kill -9 of the primary and a client that carries on.
 */
import { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest'
import {
  call,
  HOST,
  type LocalCluster,
  type LocalSentinelGroup,
  parseInfo,
  startCluster,
  startSentinelGroup,
} from './topology.ts'

const KEYS = 1000
const key = (i: number) => `{t${i}}:k` // a different hash tag each: spread over the slots
const value = (i: number) => `v${i}`

describe('a local Redis Cluster', () => {
  let cluster: LocalCluster | undefined
  let client: Cluster | undefined

  beforeAll(async () => {
    cluster = await startCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 2000 })
    client = new Cluster(
      cluster.nodes.map((n) => ({ host: HOST, port: n.port })),
      { retryDelayOnFailover: 100, retryDelayOnClusterDown: 100, slotsRefreshTimeout: 2000 },
    )
    client.on('error', () => {}) // reconnect noise while a node is down; commands still report
  })

  afterAll(async () => {
    client?.disconnect()
    await cluster?.stop()
  })

  const dumpOnFailure = () => onTestFailed(() => console.error(cluster?.logTails(25)))

  it('starts 3 masters with a replica each, and keys spread over all of them', async () => {
    dumpOnFailure()
    const c = cluster!
    expect(c.nodes).toHaveLength(6)
    expect(c.seeds).toEqual(c.nodes.map((n) => `redis://127.0.0.1:${n.port}`))
    const masters = await c.masters()
    expect(masters).toHaveLength(3)
    for (const m of masters) {
      const r = await c.replicaOf(m)
      expect(masters).not.toContain(r)
      expect(parseInfo(await call(r.port, ['INFO', 'replication'])).master_port).toBe(String(m.port))
      expect(parseInfo(await call(m.port, ['INFO', 'persistence'])).aof_enabled).toBe('1')
    }

    await Promise.all(Array.from({ length: KEYS }, (_, i) => client!.set(key(i), value(i))))
    // Acknowledged by each master's replica before we go on (test 2 kills a master).
    for (const n of client!.nodes('master')) expect(await n.call('WAIT', 1, 1000)).toBe(1)

    const sizes = await Promise.all(masters.map(async (m) => Number(await call(m.port, ['DBSIZE']))))
    for (const s of sizes) expect(s).toBeGreaterThan(100) // ~333 each
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(KEYS)
  })

  it('survives kill -9 of a master: the replica is promoted and the client keeps reading and writing', async () => {
    dumpOnFailure()
    const c = cluster!
    const target = (await c.masters())[0]!
    const replica = await c.replicaOf(target)
    const itsKeys = (await call(target.port, ['KEYS', '*'])) as string[]
    expect(itsKeys.length).toBeGreaterThan(100)

    const promoted = await c.killMaster(0)
    expect(promoted).toBe(replica)
    expect(target.alive).toBe(false)
    expect(await c.masters()).toContain(promoted)
    expect(Number(await call(promoted.port, ['DBSIZE']))).toBe(itsKeys.length)

    // The keys of the dead master's slots: readable with their values, then writable.
    for (const k of itsKeys) expect(await client!.get(k)).toBe(value(Number(k.slice(2, k.indexOf('}')))))
    await Promise.all(itsKeys.map((k) => client!.set(k, `${k}-after`)))
    for (const k of itsKeys) expect(await client!.get(k)).toBe(`${k}-after`)
    // And every other key still there.
    const all = await Promise.all(Array.from({ length: KEYS }, (_, i) => client!.get(key(i))))
    expect(all.filter((v) => v === null)).toHaveLength(0)

    // The old master comes back on its port and dir, and rejoins as the new master's replica.
    await target.restart()
    await c.waitHealthy(30_000)
    expect((await c.replicasOf(promoted)).map((n) => n.port)).toEqual([target.port])
  })
})

describe('a local Sentinel group', () => {
  let group: LocalSentinelGroup | undefined
  const clients: Redis[] = []

  beforeAll(async () => {
    group = await startSentinelGroup({ downAfterMs: 1000 })
  })

  afterAll(async () => {
    for (const c of clients) c.disconnect()
    await group?.stop()
  })

  it('fails over when the primary is killed; a client through the sentinels reaches the new one', async () => {
    onTestFailed(() => console.error(group?.logTails(30)))
    const g = group!
    expect(g.sentinels).toHaveLength(3)
    const first = await g.primary()
    const second = await g.replica()
    expect(second).not.toBe(first)

    const before = new Redis({ sentinels: g.sentinels, name: g.masterName, sentinelRetryStrategy: () => 100 })
    before.on('error', () => {})
    clients.push(before)
    await before.set('before', '1')
    expect(await before.call('WAIT', 1, 1000)).toBe(1) // on the replica before the kill

    const promoted = await g.killPrimary()
    expect(promoted).toBe(second)
    expect(await g.primary()).toBe(second)

    const after = new Redis({ sentinels: g.sentinels, name: g.masterName })
    clients.push(after)
    await after.set('after', '2')
    expect(await after.get('before')).toBe('1')
    expect(parseInfo(await after.info('server')).tcp_port).toBe(String(second.port))
    expect((await after.call('ROLE')) as unknown[]).toContain('master')
    // The client made before the failover follows it too.
    expect(await before.get('after')).toBe('2')
    expect(parseInfo(await before.info('server')).tcp_port).toBe(String(second.port))

    // The old primary comes back as a replica of the new one.
    await g.restartNode(first)
    await g.waitHealthy(30_000)
    expect(await g.replica()).toBe(first)
    expect(await call(first.port, ['GET', 'after'])).toBe('2')
  })
})
