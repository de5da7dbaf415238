/**
 * What a browser gets (issue 15, items 5 and 14): the security headers on every location of the
 * shipped nginx — once each, errors included — and the same on the console `dtq dev` serves;
 * /docs with a CSP under which swagger-ui still renders (Chromium, with a negative control);
 * `dtq dev`'s error answers naming only the URL the client sent.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer, request } from 'node:http'
import { Socket } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { buildApp } from '../src/http/app.ts'
import { CONSOLE_CSP } from '../src/http/console.ts'
import { createRedis, redisTarget } from '../src/redis/connection.ts'
import { freePort } from '../src/redis/local-server.ts'
import { apiSetup, bearer, TOKEN_SETTING } from './api-helpers.ts'
import { setup } from './helpers.ts'
import { fakeConsole, NGINX_CONF, ROOT, startNginx } from './nginx.ts'

const SECURITY: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'SAMEORIGIN',
  'referrer-policy': 'no-referrer',
  'content-security-policy': CONSOLE_CSP,
}
const IMMUTABLE = 'public, max-age=31536000, immutable'

const open: Array<{ cleanup(): unknown }> = []
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c.cleanup()
})

/** A production API (tokens on) listening on a free port. */
async function productionApi(): Promise<string> {
  const b = await apiSetup({ environment: 'production', apiTokens: TOKEN_SETTING })
  open.push(b)
  const port = await freePort()
  await b.app.listen({ port, host: '127.0.0.1' })
  return `http://127.0.0.1:${port}`
}

/** `dtq dev`'s app: no tokens, development, the console served from `dir`. */
async function devApi(dir: string): Promise<string> {
  const b = await setup({ config: { rateLimitPerMin: 0 } })
  const blocking = createRedis({ target: redisTarget(b.config), commandTimeoutMs: 4000, blocking: true })
  const app = await buildApp({ config: b.config, queue: b.queue, blocking, consoleDir: dir })
  open.push({
    async cleanup() {
      await app.close()
      blocking.disconnect()
      await b.cleanup()
    },
  })
  const port = await freePort()
  await app.listen({ port, host: '127.0.0.1' })
  return `http://127.0.0.1:${port}`
}

/** Status and headers of a GET (the body is not waited for: /api/events never ends). */
async function head(url: string, headers: Record<string, string> = {}) {
  const ctl = new AbortController()
  const r = await fetch(url, { headers, signal: ctl.signal, redirect: 'manual' })
  ctl.abort()
  return { status: r.status, headers: r.headers }
}

/** Renders /docs in Chromium: did swagger-ui draw the API's title, and what did the console say about CSP? */
async function renderDocs(url: string): Promise<{ rendered: boolean; violations: string[] }> {
  const { stdout, stderr } = await promisify(execFile)(
    'chromium',
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--enable-logging=stderr',
      '--v=0',
      '--virtual-time-budget=10000',
      '--dump-dom',
      url,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  )
  return {
    rendered: /<h1 class="title">DTQ API/.test(stdout),
    violations: stderr.split('\n').filter((l) => l.includes('Content Security Policy')),
  }
}

describe('the shipped nginx', () => {
  it('sends the security headers, once each, on every location — console, assets, API, docs, SSE, errors', async () => {
    const api = await productionApi()
    const ui = fakeConsole()
    const web = await startNginx({ upstreams: [Number(new URL(api).port)], root: ui.dir })
    open.push({ cleanup: () => web.stop() })
    const html = { accept: 'text/html' }
    const auth = bearer('read')
    // [path, request headers, status, cache-control: 'api' = whatever the API itself sends]
    const cases: Array<[string, Record<string, string>, number, string | null]> = [
      ['/', html, 200, 'no-cache'],
      ['/index.html', html, 200, 'no-cache'],
      ['/jobs/some-id', html, 200, 'no-cache'], // an SPA route
      ['/events', html, 200, 'no-cache'], // the console's, not the API's
      [ui.asset, {}, 200, IMMUTABLE],
      ['/assets/missing-4b1e.js', {}, 404, null],
      ['/api/queues', auth, 200, 'api'],
      ['/api/queues', {}, 401, 'api'],
      ['/api/no-such-route', bearer('admin'), 404, 'api'],
      ['/api/events', auth, 200, 'api'],
      ['/docs', {}, 200, 'api'],
      ['/docs/static/swagger-ui.css', {}, 200, 'api'],
      ['/openapi.json', {}, 200, 'api'],
      ['/health/live', {}, 200, 'api'],
      ['/health/ready', {}, 200, 'api'],
      ['/metrics', auth, 200, 'api'],
    ]
    for (const [path, headers, status, cache] of cases) {
      const r = await head(`${web.url}${path}`, headers)
      expect(r.status, path).toBe(status)
      for (const [name, value] of Object.entries(SECURITY))
        expect(r.headers.get(name), `${path} ${name}`).toBe(value)
      const apiPath = path.replace(/^\/api\//, '/')
      const expected =
        cache === 'api' ? (await head(`${api}${apiPath}`, headers)).headers.get('cache-control') : cache
      expect(r.headers.get('cache-control'), `${path} cache-control`).toBe(expected)
    }
    // An error nginx makes itself: a body above client_max_body_size.
    const raw = await rawRequest(
      web.url,
      'POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 6000000\r\nConnection: close\r\n\r\n',
    )
    expect(raw.status).toBe(413)
    for (const [name, value] of Object.entries(SECURITY))
      expect(raw.headers[name], `413 ${name}`).toEqual([value])
  })

  it('sends the console CSP that dtq dev and /docs send, and Render sends it too (with the API origin)', () => {
    const conf = readFileSync(NGINX_CONF, 'utf8')
    const csp = /map \$upstream_http_content_security_policy \$dtq_csp \{\s*""\s*"([^"]+)";/.exec(conf)?.[1]
    expect(csp).toBe(CONSOLE_CSP)
    // No location has an add_header of its own (it would drop every server-level one there).
    for (const loc of conf.split(/\n\s*location /).slice(1))
      expect(loc.split('}')[0]).not.toMatch(/add_header/)
    const render = parse(readFileSync(join(ROOT, 'render.yaml'), 'utf8')) as {
      services: Array<{ name: string; headers?: Array<{ path: string; name: string; value: string }> }>
    }
    const site = render.services.find((s) => s.name === 'dtq-console')!
    const all = Object.fromEntries(
      (site.headers ?? []).filter((h) => h.path === '/*').map((h) => [h.name.toLowerCase(), h.value]),
    )
    expect(all).toEqual({
      ...SECURITY,
      'content-security-policy': CONSOLE_CSP.replace(
        "connect-src 'self'",
        "connect-src 'self' https://dtq-api.onrender.com",
      ),
    })
  })
})

