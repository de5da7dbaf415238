/**
 * Flow control under kill -9 (ADR 0022, issue 19): real `dtq worker` processes, killed -9 and
 * restarted, run the `fcledger` handler, which writes each run's start and end (job id, pid,
 * attempt, Redis start time, partition key) to a ledger file OUTSIDE Redis. The checks read the
 * ledger only (the breaker's opening times are also read from Redis, to say when it opened):
 *   1. a fleet-wide cap of 5 is never exceeded, and the slots of killed workers come back;
 *   2. FIFO per partition key (key_concurrency 1) holds with failures and kills;
 *   3. a rate of 50/s holds within ±5 % over a minute (over 20 s in the default suite: at most
 *      +5 %, at least −10 % -- see the test);
 *   4. a breaker opens after 3 consecutive failures, stays open for its cool-down, lets one probe
 *      at a time through, and closes.
 * Each also runs without its limit (the NEGATIVE CONTROL) and the same checker must then see the
 * violation.
 *
 * THE RULE FOR KILLED RUNS: a run of a killed process has no end line. It is taken to have ended
 * when the test saw the process exit (after SIGKILL): that is when it stopped running. Its job
 * still holds its slots in Redis until the reclaimer takes it back, so counting the run as live
 * up to the exit is exact for "running", and its re-run (a new attempt) starts only after the
 * reclaim. Overlaps are counted among live runs only.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config.ts'
import type { LimitsSpec } from '../../src/queue/limits.ts'
import { Queue } from '../../src/queue/queue.ts'
import { maxOverlap, targetEnv, waitFor } from '../helpers.ts'
import { FULL, type Proc, Q, RedisServer, report, System } from './harness.ts'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const TYPE = 'fcledger'
const CLAIM_IDLE_MS = 1500

/** One run of a handler, from the ledger. */
interface Run {
  id: string
  pid: number
  attempt: number
  key: string
  /** When Redis started the job (the deliver call's clock: what a rate limit spaces). */
  startedAt: number
  /** The handler's start and end (end: the kill time for a killed run). */
  start: number
  end: number
  outcome: 'ok' | 'fail' | 'abort' | 'killed' | 'running'
}

/** The ledger's runs; `killed` maps a killed process's pid to when it was seen to exit. */
function readRuns(file: string, killed: Map<number, number>): Run[] {
  const runs = new Map<string, Run>()
  if (!existsSync(file)) return []
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = line.split(' ')
    // A line cut short by a kill is skipped (it cannot be both complete and wrong).
    if (f[0] === 'S' && f.length === 7) {
      const [, id, pid, attempt, startedAt, now, key] = f as [
        string,
        string,
        string,
        string,
        string,
        string,
        string,
      ]
      runs.set(`${id} ${pid} ${attempt}`, {
        id,
        pid: Number(pid),
        attempt: Number(attempt),
        key,
        startedAt: Number(startedAt),
        start: Number(now),
        end: Number.POSITIVE_INFINITY,
        outcome: 'running',
      })
    } else if (f[0] === 'E' && f.length === 6) {
      const r = runs.get(`${f[1]} ${f[2]} ${f[3]}`)
      // The first end line is the run's end.
      if (r && r.outcome === 'running') {
        r.end = Number(f[5])
        r.outcome = f[4] as Run['outcome']
      }
    }
  }
  for (const r of runs.values()) {
    const at = killed.get(r.pid)
    if (r.outcome === 'running' && at !== undefined) {
      r.end = at
      r.outcome = 'killed'
    }
  }
  return [...runs.values()].sort((a, b) => a.start - b.start)
}

/** The number of runs live at instant t. */
const liveAt = (runs: Run[], t: number) => runs.filter((r) => r.start <= t && r.end > t).length

