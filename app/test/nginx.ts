/**
 * Real nginx from the repository's nginx.conf for tests, as deploy.test.ts's rolling restart runs
 * it: a free port on 127.0.0.1, a console directory of our choosing, the given API instances as
 * the upstream, and optionally one more edit (e.g. the documented load-balancer line). Also a tiny
 * built console (index.html and one hashed asset) for the locations that serve files.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../src/redis/local-server.ts'
import { waitFor } from './helpers.ts'

export const ROOT = new URL('../../', import.meta.url).pathname
export const NGINX_CONF = join(ROOT, 'nginx.conf')

export interface Nginx {
  url: string
  stop(): void
}

export async function startNginx(opts: {
  upstreams: number[]
  root: string
  edit?: (conf: string) => string
}): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'dtq-nginx-'))
  const port = await freePort()
  const conf = readFileSync(NGINX_CONF, 'utf8')
    .replace(/listen 8080;/, `listen 127.0.0.1:${port};`)
    .replace(/root \/usr\/share\/nginx\/html;/, `root ${opts.root};`)
    .replace('access_log /var/log/nginx/access.log;', `access_log ${dir}/access.log;`)
    .replace(
      /server 127\.0\.0\.1:8000 [^;]*;/,
      opts.upstreams.map((p) => `server 127.0.0.1:${p} max_fails=3 fail_timeout=10s;`).join('\n        '),
    )
  writeFileSync(join(dir, 'nginx.conf'), opts.edit ? opts.edit(conf) : conf)
  const user = process.getuid?.() === 0 ? 'user root; ' : ''
  const g = `${user}pid ${dir}/nginx.pid; error_log ${dir}/error.log;`
  const nginx = (...args: string[]) =>
    spawnSync('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', g, ...args], { encoding: 'utf8' })
  const started = nginx()
  if (started.status !== 0) throw new Error(`nginx did not start: ${started.stderr}`)
  const url = `http://127.0.0.1:${port}`
  await waitFor(async () => (await fetch(`${url}/health/live`).catch(() => null))?.ok === true, {
    what: 'nginx up',
  })
  return { url, stop: () => nginx('-s', 'quit') }
}

/** A built console in miniature: what nginx and `dtq dev` serve from ui/dist. */
export function fakeConsole(): { dir: string; asset: string } {
  const dir = mkdtempSync(join(tmpdir(), 'dtq-console-'))
  mkdirSync(join(dir, 'assets'))
  const asset = '/assets/index-3f2a1b.js'
  writeFileSync(
    join(dir, 'index.html'),
    `<!doctype html><html><head><title>DTQ console</title><script type="module" src="${asset}"></script></head><body><div id="root"></div></body></html>`,
  )
  writeFileSync(join(dir, asset), 'document.getElementById("root").textContent = "console"\n')
  return { dir, asset }
}
