/**
 * A database of its own on the machine's PostgreSQL for a bench (PG_ADMIN_URL, default
 * postgres://postgres@127.0.0.1:5432/test), dropped after it.
 */
import { randomBytes } from 'node:crypto'
import { createPool } from '../../app/src/history/db.ts'

export const PG_ADMIN_URL = process.env.PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

export interface Db {
  url: string
  name: string
  admin: ReturnType<typeof createPool>
  drop: () => Promise<void>
}

export async function createDatabase(): Promise<Db> {
  const name = `dtq_bench_${randomBytes(5).toString('hex')}`
  const admin = createPool(PG_ADMIN_URL, 1)
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } catch (err) {
    await admin.end()
    throw err
  }
  const u = new URL(PG_ADMIN_URL)
  u.pathname = `/${name}`
  const drop = async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
  }
  return { url: u.toString(), name, admin, drop }
}

export async function withDatabase<T>(fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await createDatabase()
  try {
    return await fn(db)
  } finally {
    await db.drop()
  }
}
