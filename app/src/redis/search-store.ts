/**
 * Redis's part in search (ADR 0029): saved filter presets -- one small hash, capped at
 * MAX_PRESETS names -- and which of a batch of archived jobs still live in Redis (the live copy
 * wins a search's dedupe). Single-key commands only (Cluster-safe: one key per command,
 * autopipelined across slots).
 */
import type { RedisClient } from './connection.ts'
import { Keys } from './keys.ts'

export const MAX_PRESETS = 100
export const MAX_PRESET_BYTES = 4096

export interface StoredPreset {
  name: string
  filters: Record<string, unknown>
  saved_at: number
}

/** HSET unless the hash is full and the name is new: the cap holds under concurrent writers. */
const SAVE_CAPPED = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`

export class SearchStore {
  readonly redis: RedisClient
  readonly keys: Keys

  constructor(redis: RedisClient, prefix: string) {
    this.redis = redis
    this.keys = new Keys(prefix)
  }

  async presets(): Promise<StoredPreset[]> {
    const all = await this.redis.hgetall(this.keys.searchPresets())
    const out: StoredPreset[] = []
    for (const [name, v] of Object.entries(all)) {
      try {
        const p = JSON.parse(v) as { filters: Record<string, unknown>; saved_at: number }
        out.push({ name, filters: p.filters, saved_at: p.saved_at })
      } catch {}
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  /** Saves (or replaces) a preset; false when the hash holds MAX_PRESETS others already. */
  async savePreset(
    name: string,
    filters: Record<string, unknown>,
    now: number,
  ): Promise<{ saved: boolean; created: boolean }> {
    const key = this.keys.searchPresets()
    const existed = (await this.redis.hexists(key, name)) === 1
    const r = await this.redis.eval(
      SAVE_CAPPED,
      1,
      key,
      name,
      JSON.stringify({ filters, saved_at: now }),
      MAX_PRESETS,
    )
    return { saved: r === 1, created: !existed }
  }

  async deletePreset(name: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.searchPresets(), name)) === 1
  }

  /** For each (queue, id), whether its job hash is in Redis (one EXISTS each, pipelined). */
  async live(jobs: ReadonlyArray<{ queue: string; job_id: string }>): Promise<boolean[]> {
    const r = await Promise.all(jobs.map((j) => this.redis.exists(this.keys.job(j.queue, j.job_id))))
    return r.map((n) => n === 1)
  }
}
