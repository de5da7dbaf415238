import { randomBytes } from 'node:crypto'
import { createPool, migrate } from '../../app/src/history/db.ts'
import { ensureTestPostgres } from '../../app/test/postgres.ts'
import { startStack } from './stack'

/**
 * The stack, with a history database of its own (`dtq_e2e_<random>` on the machine's PostgreSQL,
 * PG_ADMIN_URL; dropped after) for the analytics pages: the API gets its DATABASE_URL; the
 * specs that need rows write them (E2E_DATABASE_URL, schema `dtq`).
 */
export default async function globalSetup() {
  // The machine's PostgreSQL, else a private one for the run (sets PG_ADMIN_URL).
  const stopPostgres = await ensureTestPostgres()
  const adminUrl = process.env.PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
  const name = `dtq_e2e_${randomBytes(5).toString('hex')}`
  const admin = createPool(adminUrl, 1)
  await admin.query(`CREATE DATABASE ${name}`)
  const u = new URL(adminUrl)
  u.pathname = `/${name}`
  process.env.E2E_DATABASE_URL = u.toString()
  // The history's tables, as a deployment that ran `dtq archiver` once has them: without them a
  // job Redis no longer holds is a 503 HISTORY_UNAVAILABLE (ADR 0028), not the 404 the specs
  // expect after a delete -- whichever spec happened to create them first decided it before.
  await migrate(u.toString(), 'dtq')
  const stack = await startStack({ env: { DATABASE_URL: u.toString(), HISTORY_SCHEMA: 'dtq' } })
  process.env.E2E_BASE_URL = stack.baseURL
  process.env.E2E_API_URL = stack.apiURL
  process.env.E2E_REDIS_URL = stack.redisURL
  process.env.E2E_STACK_ENV = JSON.stringify(stack.env)
  return async () => {
    await stack.stop()
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
    await stopPostgres?.()
  }
}
