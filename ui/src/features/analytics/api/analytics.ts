/**
 * The analytics routes (GET /analytics/*, ADR 0030): one query per panel, keyed by the page's
 * filters. Their answers' types come from the API's schemas (app/src/http/routes/analytics.ts).
 */
import type {
  ErrorClassDto,
  FailureRateDto,
  LatencyDto,
  SlowDto,
  ThroughputDto,
  WorkerRateDto,
} from '@dtq/app/analytics'
import { useQuery } from '@tanstack/react-query'
import { api, qs } from '../../../lib/api'

export type Bucket = 'hour' | 'day'
export interface Filters {
  from: number
  to: number
  bucket: Bucket
  queue?: string
  task_type?: string
}
interface Head {
  from: number
  to: number
}
interface Series<T> extends Head {
  bucket: Bucket
  bucket_ms: number
  items: T[]
}

/** The archiver's lag (GET /history/status; Redis only): how current the history is. */
export const useHistoryStatus = () =>
  useQuery({
    queryKey: ['analytics', 'history-status'],
    queryFn: ({ signal }) =>
      api<{ enabled: boolean; backlog: number; lag_ms: number; last_archived_at: number | null }>(
        '/history/status',
        { signal },
      ),
    refetchInterval: 30_000,
  })

export type { ErrorClassDto, SlowDto, WorkerRateDto as WorkerDto } from '@dtq/app/analytics'

function useAnalytics<T>(
  path: string,
  f: Filters,
  extra: Record<string, string | number> = {},
  bucket = true,
) {
  const params = {
    from: f.from,
    to: f.to,
    bucket: bucket ? f.bucket : undefined,
    queue: f.queue,
    task_type: f.task_type,
    ...extra,
  }
  return useQuery({
    queryKey: ['analytics', path, params],
    queryFn: ({ signal }) => api<T>(`/analytics/${path}${qs(params)}`, { signal }),
    // History changes slowly; a disabled history (409) is not retried.
    staleTime: 60_000,
    retry: false,
  })
}

export const useThroughput = (f: Filters) => useAnalytics<Series<ThroughputDto>>('throughput', f)
export const useFailureRate = (f: Filters) => useAnalytics<Series<FailureRateDto>>('failure-rate', f)
export const useLatency = (f: Filters) => useAnalytics<Series<LatencyDto>>('latency', f)
export const useTopErrors = (f: Filters) =>
  useAnalytics<Head & { items: ErrorClassDto[] }>('errors', f, {}, false)
export const useSlowest = (f: Filters) => useAnalytics<Head & { items: SlowDto[] }>('slowest', f, {}, false)
export const useWorkerRates = (f: Filters) =>
  useAnalytics<Head & { items: WorkerRateDto[] }>('workers', f, {}, false)
