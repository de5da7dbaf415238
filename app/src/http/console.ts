/**
 * For the one-process laptop mode (`dtq dev`): the built console and the API on one port, the
 * way nginx arranges them in production. `/api/*` is the API (prefix stripped); browser
 * navigations (Accept: text/html) and `/assets/*` get the console, with index.html for any
 * path the SPA routes itself; everything else is the API as usual. The console's files carry
 * the headers nginx gives them (the API's security headers, CONSOLE_CSP, the same caching), and
 * a missing asset is a 404, as behind nginx.
 */
import { readFile, stat } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import { extname, join, resolve, sep } from 'node:path'
import type { FastifyInstance } from 'fastify'

/**
 * The console's Content-Security-Policy, also swagger-ui's (/docs). nginx.conf sends the same
 * string (a test holds them equal): same-origin scripts, styles, API calls and frames only.
 */
export const CONSOLE_CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'self'; base-uri 'self'; form-action 'self'"

const CONSOLE = '/__console'
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
}

/** URL rewriting for buildApp's rewriteUrl when the console is served too. */
export function consoleRewrite(req: IncomingMessage): string {
  const url = req.url ?? '/'
  if (url.startsWith('/api/')) return url.slice(4)
  // Only reads of well-formed URLs: anything else meets the API's own 404 or 400, which then
  // names the URL the client sent, never the internal route.
  if ((req.method !== 'GET' && req.method !== 'HEAD') || !decodable(url)) return url
  const isPage = String(req.headers.accept ?? '').includes('text/html') && !url.startsWith('/docs')
  if (isPage || url.startsWith('/assets/') || url === '/favicon.ico') return `${CONSOLE}${url}`
  return url
}

function decodable(url: string): boolean {
  try {
    decodeURIComponent(url)
    return true
  } catch {
    return false
  }
}

export async function serveConsole(app: FastifyInstance, distDir: string): Promise<void> {
  const root = resolve(distDir)
  const index = await readFile(join(root, 'index.html')).catch(() => null)
  app.get(`${CONSOLE}/*`, { config: { role: 'public' }, schema: { hide: true } }, async (req, reply) => {
    const path = decodeURIComponent((req.params as { '*': string })['*'].split('?')[0] ?? '')
    const file = resolve(root, path)
    reply.header('content-security-policy', CONSOLE_CSP)
    if (file.startsWith(root + sep)) {
      const s = await stat(file).catch(() => null)
      if (s?.isFile()) {
        const immutable = path.startsWith('assets/')
        reply.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
        return reply.type(TYPES[extname(file)] ?? 'application/octet-stream').send(await readFile(file))
      }
    }
    // A hashed asset that is not there is not the SPA's business (nginx: try_files $uri =404).
    if (path.startsWith('assets/')) return reply.callNotFound()
    if (!index)
      return reply
        .code(404)
        .type('text/plain')
        .send('The console is not built: run pnpm --filter @dtq/ui build')
    return reply.header('cache-control', 'no-cache').type(TYPES['.html']!).send(index)
  })
}
