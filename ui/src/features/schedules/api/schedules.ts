import type { PreviewDto, ScheduleDetailDto, ScheduleDto, ScheduleInputDto } from '@dtq/app/schemas'
import { keepPreviousData, useQuery } from '@tanstack/react-query'
import { api, qs } from '../../../lib/api'
import { useLive } from '../../../lib/live'
import { useInvalidatingMutation } from '../../../lib/mutation'
import { queryKeys } from '../../../lib/query-keys'

const path = (name: string, action = '') => `/schedules/${encodeURIComponent(name)}${action}`

/** Schedules fire without lifecycle events of their own: the list polls (2 s, or faster when live). */
export const useSchedules = () => {
  const { pollMs } = useLive()
  return useQuery({
    queryKey: queryKeys.schedules.all,
    queryFn: ({ signal }) => api<{ items: ScheduleDto[] }>('/schedules', { signal }),
    refetchInterval: pollMs || 2000,
  })
}

export const useSchedule = (name: string | null) =>
  useQuery({
    queryKey: queryKeys.schedules.detail(name ?? ''),
    queryFn: ({ signal }) => api<ScheduleDetailDto>(path(name ?? ''), { signal }),
    enabled: !!name,
    refetchInterval: 2000,
  })

/** The next five times of `cron` in `tz`, as the API computes them (no write). */
export const usePreview = (cron: string, tz: string) =>
  useQuery({
    queryKey: queryKeys.schedules.preview(cron, tz),
    queryFn: ({ signal }) => api<PreviewDto>(`/schedules/preview${qs({ cron, tz })}`, { signal }),
    enabled: cron.trim().length > 0,
    placeholderData: keepPreviousData,
    retry: false,
  })

export const useSaveSchedule = () =>
  useInvalidatingMutation(
    ({ name, body }: { name: string; body: ScheduleInputDto }) =>
      api<ScheduleDetailDto>(path(name), { method: 'PUT', body }),
    [queryKeys.schedules.all],
  )

export type ScheduleAction = 'pause' | 'resume' | 'trigger'

export const useScheduleAction = () =>
  useInvalidatingMutation(
    ({ name, action }: { name: string; action: ScheduleAction }) =>
      api<unknown>(path(name, `/${action}`), { method: 'POST' }),
    [queryKeys.schedules.all, queryKeys.jobs.all],
  )

export const useDeleteSchedule = () =>
  useInvalidatingMutation(
    (name: string) => api<unknown>(path(name), { method: 'DELETE' }),
    [queryKeys.schedules.all],
  )
