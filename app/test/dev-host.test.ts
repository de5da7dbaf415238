/**
 * DNS rebinding (issue 15, item 11). A page on evil.example whose name is re-pointed at 127.0.0.1
 * talks to a laptop's `dtq dev` as its own origin; only its Host header gives it away. Raw
 * requests over a real socket, since a fetch cannot choose its Host.
 */
import { Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { type Config, loadConfig } from '../src/config.ts'
import { hostName } from '../src/http/host-check.ts'
import { freePort } from '../src/redis/local-server.ts'
import { apiSetup, TOKEN_SETTING, TOKENS } from './api-helpers.ts'

const open: Array<{ cleanup(): unknown }> = []
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c.cleanup()
})

async function listening(config: Partial<Config>): Promise<number> {
  const b = await apiSetup(config)
  open.push(b)
  const port = await freePort()
  await b.app.listen({ port, host: '127.0.0.1' })
  return port
}

/** One request with exactly this Host header (none when null): status and body. */
function raw(
  port: number,
  host: string | null,
  path = '/queues',
  extra = '',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = new Socket()
    let data = ''
    s.on('data', (d) => {
      data += d
    })
    s.on('error', reject)
    s.on('close', () => {
      const [head = '', body = ''] = data.split('\r\n\r\n')
      resolve({ status: Number(head.split(' ')[1]), body })
    })
    const version = host === null ? 'HTTP/1.0' : 'HTTP/1.1'
    const hostLine = host === null ? '' : `Host: ${host}\r\n`
    s.connect(port, '127.0.0.1', () =>
      s.write(`GET ${path} ${version}\r\n${hostLine}${extra}Connection: close\r\n\r\n`),
    )
  })
}

describe('the DNS-rebinding guard', () => {
  it('answers only to localhost names: a rebinding page (Host: evil.example) gets 421 and nothing else', async () => {
    const port = await listening({})
    for (const host of [
      `localhost:${port}`,
      `127.0.0.1:${port}`,
      `[::1]:${port}`,
      `console.localhost:${port}`,
      'LOCALHOST',
      'localhost.',
    ]) {
      expect((await raw(port, host)).status, host).toBe(200)
    }
    for (const host of [
      'evil.example',
      `evil.example:${port}`,
      'localhost.evil.example',
      'localhost.evil.example:8000',
      '127.0.0.1.nip.io',
      'evil.example@localhost',
      '192.168.1.20',
      '',
    ]) {
      const r = await raw(port, host)
      expect(r.status, host).toBe(421)
      expect(JSON.parse(r.body), host).toMatchObject({
        error: 'Misdirected Request',
        code: 'HOST_NOT_ALLOWED',
      })
    }
    // Every route, the admin ones and the event feed included; a request with no Host at all too.
    expect((await raw(port, 'evil.example', '/dlq?older_than_days=1')).status).toBe(421)
    expect((await raw(port, 'evil.example', '/events')).status).toBe(421)
    expect((await raw(port, null)).status).toBe(421)
    // Probes address an instance by IP, and health tells nothing.
    expect((await raw(port, 'evil.example', '/health/live')).status).toBe(200)
    // Control: where tokens guard the API (development with tokens, production), any Host is fine.
    const admin = `Authorization: Bearer ${TOKENS.admin}\r\n`
    for (const config of [
      { apiTokens: TOKEN_SETTING },
      { environment: 'production' as const, apiTokens: TOKEN_SETTING },
    ]) {
      const guarded = await listening(config)
      expect(
        (await raw(guarded, 'evil.example', '/queues', admin)).status,
        config.environment ?? 'development',
      ).toBe(200)
      expect((await raw(guarded, 'evil.example', '/queues')).status).toBe(401)
    }
  })

  it('ALLOWED_HOSTS adds names (and then applies in production too); * lets any Host in', async () => {
    const listed = await listening({ allowedHosts: ['dtq.lan', '*.corp.example'] })
    for (const [host, status] of [
      ['dtq.lan', 200],
      ['DTQ.LAN:8000', 200],
      ['a.corp.example', 200],
      ['localhost', 200],
      ['corp.example', 421],
      ['dtq.lan.evil.example', 421],
      ['evil.example', 421],
    ] as const) {
      expect((await raw(listed, host)).status, host).toBe(status)
    }
    const anyHost = await listening({ allowedHosts: ['*'] })
    expect((await raw(anyHost, 'evil.example')).status).toBe(200)
    const production = await listening({
      environment: 'production',
      apiTokens: TOKEN_SETTING,
      allowedHosts: ['dtq.example.com'],
    })
    const admin = `Authorization: Bearer ${TOKENS.admin}\r\n`
    expect((await raw(production, 'dtq.example.com', '/queues', admin)).status).toBe(200)
    expect((await raw(production, 'evil.example', '/queues', admin)).status).toBe(421)
    expect((await raw(production, '10.0.1.20:8000', '/health/ready')).status).toBe(200)
  })

  it('ALLOWED_HOSTS takes auto, * or host names; the guard reads the name a Host header carries', () => {
    expect(loadConfig({}).allowedHosts).toEqual(['auto'])
    expect(loadConfig({ ALLOWED_HOSTS: 'dtq.lan, *.corp.example,[::1]' }).allowedHosts).toEqual([
      'dtq.lan',
      '*.corp.example',
      '[::1]',
    ])
    for (const bad of ['evil.example/x', 'a b', 'user@host', 'host:80', 'a.*.example']) {
      expect(() => loadConfig({ ALLOWED_HOSTS: bad }), bad).toThrow(/ALLOWED_HOSTS/)
    }
    // The name a Host header carries, as the guard reads it.
    expect(hostName('LocalHost:8000')).toBe('localhost')
    expect(hostName('[::1]:8000')).toBe('[::1]')
    expect(hostName('localhost.')).toBe('localhost')
    for (const bad of [undefined, '', 'a b', 'evil@localhost', 'localhost:80:80', '::1', 'host/path']) {
      expect(hostName(bad), String(bad)).toBeNull()
    }
  })
})
