/**
 * Alerts under kill -9 (ADR 0025): three processes that each bid for the alerts lease -- a
 * `dtq api` and two `dtq worker`s -- while a dlq_depth alert fires and resolves again and
 * again, and one process is killed -9 (and restarted) around each transition, the leader
 * among them in turn. Checked at a real HTTP receiver: every transition was notified, and by
 * exactly one notification id (a resend of the same id -- a leader killed between the
 * receiver's 200 and its acknowledgement -- is delivery at least once, counted apart). The
 * NEGATIVE CONTROL runs the same without kills with the lease and the compare-and-set off
 * (DTQ_UNSAFE=no-alert-lease: every process evaluates, and writes after a 100 ms stall) and must
 * show a transition notified under several ids (or lost to a stale write).
 * CHAOS_FULL=1 flips longer.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Notification } from '../../src/redis/alerts.ts'
import { startHttpReceiver } from '../alert-receivers.ts'
import { waitFor } from '../helpers.ts'
import { FULL, type Proc, Q, RedisServer, report, System } from './harness.ts'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('alert faults', () => {
  for (const control of [false, true]) {
    const title = control
      ? 'NEGATIVE CONTROL (no lease, no compare-and-set): a transition is notified under several ids'
      : 'api + 2 workers, one killed -9 around each transition: each transition notified, under one id'
    it(title, async () => {
      const http = await startHttpReceiver()
      cleanups.push(() => http.close())
      const redis = await RedisServer.start()
      cleanups.push(() => redis.stop())
      const sys = new System(redis.url, {
        // The control's evaluators tick often, so two of them meet within a transition.
        ALERT_EVAL_INTERVAL_MS: control ? '50' : '100',
        ALERT_WEBHOOK_URL: `${http.url}/hook`,
        ALERT_RETRY_BASE_MS: '100',
        ALERT_DELIVERY_TIMEOUT_MS: '1000',
        ...(control ? { DTQ_UNSAFE: 'no-alert-lease' } : {}),
      })
      cleanups.push(() => sys.stop())
      await sys.connect()
      let api = await sys.api().catch((err) => {
        console.log(sys.procs.map((p) => p.output()).join('\n'))
        throw err
      })
      const call = async (method: string, path: string, body?: unknown) => {
        const r = await fetch(`${api.url}${path}`, {
          method,
          headers: body === undefined ? {} : { 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        })
        expect(r.status, `${method} ${path}`).toBeLessThan(300)
      }
      await call('PUT', '/alerts/rules/chaos', { kind: 'dlq_depth', queue: Q, threshold: 0 })
      const procs: Proc[] = [api.proc, sys.worker(), sys.worker()]
      const notes = () =>
        http.received.map((r) => JSON.parse(r.body) as Notification).filter((n) => n.alert?.rule === 'chaos')
      const ids = (type: string) =>
        new Set(
          notes()
            .filter((n) => n.type === type)
            .map((n) => n.id),
        )
      let kills = 0
      const kill = async (v: number) => {
        if (control) return
        procs[v]!.child.kill('SIGKILL')
        await procs[v]!.exited
        kills++
        if (v === 0) {
          api = await sys.api()
          procs[0] = api.proc
        } else procs[v] = sys.worker()
      }
      const flips = FULL ? 20 : control ? 8 : 6
      for (let i = 0; i < flips; i++) {
        await call('POST', '/jobs', {
          task_type: 'fail',
          queue: Q,
          payload: { permanent: true },
          max_retries: 0,
        })
        if (i % 2 === 0) await kill(i % 3) // during the firing transition
        // The control's waits are best effort: without the fence a stale write can undo a transition.
        const settle = (p: Promise<unknown>) => (control ? p.catch(() => undefined) : p)
        await settle(
          waitFor(() => ids('firing').size >= i + 1, {
            timeoutMs: control ? 3000 : 30_000,
            what: `firing ${i}`,
          }),
        )
        await call('DELETE', `/dlq?older_than_days=0&queue=${Q}`)
        if (i % 2 === 1) await kill(i % 3) // during the resolving one
        await settle(
          waitFor(() => ids('resolved').size >= i + 1, {
            timeoutMs: control ? 3000 : 30_000,
            what: `resolved ${i}`,
          }),
        )
      }
      await new Promise((r) => setTimeout(r, 1500)) // late duplicates, if any
      const firing = ids('firing').size
      const resolved = ids('resolved').size
      const resent = notes().length - firing - resolved
      report(control ? 'alerts control' : 'alerts', { flips, kills, firing, resolved, resent })
      if (control) {
        // Some transition was notified under several ids (or not at all).
        expect(firing !== flips || resolved !== flips).toBe(true)
      } else {
        expect(firing).toBe(flips)
        expect(resolved).toBe(flips)
      }
    }, 300_000)
  }
})
