/**
 * For `dtq dev` on a laptop: find a Redis to use, or start a private redis-server with AOF
 * (data under .data/redis) when none is configured or listening on 127.0.0.1:6379.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { createServer, Socket } from 'node:net'
import { resolve } from 'node:path'

export function canConnect(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((done) => {
    const s = new Socket()
    const finish = (ok: boolean) => {
      s.destroy()
      done(ok)
    }
    s.setTimeout(timeoutMs, () => finish(false))
    s.once('error', () => finish(false))
    s.connect(port, host, () => finish(true))
  })
}

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer()
    srv.once('error', fail)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => done(typeof addr === 'object' && addr ? addr.port : 0))
    })
  })
}

export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

export interface LocalRedis {
  url: string
  process: ChildProcess
  stop(): Promise<void>
}

/** Starts redis-server with AOF (everysec) and noeviction on a free port; waits until it answers. */
export async function startLocalRedis(dataDir: string, port?: number): Promise<LocalRedis> {
  const dir = resolve(dataDir)
  mkdirSync(dir, { recursive: true })
  const p = port ?? (await freePort())
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(p),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
      '--daemonize',
      'no',
      '--logfile',
      '',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  )
  const deadline = Date.now() + 10_000
  while (!(await canConnect('127.0.0.1', p, 200))) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`)
    if (Date.now() > deadline) throw new Error('redis-server did not start within 10 s')
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url: `redis://127.0.0.1:${p}`,
    process: child,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done()
        child.once('exit', () => done())
        child.kill('SIGTERM')
      }),
  }
}
