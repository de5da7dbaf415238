/**
 * The history archiver's block of /metrics (ADR 0027, 0031), appended by the /metrics route: per
 * queue where archiving is on (or entries remain), the archive entries not yet written to
 * PostgreSQL (one per finishing call) and how long ago the oldest unarchived job ended (now minus
 * the watermark; 0 when everything is archived). Read from Redis at scrape time, O(1) per queue:
 * the alert "archive falling behind" (docker/prometheus/rules/archive.rules.yml) watches the age.
 */
import type { StoreBase } from '../redis/store-base.ts'

export interface ArchiveBacklog {
  queue: string
  entries: number
  /** Seconds since the oldest unarchived job ended (0: none). */
  oldestAgeS: number
}

/** Each archived queue's backlog (one pipeline per queue: its keys share a slot). */
export async function archiveBacklogs(
  store: StoreBase,
  queues: string[],
  now: number,
): Promise<ArchiveBacklog[]> {
  const out = await Promise.all(
    queues.map(async (queue) => {
      const res = (await store.redis
        .pipeline()
        .exists(store.keys.archiveOn(queue))
        .zcard(store.keys.archiveAt(queue))
        .zrange(store.keys.archiveAt(queue), 0, 0, 'WITHSCORES')
        .exec()) as Array<[Error | null, unknown]>
      for (const [err] of res) if (err) throw err
      const on = res[0]![1] === 1
      const entries = Number(res[1]![1])
      const low = (res[2]![1] as string[])[1]
      if (!on && entries === 0) return null
      const oldestAgeS = low === undefined ? 0 : Math.max(0, (now - Number(low)) / 1000)
      return { queue, entries, oldestAgeS }
    }),
  )
  return out.filter((x): x is ArchiveBacklog => x !== null)
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')

export async function archiveMetrics(store: StoreBase, queues: string[], now: number): Promise<string> {
  const rows = await archiveBacklogs(store, queues, now)
  if (rows.length === 0) return ''
  const lines = [
    '# HELP dtq_archive_backlog Archive entries not yet written to PostgreSQL (one per finishing call), per archived queue.',
    '# TYPE dtq_archive_backlog gauge',
    ...rows.map((r) => `dtq_archive_backlog{queue="${esc(r.queue)}"} ${r.entries}`),
    '# HELP dtq_archive_oldest_age_seconds How long ago the oldest job not yet archived ended (0: all archived).',
    '# TYPE dtq_archive_oldest_age_seconds gauge',
    ...rows.map((r) => `dtq_archive_oldest_age_seconds{queue="${esc(r.queue)}"} ${r.oldestAgeS.toFixed(3)}`),
  ]
  return `${lines.join('\n')}\n`
}
