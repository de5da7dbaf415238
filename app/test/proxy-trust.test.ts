/**
 * The client address behind the shipped proxies (issue 15, item 4). Each deployment's
 * TRUST_PROXY is read from its own file and tried against the chain that deployment really has:
 * compose and Kubernetes through the real nginx from nginx.conf (clients on distinct loopback
 * addresses), Render and an ALB by the X-Forwarded-For they append. In each, a client that rotates
 * what it writes in X-Forwarded-For still meets the rate limit, and another client does not.
 */

import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { parse, parseAllDocuments } from 'yaml'
import { ConfigError, loadConfig } from '../src/config.ts'
import { clientNetwork } from '../src/http/client-address.ts'
import { freePort } from '../src/redis/local-server.ts'
import { type ApiBundle, apiSetup, bearer, TOKEN_SETTING, TOKENS } from './api-helpers.ts'
import { fakeConsole, ROOT, startNginx } from './nginx.ts'

const read = (p: string) => readFileSync(join(ROOT, p), 'utf8')

/** TRUST_PROXY as each deployment ships it. */
const SHIPPED = {
  compose: () =>
    (
      parse(read('docker/docker-compose.yml'), { merge: true }) as {
        services: { api: { environment: Record<string, string> } }
      }
    ).services.api.environment.TRUST_PROXY,
  k8s: () =>
    parseAllDocuments(read('docker/k8s/config.yaml'))
      .map((d) => d.toJS())
      .find((d) => d.kind === 'ConfigMap').data.TRUST_PROXY as string,
  render: () =>
    (
      parse(read('render.yaml')) as {
        services: Array<{ name: string; envVars?: Array<{ key: string; value?: string }> }>
      }
    ).services
      .find((s) => s.name === 'dtq-api')
      ?.envVars?.find((e) => e.key === 'TRUST_PROXY')?.value,
  ec2: () => /^Environment=TRUST_PROXY=(\S+)$/m.exec(read('scripts/deploy/dtq-api.service'))?.[1],
}

const open: Array<{ cleanup(): unknown }> = []
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c.cleanup()
})

/** A production API (tokens on) allowing `limit` requests per client per minute. */
async function api(trustProxy: string | undefined, limit = 5): Promise<ApiBundle> {
  const b = await apiSetup({
    environment: 'production',
    apiTokens: TOKEN_SETTING,
    rateLimitPerMin: limit,
    trustProxy: trustProxy ?? 'false',
  })
  open.push(b)
  return b
}