describe('/docs', () => {
  it('has the console CSP in production, and swagger-ui renders under it, directly and through nginx (Chromium)', async () => {
    const api = await productionApi()
    for (const path of ['/docs', '/docs/', '/docs/static/swagger-initializer.js', '/docs/json']) {
      expect((await head(`${api}${path}`)).headers.get('content-security-policy'), path).toBe(CONSOLE_CSP)
    }
    const web = await startNginx({ upstreams: [Number(new URL(api).port)], root: fakeConsole().dir })
    open.push({ cleanup: () => web.stop() })
    for (const base of [api, web.url]) {
      expect(await renderDocs(`${base}/docs/`), base).toEqual({ rendered: true, violations: [] })
    }
    // Negative control: the same page under a CSP that blocks its scripts renders nothing, and says why.
    const port = await freePort()
    const strict = createServer((req, res) => {
      const up = request(`${api}${req.url}`, { method: req.method, headers: req.headers }, (u) => {
        res.writeHead(u.statusCode ?? 502, { ...u.headers, 'content-security-policy': "script-src 'none'" })
        u.pipe(res)
      })
      req.pipe(up)
    })
    await new Promise<void>((r) => strict.listen(port, '127.0.0.1', r))
    open.push({ cleanup: () => new Promise((r) => strict.close(r)) })
    const blocked = await renderDocs(`http://127.0.0.1:${port}/docs/`)
    expect(blocked.rendered).toBe(false)
    expect(blocked.violations.length).toBeGreaterThan(0)
  })
})

describe('dtq dev (the console without nginx)', () => {
  it('serves the console with the headers nginx gives it', async () => {
    const ui = fakeConsole()
    const dev = await devApi(ui.dir)
    const web = await startNginx({ upstreams: [Number(new URL(dev).port)], root: ui.dir })
    open.push({ cleanup: () => web.stop() })
    const html = { accept: 'text/html' }
    for (const [path, headers] of [
      ['/', html],
      ['/index.html', html],
      ['/jobs/some-id', html],
      [ui.asset, {}],
      ['/assets/missing-4b1e.js', {}],
    ] as const) {
      const [viaNginx, direct] = [
        await head(`${web.url}${path}`, headers),
        await head(`${dev}${path}`, headers),
      ]
      expect(direct.status, path).toBe(viaNginx.status)
      for (const name of [...Object.keys(SECURITY), 'cache-control']) {
        expect(direct.headers.get(name), `${path} ${name}`).toBe(viaNginx.headers.get(name))
      }
    }
  })

  it('answers errors in terms of the URL the client sent, never an internal route', async () => {
    const ui = fakeConsole()
    const dev = await devApi(ui.dir)
    const cases: Array<[string, string, Record<string, string>, number]> = [
      ['POST', ui.asset, {}, 404],
      ['DELETE', '/assets/x.js', {}, 404],
      ['GET', '/assets/missing-4b1e.js', {}, 404],
      ['GET', '/%E0%A4%A', { accept: 'text/html' }, 400],
      ['GET', '/api/no-such-route', {}, 404],
    ]
    for (const [method, path, headers, status] of cases) {
      const r = await fetch(`${dev}${path}`, { method, headers })
      const body = await r.text()
      expect(r.status, `${method} ${path}`).toBe(status)
      expect(r.headers.get('content-type'), `${method} ${path}`).toMatch(/^application\/json/)
      expect(body, `${method} ${path}`).not.toMatch(/__console/)
    }
    const r = await fetch(`${dev}/assets/x.js`, { method: 'POST' })
    expect(((await r.json()) as { message: string }).message).toBe('no route POST /assets/x.js')
  })
})

/** One raw HTTP request: the answer's status and header lines, repeated ones kept apart. */
function rawRequest(
  base: string,
  text: string,
): Promise<{ status: number; headers: Record<string, string[]> }> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const s = new Socket()
    let data = ''
    s.on('error', reject)
    // Done at the end of the headers (nginx would linger for the body it refused).
    s.on('data', (d) => {
      data += d
      if (!data.includes('\r\n\r\n')) return
      s.destroy()
      const [statusLine = '', ...lines] = data.split('\r\n\r\n')[0]!.split('\r\n')
      const headers: Record<string, string[]> = {}
      for (const l of lines) {
        const i = l.indexOf(':')
        const name = l.slice(0, i).trim().toLowerCase()
        headers[name] = [...(headers[name] ?? []), l.slice(i + 1).trim()]
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers })
    })
    s.connect(Number(port), hostname, () => s.write(text))
  })
}
