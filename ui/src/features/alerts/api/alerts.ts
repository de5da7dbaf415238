/** Alerts (ADR 0025): what fires now, rules, silences, history; acknowledge, silence, edit rules, test. */
import type {
  AlertDto,
  AlertRuleDto,
  AlertsReplyDto,
  HistoryEntryDto,
  SilenceDto,
  TestReplyDto,
} from '@dtq/app/alert-schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { api } from '../../../lib/api'
import { useInvalidatingMutation } from '../../../lib/mutation'
import { queryKeys } from '../../../lib/query-keys'

/** Alerts move with the evaluator's ticks, not with job events: polled. */
const POLL_MS = 5000

export type RuleInput = Omit<AlertRuleDto, 'builtin' | 'overridden' | 'id'>

export const alertsOptions = () =>
  queryOptions({
    queryKey: queryKeys.alerts.now,
    queryFn: ({ signal }) => api<AlertsReplyDto>('/alerts', { signal }),
    refetchInterval: POLL_MS,
  })
export const useAlerts = () => useQuery(alertsOptions())

export const useRules = () =>
  useQuery({
    queryKey: queryKeys.alerts.rules,
    queryFn: ({ signal }) => api<{ rules: AlertRuleDto[] }>('/alerts/rules', { signal }),
  })

export const useSilences = () =>
  useQuery({
    queryKey: queryKeys.alerts.silences,
    queryFn: ({ signal }) => api<{ silences: SilenceDto[] }>('/alerts/silences', { signal }),
    refetchInterval: POLL_MS,
  })

export const useHistory = () =>
  useQuery({
    queryKey: queryKeys.alerts.history,
    queryFn: ({ signal }) =>
      api<{ entries: HistoryEntryDto[]; next: string | null }>('/alerts/history?limit=50', { signal }),
    refetchInterval: POLL_MS,
  })

const all = [queryKeys.alerts.all]

export const useAck = () =>
  useInvalidatingMutation(
    (id: string) =>
      api<AlertDto>(`/alerts/${encodeURIComponent(id)}/ack`, { method: 'POST', body: { by: 'console' } }),
    all,
  )

export const useAddSilence = () =>
  useInvalidatingMutation(
    (body: { rule?: string; queue?: string; task_type?: string; duration_ms: number; comment?: string }) =>
      api<SilenceDto>('/alerts/silences', { method: 'POST', body: { ...body, by: 'console' } }),
    all,
  )

export const useEndSilence = () =>
  useInvalidatingMutation(
    (id: string) => api(`/alerts/silences/${encodeURIComponent(id)}`, { method: 'DELETE' }),
    all,
  )

export const useSaveRule = () =>
  useInvalidatingMutation(
    ({ id, rule }: { id: string; rule: Partial<RuleInput> & { kind: AlertRuleDto['kind'] } }) =>
      api<AlertRuleDto>(`/alerts/rules/${encodeURIComponent(id)}`, { method: 'PUT', body: rule }),
    all,
  )

export const useDeleteRule = () =>
  useInvalidatingMutation(
    (id: string) => api(`/alerts/rules/${encodeURIComponent(id)}`, { method: 'DELETE' }),
    all,
  )

export const useTestAlert = () =>
  useInvalidatingMutation(() => api<TestReplyDto>('/alerts/test', { method: 'POST' }), all)
