/**
 * Live updates: one SSE stream (/events, read with fetch so the token travels in a header)
 * turns lifecycle events into query invalidations, at most every 400 ms. The stream closes
 * while the tab is hidden and resumes from the last event id when it is shown again. When it
 * cannot connect, queries fall back to polling. The state is shown in the header.
 */
import { useQueryClient } from '@tanstack/react-query'
import { createParser } from 'eventsource-parser'
import { createContext, type ReactNode, useContext, useEffect, useRef, useState } from 'react'
import { API_BASE, authHeaders } from './api'
import { liveRoots } from './query-keys'

export type LiveState = 'connecting' | 'live' | 'polling' | 'paused'

interface Live {
  state: LiveState
  /** refetchInterval for queries: polling only when the stream is down. */
  pollMs: number | false
  /** Job ids that changed recently (for highlighting). */
  lastEventAt: number
}

const LiveContext = createContext<Live>({ state: 'connecting', pollMs: false, lastEventAt: 0 })
export const useLive = () => useContext(LiveContext)

export function LiveProvider({ children, enabled }: { children: ReactNode; enabled: boolean }) {
  const qc = useQueryClient()
  const [state, setState] = useState<LiveState>('connecting')
  const [lastEventAt, setLastEventAt] = useState(0)
  const lastId = useRef<string | null>(null)

  useEffect(() => {
    if (!enabled) return
    let stopped = false
    let ac: AbortController | null = null
    let retryTimer: ReturnType<typeof setTimeout> | undefined
    let flushTimer: ReturnType<typeof setTimeout> | undefined
    let failures = 0

    // Whether the pending flush follows an event (a read in flight may predate it: sent again)
    // or only the stream's opening (a read in flight is recent enough: kept, issue 22 -- at size
    // a page's first read takes a while, and cancelling it doubled the time to its first rows).
    let afterEvent = false
    const invalidate = (event: boolean) => {
      afterEvent ||= event
      if (flushTimer) return
      flushTimer = setTimeout(() => {
        flushTimer = undefined
        const cancelRefetch = afterEvent
        afterEvent = false
        for (const queryKey of liveRoots) void qc.invalidateQueries({ queryKey }, { cancelRefetch })
        setLastEventAt(Date.now())
      }, 400)
    }

    const connect = async () => {
      if (stopped || document.hidden) return
      ac = new AbortController()
      setState((s) => (s === 'polling' ? s : 'connecting'))
      try {
        const headers: Record<string, string> = { ...authHeaders(), accept: 'text/event-stream' }
        if (lastId.current) headers['last-event-id'] = lastId.current
        const res = await fetch(`${API_BASE}/events`, { headers, signal: ac.signal })
        if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`)
        failures = 0
        setState('live')
        // Whatever changed between the pages' first load (or the last stream) and now was not
        // seen as events: refetch once, then follow the events.
        invalidate(false)
        const parser = createParser({
          onEvent: (e) => {
            if (e.id) lastId.current = e.id
            invalidate(true)
          },
        })
        const reader = res.body.getReader()
        const decoder = new TextDecoder()
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          parser.feed(decoder.decode(value, { stream: true }))
        }
        throw new Error('events: stream ended')
      } catch {
        if (stopped || ac?.signal.aborted) return
        failures++
        setState('polling')
        retryTimer = setTimeout(connect, Math.min(1000 * 2 ** Math.min(failures, 4), 15_000))
      }
    }

    const onVisibility = () => {
      if (document.hidden) {
        ac?.abort()
        clearTimeout(retryTimer)
        setState('paused')
      } else {
        void connect()
      }
    }
    document.addEventListener('visibilitychange', onVisibility)
    void connect()
    return () => {
      stopped = true
      ac?.abort()
      clearTimeout(retryTimer)
      clearTimeout(flushTimer)
      document.removeEventListener('visibilitychange', onVisibility)
    }
  }, [enabled, qc])

  const pollMs = state === 'polling' ? 5000 : false
  return <LiveContext.Provider value={{ state, pollMs, lastEventAt }}>{children}</LiveContext.Provider>
}
