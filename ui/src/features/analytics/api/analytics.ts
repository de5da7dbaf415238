/**
 * The analytics routes (GET /analytics/*, ADR 0030): one query per panel, keyed by the page's
 * filters. Their answers' shapes mirror app/src/http/routes/analytics.ts.
 */
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
export interface Pcts {
  p50: number | null
  p95: number | null
  p99: number | null
}
export interface CountsDto {
  at: number
  task_type: string
  completed: number
  failed: number
  cancelled: number
}
export interface RateDto {
  at: number
  task_type: string
  completed: number
  failed: number
  rate: number
}
export interface LatencyDto {
  at: number
  task_type: string | null
  count: number
  wait_ms: Pcts
  run_ms: Pcts
}
export interface ErrorClassDto {
  error_class: string
  count: number
  jobs: number
  first_seen: number
  last_seen: number
  example: string | null
  task_types: string[]
}
export interface SlowDto {
  task_type: string
  count: number
  run_ms: Pcts & { avg: number | null; max: number | null }
}
export interface WorkerDto {
  worker: string
  completed: number
  failed: number
  cancelled: number
  per_hour: number
  failed_per_hour: number
  run_p95_ms: number | null
  first_seen: number
  last_seen: number
}

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

export const useThroughput = (f: Filters) => useAnalytics<Series<CountsDto>>('throughput', f)
export const useFailureRate = (f: Filters) => useAnalytics<Series<RateDto>>('failure-rate', f)
export const useLatency = (f: Filters) => useAnalytics<Series<LatencyDto>>('latency', f)
export const useTopErrors = (f: Filters) =>
  useAnalytics<Head & { items: ErrorClassDto[] }>('errors', f, {}, false)
export const useSlowest = (f: Filters) => useAnalytics<Head & { items: SlowDto[] }>('slowest', f, {}, false)
export const useWorkerRates = (f: Filters) =>
  useAnalytics<Head & { items: WorkerDto[] }>('workers', f, {}, false)
