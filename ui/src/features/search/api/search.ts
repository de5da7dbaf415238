/** Search across live and archived jobs (ADR 0029): pages ("more"), presets, and exports. */
import type { PresetDto, SearchFiltersDto, SearchReplyBody } from '@dtq/app/search-schemas'
import { useInfiniteQuery, useQuery } from '@tanstack/react-query'
import { API_BASE, ApiError, api, authHeaders } from '../../../lib/api'
import { useInvalidatingMutation } from '../../../lib/mutation'
import { queryKeys } from '../../../lib/query-keys'

/** The filters as a query string (`where` repeated), empty values left out. */
export function searchParams(f: SearchFiltersDto, extra: Record<string, string | number> = {}): string {
  const p = new URLSearchParams()
  for (const [k, v] of Object.entries({ ...f, ...extra })) {
    if (v === undefined || v === null || v === '') continue
    for (const x of Array.isArray(v) ? v : [v]) p.append(k, String(x))
  }
  const s = p.toString()
  return s ? `?${s}` : ''
}

export function useSearch(f: SearchFiltersDto) {
  return useInfiniteQuery({
    queryKey: queryKeys.search.results(f),
    queryFn: ({ pageParam, signal }) =>
      api<SearchReplyBody>(
        `/search${searchParams(f, { limit: 50, ...(pageParam ? { cursor: pageParam } : {}) })}`,
        {
          signal,
        },
      ),
    initialPageParam: '',
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  })
}

export const usePresets = () =>
  useQuery({
    queryKey: queryKeys.search.presets,
    queryFn: ({ signal }) => api<{ items: PresetDto[] }>('/search/presets', { signal }),
  })

export const useSavePreset = () =>
  useInvalidatingMutation(
    (p: { name: string; filters: SearchFiltersDto }) =>
      api<PresetDto>('/search/presets', { method: 'POST', body: p }),
    [queryKeys.search.presets],
  )

export const useDeletePreset = () =>
  useInvalidatingMutation(
    (name: string) => api(`/search/presets/${encodeURIComponent(name)}`, { method: 'DELETE' }),
    [queryKeys.search.presets],
  )

/**
 * Downloads an export. The API streams it (bounded memory there); the browser gathers it into a
 * file (fetch, so the bearer token goes in a header, not in a URL).
 */
export async function downloadExport(f: SearchFiltersDto, format: 'csv' | 'ndjson'): Promise<void> {
  const res = await fetch(`${API_BASE}/search/export${searchParams(f, { format })}`, {
    headers: authHeaders(),
  })
  if (!res.ok) {
    const e = (await res.json().catch(() => ({}))) as { code?: string; message?: string }
    throw new ApiError(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? res.statusText)
  }
  const url = URL.createObjectURL(await res.blob())
  const a = document.createElement('a')
  a.href = url
  a.download = `dtq-search.${format}`
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}
