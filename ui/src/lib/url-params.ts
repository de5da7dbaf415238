/** Page state kept in the URL's query string (filters, search, cursor): links and reloads keep it. */
import { useSearchParams } from 'react-router'

export function useUrlParams() {
  const [params, setParams] = useSearchParams()
  return {
    /** A parameter's value; undefined when it is absent. */
    get: (name: string) => params.get(name) ?? undefined,
    /** Sets each given parameter, or removes it when its value is empty, in one navigation. */
    update(changes: Record<string, string | undefined>) {
      const next = new URLSearchParams(params)
      for (const [name, value] of Object.entries(changes)) {
        if (value) next.set(name, value)
        else next.delete(name)
      }
      setParams(next)
    },
  }
}
