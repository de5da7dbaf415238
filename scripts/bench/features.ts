/**
 * DTQ with its features configured, for the drain and producer + worker scenarios of `pnpm
 * bench`: tracing on (the OpenTelemetry SDK exporting OTLP http/protobuf to a local sink that
 * accepts and discards), a queue rate limit and a fleet-wide concurrency cap set far above what
 * the run reaches (so they gate every job without ever holding one), and the history archiver (a
 * `dtq archiver` process writing to a database of its own on the machine's PostgreSQL).
 *
 * Without PostgreSQL a smoke run goes on without the archiver (and says so); a full run fails.
 * BENCH_FEATURES=tracing,rate,cap,archiver (a subset) configures only those: what each costs.
 */
import type { ChildProcess } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Queue as DtqQueue } from '@dtq/app'
import { disableTracing, enableTracing, startTracing, stopTracing } from '../../app/src/tracing/index.ts'
import { SMOKE, sleep, spawnDtq, stopChild } from './bench-kit.ts'
import { createDatabase, type Db } from './pg.ts'

export interface Features {
  /** What is on, for the report. */
  label: string
  /** On a fresh, registered queue: limits set, an archiver switched on, tracing enabled. */
  prepare: (q: DtqQueue, env: Record<string, string>) => Promise<void>
  /** Tracing off again, the archiver stopped. */
  release: () => Promise<void>
  close: () => Promise<void>
}

const LIMITS = { rate: { limit: 1_000_000, window_ms: 1000 }, concurrency: 1_000_000 }
const ALL = ['tracing', 'rate', 'cap', 'archiver']
const ON = new Set((process.env.BENCH_FEATURES ?? ALL.join(',')).split(',').filter((f) => f))
for (const f of ON)
  if (!ALL.includes(f)) throw new Error(`BENCH_FEATURES: unknown feature ${f} (${ALL.join(', ')})`)

/** A local OTLP receiver that answers 200 and discards, set as OTEL_EXPORTER_OTLP_ENDPOINT. */
export async function otlpSink(): Promise<Server> {
  const sink = createServer((req, res) => {
    req.resume()
    req.on('end', () => res.writeHead(200).end())
  })
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r))
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`
  return sink
}

export async function startFeatures(): Promise<Features> {
  const sink = await otlpSink()
  await startTracing({ serviceName: 'dtq-bench', redisSpans: false })
  disableTracing() // on only for the runs with features

  let db: Db | null = null
  if (ON.has('archiver'))
    try {
      db = await createDatabase()
    } catch (err) {
      if (!SMOKE) throw new Error(`features: no PostgreSQL for the archiver (${(err as Error).message})`)
      process.stderr.write(
        `features: no PostgreSQL (${(err as Error).message}): smoke run without the archiver\n`,
      )
    }
  let archiver: ChildProcess | undefined
  let runs = 0
  const release = async () => {
    disableTracing()
    if (archiver) await stopChild(archiver)
    archiver = undefined
  }
  const limits = {
    ...(ON.has('rate') ? { rate: LIMITS.rate } : {}),
    ...(ON.has('cap') ? { concurrency: LIMITS.concurrency } : {}),
  }
  const label = [
    ON.has('tracing') && 'tracing on (OTLP to a local sink)',
    limits.rate && `rate ${LIMITS.rate.limit}/s`,
    limits.concurrency && `cap ${LIMITS.concurrency}`,
    db && 'archiver',
  ].filter((x) => x)
  return {
    label: label.join(', ') || 'nothing configured',
    async prepare(q, env) {
      // Registers the queue (the archiver finds it), with the limits asked for.
      if (Object.keys(limits).length) await q.setLimits('default', limits)
      else await q.store.registerQueue('default')
      if (db) {
        archiver = spawnDtq(
          ['archiver'],
          { ...env, DATABASE_URL: db.url, HISTORY_SCHEMA: `b${runs++}` },
          'ignore',
        )
        while (!(await q.redis.exists(q.store.keys.archiveOn('default')))) {
          if (archiver.exitCode !== null) throw new Error(`dtq archiver exited with ${archiver.exitCode}`)
          await sleep(20)
        }
      }
      if (ON.has('tracing')) await enableTracing()
    },
    release,
    async close() {
      await release()
      await stopTracing()
      sink.close()
      await db?.drop()
    },
  }
}
