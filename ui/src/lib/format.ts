/** Small formatting helpers for times and durations. */
export function ago(ms: number | null | undefined, now = Date.now()): string {
  if (!ms) return '—'
  const s = Math.round((now - ms) / 1000)
  if (s < 0) return `in ${duration(-s * 1000)}`
  if (s < 2) return 'just now'
  return `${duration(s * 1000)} ago`
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—'
  if (ms < 1000) return `${Math.round(ms)} ms`
  const s = ms / 1000
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`
  const h = Math.floor(m / 60)
  if (h < 48) return `${h} h ${m % 60} min`
  return `${Math.floor(h / 24)} d`
}

export function time(ms: number | null | undefined): string {
  return ms ? new Date(ms).toLocaleString() : '—'
}

export const num = (n: number) => n.toLocaleString()

/** A time as read in a time zone (`2026-03-29 03:00:00`): schedules show their own zone's times. */
export function timeIn(ms: number | null | undefined, tz: string): string {
  if (!ms) return '—'
  try {
    return new Date(ms).toLocaleString('sv-SE', { timeZone: tz })
  } catch {
    return new Date(ms).toISOString()
  }
}

/** JSON typed into a form: its value (empty text: `{}`), or the parser's message. */
export function parseJsonText(text: string): { value?: unknown; error?: string } {
  if (!text.trim()) return { value: {} }
  try {
    return { value: JSON.parse(text) }
  } catch (e) {
    return { error: (e as Error).message }
  }
}