/** A system of worker processes running `fcledger`, a Queue to set limits and add jobs, and a killer. */
async function fcSystem(env: Record<string, string> = {}) {
  const redis = await RedisServer.start()
  cleanups.push(() => redis.stop())
  const sys = new System(redis.url, {
    CLAIM_IDLE_MS: String(CLAIM_IDLE_MS),
    WORKER_CONCURRENCY: '10',
    ...env,
  })
  const ledger = join(sys.ledger, '..', 'fc-ledger.txt')
  sys.env.FC_LEDGER_FILE = ledger
  sys.env.FC_FLAG_FILE = join(sys.ledger, '..', 'fc-flag')
  cleanups.push(() => sys.stop())
  await sys.connect()
  const queue = new Queue(sys.redis, loadConfig({ ...targetEnv(sys.target), KEY_PREFIX: sys.prefix }))
  cleanups.push(() => queue.close())
  const workers: Proc[] = []
  /** pid -> when it was seen to exit after SIGKILL. */
  const killed = new Map<number, number>()
  const runs = () => readRuns(ledger, killed)
  // Kills a worker with a run in progress (the ledger says which) -- mid-run, not one still
  // starting up (on a loaded machine that takes seconds); `any`: else the oldest; `leader`:
  // the maintenance leader (its id is <host>-<pid>-<random>), the one that promotes. Returns
  // whether it killed one.
  const kill = async (any = false, leader = false) => {
    const busy = new Set(
      runs()
        .filter((r) => r.outcome === 'running')
        .map((r) => r.pid),
    )
    const leaderPid = leader
      ? Number((await sys.redis.get(sys.keys.leader()))?.split('-').at(-2))
      : Number.NaN
    let i = workers.findIndex((w) => w.child.pid === leaderPid)
    if (i < 0) i = workers.findIndex((w) => busy.has(w.child.pid!))
    if (i < 0 && !any) return false
    const victim = workers.splice(Math.max(0, i), 1)[0]!
    victim.child.kill('SIGKILL')
    await victim.exited
    killed.set(victim.child.pid!, Date.now())
    workers.push(sys.worker())
    return true
  }
  for (let i = 0; i < 3; i++) workers.push(sys.worker())
  const add = async (n: number, spec: (i: number) => Record<string, unknown>) =>
    (
      await queue.addBulk(
        Array.from({ length: n }, (_, i) => ({ task_type: TYPE, queue: Q, ...spec(i) })) as never,
      )
    ).map((r) => r.job.id)
  const completed = async () => Number(await sys.redis.zcard(sys.keys.index(Q, 'completed')))
  return { sys, queue, workers, killed, kill, runs, add, completed, flag: sys.env.FC_FLAG_FILE }
}

