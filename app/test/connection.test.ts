/**
 * The connection layer under link faults, against a TCP server that accepts and never answers
 * (a network black hole) and a real redis-server.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { isRedisUnreachable } from '../src/errors.ts'
import { createRedis, whenRedisAvailable } from '../src/redis/connection.ts'
import { waitFor } from './helpers.ts'

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
})
