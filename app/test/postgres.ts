/**
 * PostgreSQL for the history tests (ADR 0027): a database of their own on the machine's server
 * (127.0.0.1:5432, trust auth; PG_ADMIN_URL to point elsewhere), created per run and dropped
 * after -- never another database -- and, for outages, a private server on a free port in a temp
 * dir (Debian's initdb / pg_ctl, run as the `postgres` user when the tests run as root) that a
 * test may stop and start.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'

/** The machine's PostgreSQL (these machines run one, trust auth, database `test`). */
const MACHINE_PG = 'postgres://postgres@127.0.0.1:5432/test'
export const PG_ADMIN_URL = process.env.PG_ADMIN_URL ?? MACHINE_PG
const PG_BIN = '/usr/lib/postgresql/15/bin'

export interface TestDatabase {
  url: string
  name: string
  drop(): Promise<void>
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url)
  u.pathname = `/${db}`
  return u.toString()
}

/** A fresh database `dtq_test_<random>` on the server at `adminUrl`. */
export async function createTestDatabase(adminUrl = PG_ADMIN_URL): Promise<TestDatabase> {
  const name = `dtq_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  return {
    url: withDatabase(adminUrl, name),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl })
      await c.connect()
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await c.end()
      }
    },
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

export const hasPrivatePostgres = () => existsSync(`${PG_BIN}/initdb`)

/** A private PostgreSQL server (trust auth) that a test can stop and start. */
export class PrivatePostgres {
  readonly dir: string
  readonly port: number
  readonly url: string
  private readonly asUser: string[]

  private constructor(dir: string, port: number) {
    this.dir = dir
    this.port = port
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`
    this.asUser = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : []
  }

  static async create(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'dtq-pg-'))
    const p = new PrivatePostgres(dir, await freePort())
    if (process.getuid?.() === 0) {
      chownSync(
        dir,
        Number(execFileSync('id', ['-u', 'postgres']).toString()),
        Number(execFileSync('id', ['-g', 'postgres']).toString()),
      )
      chmodSync(dir, 0o700)
    }
    p.exec('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8'])
    await p.start()
    return p
  }

  private exec(bin: string, args: string[]): void {
    const [cmd, ...rest] = [...this.asUser, `${PG_BIN}/${bin}`, ...args]
    const r = spawnSync(cmd!, rest, { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`${bin} failed: ${r.stderr || r.stdout}`)
  }

  async start(): Promise<void> {
    this.exec('pg_ctl', [
      '-D',
      join(this.dir, 'data'),
      '-l',
      join(this.dir, 'log'),
      '-w',
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      'start',
    ])
  }

  /** Stops the server at once (connections cut, like a crash of the database host). */
  async stop(): Promise<void> {
    this.exec('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'immediate', '-w', 'stop'])
  }

  async destroy(): Promise<void> {
    try {
      await this.stop()
    } catch {}
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/**
 * For the test runs' global setups: the machine's PostgreSQL when it answers; else (and no
 * PG_ADMIN_URL given) a private server for the whole run, whose address goes to PG_ADMIN_URL for
 * every process started after (the test workers, the stack). A fresh machine with Debian's
 * postgresql package but no server running (or none set to trust) still runs the history tests.
 * Returns what stops it, or null when nothing was started.
 */
export async function ensureTestPostgres(): Promise<(() => Promise<void>) | null> {
  if (process.env.PG_ADMIN_URL) return null
  const probe = new pg.Client({ connectionString: MACHINE_PG, connectionTimeoutMillis: 3000 })
  probe.on('error', () => {})
  try {
    await probe.connect()
    await probe.end()
    return null
  } catch {
    await probe.end().catch(() => {})
  }
  if (!hasPrivatePostgres()) return null // the history tests then fail, saying they cannot connect
  const server = await PrivatePostgres.create()
  process.env.PG_ADMIN_URL = server.url
  return () => server.destroy()
}
