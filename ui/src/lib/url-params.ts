/** Page state kept in the URL's query string (filters, search, cursor): links and reloads keep it. */
import { useRef } from 'react'
import { useSearchParams } from 'react-router'

export function useUrlParams() {
  const [params, setParams] = useSearchParams()
  // The last update made from this render's URL. Two updates before the navigation lands (a
  // queue picked, then a type, quickly) must build one on the other: react-router's params --
  // also those its setter hands a function -- are this render's, and the second update made
  // from them undid the first.
  const latest = useRef<{ from: string; next: URLSearchParams } | null>(null)
  const from = params.toString()
  // Once its navigation lands the update is in `params`: forgotten, so a later URL equal to an
  // old one (the back button) cannot bring it back.
  if (latest.current?.next.toString() === from) latest.current = null
  return {
    /** A parameter's value; undefined when it is absent. */
    get: (name: string) => params.get(name) ?? undefined,
    /** Sets each given parameter, or removes it when its value is empty, in one navigation. */
    update(changes: Record<string, string | undefined>) {
      const pending = latest.current
      const next = new URLSearchParams(pending && pending.from === from ? pending.next : params)
      for (const [name, value] of Object.entries(changes)) {
        if (value) next.set(name, value)
        else next.delete(name)
      }
      latest.current = { from, next }
      setParams(next)
    },
  }
}