describe('flow control under kill -9', () => {
  for (const limited of [true, false]) {
    it(`${limited ? 'a fleet-wide cap of 5 over 3 workers × 10, one killed -9 every ~2 s: never more than 5 running, every job done, the slots come back' : 'NEGATIVE CONTROL (no cap): more than 5 run at once'}`, async () => {
      const s = await fcSystem()
      if (limited) await s.queue.setLimits(Q, { concurrency: 5 })
      const n = 600
      const ids = await s.add(n, () => ({ payload: { ms: 80 } }))
      const t0 = Date.now()
      // The workers are up (a loaded machine takes seconds to start them) before the first kill.
      await waitFor(() => s.runs().length > 0, { timeoutMs: 60_000, what: 'first start' })
      // At least 5 kills (3 for the control), each ~2 s apart, while work is left.
      while ((await s.completed()) < n && s.killed.size < (limited ? 8 : 3)) {
        await sleep(1500 + Math.random() * 1000)
        await s.kill()
      }
      await waitFor(async () => (await s.completed()) === n, { timeoutMs: 90_000, what: `${n} completed` })
      const drainedAt = Date.now()
      const runs = s.runs()
      const lastKill = Math.max(...s.killed.values())
      // The slots of a killed worker come back: while the s runs it was killed in still hold
      // their slots, the others can run at most 5 - s at once; the time from the kill until more
      // run says its slots were given back (the reclaim, after CLAIM_IDLE_MS) -- asked while
      // enough work was left.
      // "Enough work": runs still starting once the slots must be back (a kill near the end of the
      // load leaves too little work for more than 5 - held to run at once: nothing to measure).
      const slotsBound = 6000 + CLAIM_IDLE_MS * 1.5 + 2000
      const slotsBack: Array<{ held: number; ms: number }> = []
      for (const [pid, at] of s.killed) {
        const held = runs.filter((r) => r.pid === pid && r.outcome === 'killed').length
        const after = runs.filter((r) => r.start >= at)
        if (held === 0 || after.length < 30 || runs.filter((r) => r.start >= at + slotsBound).length < 10)
          continue
        const more = after.find((r) => liveAt(runs, r.start) > 5 - held)
        slotsBack.push({ held, ms: more ? more.start - at : Number.POSITIVE_INFINITY })
      }
      // A job cut by a kill runs again once reclaimed -- behind the jobs held for the cap then.
      const rerunAfter = runs
        .filter((r) => r.outcome === 'killed')
        .map((k) => {
          const next = runs.find((r) => r.id === k.id && r.start > k.start)
          return next ? next.start - k.end : Number.POSITIVE_INFINITY
        })
      // Mean runs live per second (time-weighted): the cap in use, not left idle by lost slots.
      const inUse: number[] = []
      for (let t = Math.min(...runs.map((r) => r.start)); t < drainedAt - 1000; t += 1000) {
        let ms = 0
        for (const r of runs) ms += Math.max(0, Math.min(r.end, t + 1000) - Math.max(r.start, t))
        inUse.push(Number((ms / 1000).toFixed(1)))
      }
      const view = await s.queue.getLimits(Q)
      const okIds = new Set(runs.filter((r) => r.outcome === 'ok').map((r) => r.id))
      const noOk = ids.filter((id) => !okIds.has(id))
      const figures = {
        jobs: n,
        noOkRun: noOk.length,
        noOkExamples: noOk.slice(0, 3).map((id) => runs.filter((r) => r.id === id)),
        runs: runs.length,
        killedRuns: runs.filter((r) => r.outcome === 'killed').length,
        kills: s.killed.size,
        maxOverlap: maxOverlap(runs),
        seconds: (drainedAt - t0) / 1000,
        drainAfterLastKillMs: drainedAt - lastKill,
        slotsBack,
        rerunAfterKillMs: rerunAfter,
        inUsePerSecond: inUse,
        runningAfter: view.running.queue,
        completed: await s.completed(),
      }
      report(limited ? 'cap 5 under kill -9' : 'no cap (control)', figures)
      expect(noOk).toEqual([])
      if (!limited) {
        expect(figures.maxOverlap, 'without the cap more than 5 run at once').toBeGreaterThan(5)
        return
      }
      expect(figures.kills).toBeGreaterThanOrEqual(5)
      expect(figures.killedRuns).toBeGreaterThan(0)
      expect(figures.maxOverlap).toBeLessThanOrEqual(5)
      expect(figures.maxOverlap).toBe(5)
      // The slots of a killed worker come back: by the reclaim (CLAIM_IDLE_MS + a tick of
      // CLAIM_IDLE_MS / 2), or once a killed maintenance leader's lease (3 heartbeats of 2 s)
      // lapses -- with 2 s of margin for a loaded machine.
      for (const b of slotsBack) expect(b.ms).toBeLessThan(slotsBound)
      expect(rerunAfter.every(Number.isFinite)).toBe(true)
      expect(view.running.queue).toBe(0)
      expect(view.held).toEqual([])
    }, 180_000)
  }

  for (const limited of [true, false]) {
    it(`${limited ? 'FIFO per key (key_concurrency 1), 50 keys, first attempts failing, workers killed -9: one run per key at a time, first starts in enqueue order' : 'NEGATIVE CONTROL (no key limit): overlaps and reordering per key'}`, async () => {
      const s = await fcSystem()
      if (limited) await s.queue.setLimits(Q, { key_concurrency: 1 })
      const n = 500
      const ids = await s.add(n, (i) => ({
        partition_key: `k${i % 50}`,
        payload: { ms: 300, fail_first: i % 9 === 0 },
        max_retries: 5,
      }))
      const keyOf = new Map(ids.map((id, i) => [id, `k${i % 50}`]))
      await waitFor(() => s.runs().length > 0, { timeoutMs: 60_000, what: 'first start' })
      while ((await s.completed()) < n && s.killed.size < (limited ? 8 : 3)) {
        await sleep(1200 + Math.random() * 800)
        await s.kill()
      }
      await waitFor(async () => (await s.completed()) === n, { timeoutMs: 120_000, what: `${n} completed` })
      const runs = s.runs()
      let overlaps = 0
      let orderBroken = 0
      const examples: string[] = []
      for (let k = 0; k < 50; k++) {
        const key = `k${k}`
        const mine = runs.filter((r) => r.key === key)
        // Per key, in start order, a run starts only after the one before it ended -- a killed
        // run and its own re-run excepted (at-least-once; with the kill rule they never overlap).
        for (let i = 1; i < mine.length; i++) {
          const a = mine[i - 1]!
          const b = mine[i]!
          const sameJobAfterKill = a.outcome === 'killed' && a.id === b.id
          if (b.start < a.end && !sameJobAfterKill) {
            overlaps++
            if (examples.length < 3)
              examples.push(
                `${key}: ${a.id}#${a.attempt} [${a.start},${a.end}) ∩ ${b.id}#${b.attempt} ${b.start}`,
              )
          }
        }
        const firstStarts: string[] = []
        for (const r of mine) if (!firstStarts.includes(r.id)) firstStarts.push(r.id)
        const enqueued = ids.filter((id) => keyOf.get(id) === key)
        if (JSON.stringify(firstStarts) !== JSON.stringify(enqueued)) orderBroken++
      }
      const figures = {
        jobs: n,
        keys: 50,
        runs: runs.length,
        failedFirst: runs.filter((r) => r.outcome === 'fail').length,
        killedRuns: runs.filter((r) => r.outcome === 'killed').length,
        kills: s.killed.size,
        overlaps,
        keysOutOfOrder: orderBroken,
        examples,
      }
      report(limited ? 'FIFO per key under kill -9' : 'no key limit (control)', figures)
      if (!limited) {
        expect(overlaps + orderBroken, 'without the key limit the checker sees violations').toBeGreaterThan(0)
        return
      }
      expect(figures.kills).toBeGreaterThanOrEqual(4)
      // ~53 fail their first attempt; one killed during its first attempt reruns as attempt 2
      // and does not fail, so a few fewer are seen.
      expect(figures.failedFirst).toBeGreaterThanOrEqual(40)
      expect(overlaps).toBe(0)
      expect(orderBroken).toBe(0)
      expect((await s.queue.getLimits(Q)).held).toEqual([])
    }, 180_000)
  }

  for (const limited of [true, false]) {
    it(`${limited ? 'a rate of 50/s on a backlog of 4000, 3 workers killed -9 a few times: starts over 60 s within ±5 % of N + 60·N/W (20 s: +5 %/−10 %)' : 'NEGATIVE CONTROL (no rate limit): far above the rate'}`, async () => {
      const s = await fcSystem()
      const N = 50
      const W = 1000
      if (limited) await s.queue.setLimits(Q, { rate: { limit: N, window_ms: W } } satisfies LimitsSpec)
      // The limited run counts one minute (20 s in the default suite); the control needs only
      // seconds to show it is far above.
      const span = limited ? (FULL ? 60_000 : 20_000) : 5_000
      const n = limited ? (FULL ? 4000 : 1500) : 1500
      await s.add(n, () => ({ payload: { ms: 5 } }))
      // t0: the first start (Redis's clock), then kills at ~12, ~27, ~42 s (~5 s in the default suite: a killed leader stalls promotion ~6 s, and the catch-up must fall within the span).
      const kills = FULL ? [12_000, 27_000, 42_000] : [5_000]
      await waitFor(() => s.runs().length > 0, { timeoutMs: 60_000, what: 'first start' })
      const t0 = Math.min(...s.runs().map((r) => r.startedAt))
      if (limited)
        for (const [k, at] of kills.entries()) {
          await sleep(Math.max(0, t0 + at - Date.now()))
          // The first kill takes the maintenance leader (nobody promotes the deferred jobs until
          // its lease lapses): the worst case for the minute's count, and the catch-up burst
          // after it is the one the span bound reports (reliability.md).
          await s.kill(true, k === 0)
        }
      await sleep(Math.max(0, t0 + span + 1000 - Date.now()))
      const runs = s.runs()
      const starts = runs
        .map((r) => r.startedAt)
        .filter((t) => t >= t0 && t <= t0 + span)
        .sort((a, b) => a - b)
      // GCRA: a burst of N, then one every W/N -- over [t0, t0 + span]: N + span·N/W starts.
      const expected = N + (span * N) / W
      // And the worst excess over any shorter span t of the bound N + t·N/W (reported: a burst
      // after a stall of the scheduler -- a killed maintenance leader -- shows here).
      let worst = 0
      for (let i = 0; i < starts.length; i++)
        for (let j = i + N; j < starts.length; j++)
          worst = Math.max(worst, j - i + 1 - (N + Math.floor(((starts[j]! - starts[i]!) * N) / W)))
      const perSecond = Array.from(
        { length: span / 1000 },
        (_, sec) => starts.filter((t) => t >= t0 + sec * 1000 && t < t0 + (sec + 1) * 1000).length,
      )
      const failed = runs.filter((r) => r.outcome === 'fail').length
      const figures = {
        jobs: n,
        spanS: span / 1000,
        starts: starts.length,
        expected,
        deviationPct: Number((((starts.length - expected) / expected) * 100).toFixed(2)),
        perSecondMin: Math.min(...perSecond.slice(1)),
        perSecondMax: Math.max(...perSecond),
        // Not asserted: a killed maintenance leader stops the scheduler's promote until its
        // lease lapses (~6 s); the reserved starts it should have promoted meanwhile then start
        // together, over the bound for that span (the minute's count holds). See reliability.md.
        worstExcessOverSpanBound: worst,
        perSecond,
        killsAtS: [...s.killed.values()].map((at) => Math.round((at - t0) / 100) / 10),
        kills: s.killed.size,
        killedRuns: runs.filter((r) => r.outcome === 'killed').length,
        failed,
      }
      report(limited ? 'rate 50/s over a minute under kill -9' : 'no rate limit (control)', figures)
      if (!limited) {
        expect(starts.length, 'without the limit far more start').toBeGreaterThan(expected * 2)
        return
      }
      // Above the rate is what the limit forbids: +5 % at most, however long the span. Below it
      // is how fast deferred starts are promoted and fetched, which a loaded machine slows: the
      // starts due in the span's last second or so land after it (a CI run on 2 busy cores saw
      // 42-49 a second after the catch-up, −5.8 % over 20 s; idle: 50 a second, −0.1 %). Over
      // the full minute that lag is under 2 % and ±5 % holds; over 20 s it is 5 %, so −10 %.
      const deviation = (starts.length - expected) / expected
      expect(deviation, 'more starts than the rate allows').toBeLessThanOrEqual(0.05)
      expect(deviation, 'starts fell far behind the rate').toBeGreaterThanOrEqual(FULL ? -0.05 : -0.1)
      expect(failed).toBe(0)
      expect(figures.kills).toBe(kills.length)
    }, 120_000)
  }

  for (const limited of [true, false]) {
    it(`${limited ? 'a breaker (3 failures, 1 s cool-down): opens after 3 consecutive failures, nothing runs for the cool-down, one probe at a time, closes when the upstream is back' : 'NEGATIVE CONTROL (no breaker): runs go on during the would-be cool-down'}`, async () => {
      const s = await fcSystem({ WORKER_CONCURRENCY: '4' })
      const cooldown = 1000
      if (limited)
        await s.queue.setLimits(Q, { types: { [TYPE]: { breaker: { failures: 3, cooldown_ms: cooldown } } } })
      writeFileSync(s.flag, 'down')
      const n = 40
      await s.add(n, () => ({ payload: { ms: 20 }, max_retries: 30 }))
      // The breaker's openings, as Redis records them (each sets u = open time + cool-down).
      const cbKey = `${s.sys.keys.base(Q)}:fc:cb:${TYPE}`
      const opened = new Set<number>()
      const states: string[] = []
      let watching = true
      const watcher = (async () => {
        while (watching) {
          const h = await s.sys.redis.hgetall(cbKey)
          if (h.s === 'open' && h.u) opened.add(Number(h.u))
          if (h.s && states.at(-1) !== h.s) states.push(h.s)
          await sleep(20)
        }
      })()
      // The upstream is down until the breaker opened 3 times (the first opening, then 2 failed
      // probes; the control: 3 s of runs), then back.
      await waitFor(() => s.runs().length > 0, { timeoutMs: 60_000, what: 'first start' })
      if (limited) await waitFor(() => opened.size >= 3, { timeoutMs: 30_000, what: 'opened 3 times' })
      else await sleep(3000)
      rmSync(s.flag)
      await waitFor(async () => (await s.completed()) === n, { timeoutMs: 60_000, what: `${n} completed` })
      watching = false
      await watcher
      const runs = s.runs()
      const byEnd = [...runs].sort((a, b) => a.end - b.end)
      // When it opened: from Redis (limited); for the control, where it would have -- the end of
      // the 3rd consecutive failure, read from the ledger.
      let openings: number[]
      if (limited) openings = [...opened].sort((a, b) => a - b).map((u) => u - cooldown)
      else {
        let streak = 0
        const third = byEnd.find((r) => {
          streak = r.outcome === 'fail' ? streak + 1 : 0
          return streak === 3
        })
        openings = third ? [third.end] : []
      }
      let duringCooldown = 0
      let concurrentProbes = 0
      let consecutiveBeforeFirst = 0
      const probes: Array<{ waitedMs: number; outcome: string }> = []
      // Start times are each worker's reading of Redis's clock (ADR 0012), a few ms apart across
      // processes: a start Redis ordered before the opening can carry a time just after it.
      const SKEW = 50
      for (const o of openings) {
        // Nothing of the type started while it was open.
        duringCooldown += runs.filter((r) => r.startedAt >= o + SKEW && r.startedAt < o + cooldown).length
        // The first start after it opened is the probe: nothing else starts until the probe ended.
        const probe = runs.filter((r) => r.startedAt >= o + SKEW).sort((a, b) => a.startedAt - b.startedAt)[0]
        if (!probe) continue
        probes.push({ waitedMs: probe.startedAt - o, outcome: probe.outcome })
        concurrentProbes += runs.filter(
          (r) => r !== probe && r.startedAt >= probe.startedAt && r.startedAt < probe.end,
        ).length
      }
      if (openings[0] !== undefined) {
        // What the ledger says came before the first opening: the runs ended by then, last first
        // (50 ms of slack: the opening time is Redis's clock as the worker read it, the ledger's
        // this machine's; the last failure ends within ms of the opening).
        const before = byEnd.filter((r) => r.end <= openings[0]! + 50).reverse()
        while (before[consecutiveBeforeFirst]?.outcome === 'fail') consecutiveBeforeFirst++
      }
      const view = await s.queue.getLimits(Q)
      const figures = {
        jobs: n,
        runs: runs.length,
        failures: runs.filter((r) => r.outcome === 'fail').length,
        openings: openings.length,
        states,
        consecutiveFailuresBeforeFirstOpening: consecutiveBeforeFirst,
        startsDuringCooldown: duringCooldown,
        concurrentWithProbe: concurrentProbes,
        probes,
        breaker: view.breakers[TYPE] ?? null,
        completed: await s.completed(),
      }
      report(limited ? 'breaker' : 'no breaker (control)', figures)
      expect(figures.completed).toBe(n)
      if (!limited) {
        expect(duringCooldown, 'without the breaker runs start during the cool-down').toBeGreaterThan(0)
        return
      }
      // Opened once from closed, then re-opened by each failed probe; closed by the last one.
      expect(openings.length).toBeGreaterThanOrEqual(3)
      expect(consecutiveBeforeFirst).toBeGreaterThanOrEqual(3)
      expect(duringCooldown).toBe(0)
      expect(concurrentProbes).toBe(0)
      for (const p of probes) expect(p.waitedMs).toBeGreaterThanOrEqual(cooldown)
      expect(probes.slice(0, -1).every((p) => p.outcome === 'fail')).toBe(true)
      expect(probes.at(-1)!.outcome).toBe('ok')
      expect(view.breakers[TYPE]).toMatchObject({ state: 'closed', failures: 0 })
    }, 120_000)
  }
})