/** GET over a fresh connection from a chosen local address (a distinct client to nginx). */
function get(url: string, from: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { localAddress: from, agent: false, headers: { ...bearer('read'), ...headers } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

describe('TRUST_PROXY', () => {
  it('ships the number of proxies each deployment has in front of the API, and production refuses true', () => {
    expect({
      compose: SHIPPED.compose(),
      k8s: SHIPPED.k8s(),
      render: SHIPPED.render(),
      ec2: SHIPPED.ec2(),
    }).toEqual({ compose: '1', k8s: '1', render: '2', ec2: '1' })
    const prod = (v: string) =>
      loadConfig({ ENVIRONMENT: 'production', API_TOKENS: TOKEN_SETTING, TRUST_PROXY: v })
    for (const v of ['false', '1', '2', '10.0.0.0/16, 10.1.0.0/16', '127.0.0.1,::1', 'loopback,uniquelocal'])
      expect(prod(v).trustProxy).toBe(v)
    expect(() => prod('true')).toThrow(ConfigError)
    expect(() => prod('true')).toThrow(/TRUST_PROXY=true .*number of proxies/)
    // Trusting everything stays possible on a laptop.
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe('true')
    for (const bad of ['yes', '10.0.0.0/33', '10.0.0.300', '99', '1.2.3.4/8/1', 'fe80::/129']) {
      expect(() => loadConfig({ TRUST_PROXY: bad }), bad).toThrow(/TRUST_PROXY/)
    }
  })

  for (const deployment of ['compose', 'k8s'] as const) {
    it(`${deployment}: through the shipped nginx, rotating X-Forwarded-For does not dodge the rate limit`, async () => {
      const b = await api(SHIPPED[deployment]())
      const port = await freePort()
      await b.app.listen({ port, host: '127.0.0.1' })
      const web = await startNginx({ upstreams: [port], root: fakeConsole().dir })
      open.push({ cleanup: () => web.stop() })
      const url = `${web.url}/api/queues`
      const codes: number[] = []
      for (let i = 0; i < 6; i++)
        codes.push(await get(url, '127.0.0.2', { 'x-forwarded-for': `198.51.100.${i}` }))
      expect(codes).toEqual([200, 200, 200, 200, 200, 429])
      // Another client (another address, as nginx sees it) has its own count.
      expect(await get(url, '127.0.0.3')).toBe(200)
      expect(await get(url, '127.0.0.3', { 'x-forwarded-for': '127.0.0.2' })).toBe(200)
    })
  }

  it('nginx behind a load balancer (set_real_ip_from, as documented): the client is the entry the balancer appended', async () => {
    const b = await api(SHIPPED.compose())
    const port = await freePort()
    await b.app.listen({ port, host: '127.0.0.1' })
    const LB = '127.0.0.4'
    const web = await startNginx({
      upstreams: [port],
      root: fakeConsole().dir,
      edit: (conf) => {
        const out = conf.replace('# set_real_ip_from 10.0.0.0/16;', `set_real_ip_from ${LB};`)
        expect(out).not.toBe(conf)
        return out
      },
    })
    open.push({ cleanup: () => web.stop() })
    const url = `${web.url}/api/queues`
    // The balancer appends the client it saw to whatever the client sent.
    const viaLb = (client: string, sent: string) => get(url, LB, { 'x-forwarded-for': `${sent}, ${client}` })
    const codes: number[] = []
    for (let i = 0; i < 6; i++) codes.push(await viaLb('203.0.113.7', `198.51.100.${i}`))
    expect(codes).toEqual([200, 200, 200, 200, 200, 429])
    expect(await viaLb('203.0.113.8', '203.0.113.7')).toBe(200)
    // A client reaching nginx without the balancer is not believed: it is its own address.
    const direct: number[] = []
    for (let i = 0; i < 6; i++)
      direct.push(await get(url, '127.0.0.5', { 'x-forwarded-for': `203.0.113.${20 + i}` }))
    expect(direct).toEqual([200, 200, 200, 200, 200, 429])
  })

  it('Render (Cloudflare, then its proxy) and an ALB: the shipped hop count takes the entry the platform appended', async () => {
    const chains = {
      // Observed on Render: the socket's peer is Render's proxy (10.x); X-Forwarded-For ends with
      // the client as Cloudflare saw it, then the Cloudflare edge that Render's proxy saw.
      render: {
        peer: '10.21.157.68',
        xff: (sent: string, client: string) => `${sent}, ${client}, 104.22.17.40`,
      },
      // The ALB ("append" mode) is the peer and appends the client it saw.
      ec2: { peer: '10.0.1.20', xff: (sent: string, client: string) => `${sent}, ${client}` },
    }
    for (const [name, chain] of Object.entries(chains)) {
      const b = await api(SHIPPED[name as keyof typeof chains]())
      const call = (client: string, sent: string) =>
        b.app
          .inject({
            method: 'GET',
            url: '/queues',
            remoteAddress: chain.peer,
            headers: { ...bearer('read'), 'x-forwarded-for': chain.xff(sent, client) },
          })
          .then((r) => r.statusCode)
      const codes: number[] = []
      for (let i = 0; i < 6; i++) codes.push(await call('203.0.113.5', `198.51.100.${i}`))
      expect(codes, name).toEqual([200, 200, 200, 200, 200, 429])
      expect(await call('203.0.113.6', '203.0.113.5'), name).toBe(200)
    }
  })

  it('counts an IPv6 client by its /56, an IPv4-mapped address as IPv4, and ignores a port a proxy appended', async () => {
    const b = await api('1')
    const call = (address: string) =>
      b.app
        .inject({
          method: 'GET',
          url: '/queues',
          remoteAddress: '10.0.0.2',
          headers: { authorization: `Bearer ${TOKENS.read}`, 'x-forwarded-for': address },
        })
        .then((r) => r.statusCode)
    const rotate = async (addresses: string[]) => {
      const codes: number[] = []
      for (const a of addresses) codes.push(await call(a))
      return codes
    }
    // Six addresses of one subscriber's /56 (2001:db8:0:1:: … 2001:db8:0:ff::).
    expect(await rotate(['1', '2', '3', '4', '5', '6'].map((n) => `2001:db8:0:${n}::${n}`))).toEqual([
      200, 200, 200, 200, 200, 429,
    ])
    expect(await call('2001:db8:0:100::1')).toBe(200)
    expect(
      await rotate([
        '192.0.2.1',
        '::ffff:192.0.2.1',
        '::ffff:c000:201',
        '192.0.2.1:4711',
        '[::ffff:192.0.2.1]:80',
        '192.0.2.1',
      ]),
    ).toEqual([200, 200, 200, 200, 200, 429])
    expect(await call('192.0.2.2')).toBe(200)
    // The unit a client is counted by.
    expect(clientNetwork('203.0.113.9')).toBe('203.0.113.9')
    expect(clientNetwork('203.0.113.9:51234')).toBe('203.0.113.9')
    expect(clientNetwork('::ffff:203.0.113.9')).toBe('203.0.113.9')
    expect(clientNetwork('2001:db8:aa:bbcc:1:2:3:4')).toBe('2001:db8:aa:bb00::/56')
    expect(clientNetwork('[2001:db8::1]:443')).toBe('2001:db8:0:0::/56')
    expect(clientNetwork('::1')).toBe('0:0:0:0::/56')
    expect(clientNetwork('2001:db8::192.0.2.1')).toBe('2001:db8:0:0::/56')
    expect(clientNetwork('not-an-address')).toBe('not-an-address')
  })
})
