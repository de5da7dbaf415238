/** The audit log: operator actions, newest first, filtered (GET /audit, admin). */
import type { AuditPageDto } from '@dtq/app/schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { api, qs } from '../../../lib/api'
import { queryKeys } from '../../../lib/query-keys'

export interface AuditFilters {
  actor?: string
  action?: string
  target?: string
  result?: string
  since?: number
  cursor?: string
}

export const auditOptions = (f: AuditFilters) =>
  queryOptions({
    queryKey: queryKeys.audit(f),
    queryFn: ({ signal }) => api<AuditPageDto>(`/audit${qs({ ...f, limit: 100 })}`, { signal }),
    // The first page follows new actions; an older page does not move.
    refetchInterval: f.cursor ? false : 10_000,
    placeholderData: (prev) => prev,
  })

export const useAudit = (f: AuditFilters) => useQuery(auditOptions(f))
