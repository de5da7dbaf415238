/**
 * The connection layer under link faults, against a TCP server that accepts and never answers
 * (a network black hole) and a real redis-server.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'
import { isRedisUnreachable } from '../src/errors.ts'
import { createRedis, whenRedisAvailable } from '../src/redis/connection.ts'
import { testConfig, waitFor } from './helpers.ts'

const cleanups: Array<() => void> = []
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c()
})

async function blackHole(): Promise<{ port: number; accepted: () => number }> {
  let accepted = 0
  const sockets = new Set<Socket>()
  const server: Server = createServer((s) => {
    accepted++
    sockets.add(s)
    s.on('error', () => {})
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  cleanups.push(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return { port: (server.address() as { port: number }).port, accepted: () => accepted }
}

describe('connections', () => {
  it('a connection whose handshake is never answered is dropped and tried again', async () => {
    const hole = await blackHole()
    const redis = createRedis({
      target: `redis://127.0.0.1:${hole.port}`,
      commandTimeoutMs: 200,
      name: 'probe',
    })
    cleanups.push(() => redis.disconnect())
    redis.connect().catch(() => {})
    // Without the watchdog the client would wait in "connect" for ever after the first accept.
    await waitFor(() => hole.accepted() >= 3, { timeoutMs: 5000, what: 'reconnect attempts' })
    expect(redis.status).not.toBe('ready')
  })

  it('start-up steps wait out an outage, and fail at once on anything else', async () => {
    let calls = 0
    const value = await whenRedisAvailable(async () => {
      calls++
      if (calls < 3) throw new Error("Stream isn't writeable and enableOfflineQueue options is false")
      return 'ok'
    }, 5000)
    expect({ value, calls }).toEqual({ value: 'ok', calls: 3 })
    let policyCalls = 0
    await expect(
      whenRedisAvailable(async () => {
        policyCalls++
        throw new Error('Redis is not durable: appendonly is off')
      }, 5000),
    ).rejects.toThrow('not durable')
    expect(policyCalls).toBe(1)
    expect(isRedisUnreachable(new Error('Command timed out'))).toBe(true)
    expect(isRedisUnreachable(new Error('NOPERM this user has no permissions'))).toBe(false)
  })

  // What ioredis's sentinel failover detector does on +switch-master (connector.disconnect()),
  // here while the client's connection attempt is under way: the attempt rejects "Connection is
  // closed." and ioredis ends the client for good. Found by chaos/failover.test.ts (the API and
  // both workers ended at the promotion). Repeated: the revived client must be usable each time.
  it('a client ended by a connector disconnect mid-attempt is connected again; one closed on purpose stays closed', async () => {
    const url = testConfig('conn').redisUrl
    const endMidAttempt = async (redis: Redis) => {
      await redis.connect().catch(() => {})
      expect(redis.status).toBe('ready')
      // A reconnection (what a dropped link gets) whose attempt the connector is told to drop
      // as soon as it starts, as the failover detector does.
      redis.once('connecting', () =>
        (redis as unknown as { connector: { disconnect(): void } }).connector.disconnect(),
      )
      const ended = new Promise((r) => redis.once('end', r))
      redis.disconnect(true)
      await ended
    }
    for (let round = 0; round < 4; round++) {
      const revived = createRedis({ target: url, commandTimeoutMs: 1000, name: 'revived' })
      cleanups.push(() => revived.disconnect())
      await endMidAttempt(revived)
      await waitFor(() => revived.status === 'ready', { timeoutMs: 5000, what: 'the client connected again' })
      expect(await revived.ping()).toBe('PONG')

      // Control: ioredis alone ends there for good.
      const plain = new Redis(url, { lazyConnect: true, enableOfflineQueue: false })
      plain.on('error', () => {})
      cleanups.push(() => plain.disconnect())
      await endMidAttempt(plain)
      await new Promise((r) => setTimeout(r, 300))
      expect(plain.status).toBe('end')
      await expect(plain.ping()).rejects.toThrow('Connection is closed.')
    }
    // Closed on purpose: quit, disconnect().
    for (const close of [(r: Redis) => r.quit(), (r: Redis) => r.disconnect()]) {
      const r = createRedis({ target: url, commandTimeoutMs: 1000, name: 'closed' })
      cleanups.push(() => r.disconnect())
      await r.connect()
      await close(r)
      await waitFor(() => r.status === 'end', { timeoutMs: 5000 })
      await new Promise((res) => setTimeout(res, 300))
      expect(r.status).toBe('end')
    }
  })
})
