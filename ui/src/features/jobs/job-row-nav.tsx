/**
 * The keyboard of the jobs table's rows (DataTable `rowNav`): Enter opens the job, x selects it,
 * r retries and c cancels it after a confirmation (the same calls as the bulk buttons).
 */
import type { JobDto } from '@dtq/app/schemas'
import type { ReactNode } from 'react'
import { useNavigate } from 'react-router'
import { useConfirm } from '../../components/confirm'
import { type RowNav, selectKey } from '../../components/DataTable'
import { useAuth } from '../../lib/auth'
import { type JobRef, jobKey, jobPath } from '../../lib/job-ref'
import { useBulk } from './api/job-actions'

export function useJobRowNav({
  selected,
  onSelect,
  onNotice,
}: {
  selected: Set<string>
  onSelect: (next: Set<string>) => void
  onNotice: (text: string) => void
}): { rowNav: RowNav<JobDto>; dialog: ReactNode } {
  const navigate = useNavigate()
  const { can } = useAuth()
  const { ask, dialog } = useConfirm()
  const retry = useBulk('retry')
  const cancel = useBulk('cancel')
  const act = (kind: 'retry' | 'cancel', j: JobRef) =>
    ask({
      title: kind === 'retry' ? 'Retry job' : 'Cancel job',
      body:
        kind === 'retry'
          ? `Retry job ${j.id} in ${j.queue}? Only a failed or cancelled job can be retried.`
          : `Cancel job ${j.id} in ${j.queue}? A running job is asked to stop.`,
      confirmLabel: kind === 'retry' ? 'Retry job' : 'Cancel job',
      danger: kind === 'cancel',
      onConfirm: async () => {
        const r = await (kind === 'retry' ? retry : cancel).mutateAsync([j])
        onNotice(
          r.ok
            ? `${kind === 'retry' ? 'Retried' : 'Cancelled'} job ${j.id}.`
            : `Refused: ${r.firstError?.message}`,
        )
      },
    })
  return {
    dialog,
    rowNav: {
      label: (j) => `job ${j.id} in ${j.queue}, ${j.task_type}, ${j.state}`,
      open: (j) => navigate(jobPath(j)),
      openLabel: 'open the job',
      keys: [
        selectKey(selected, onSelect, jobKey),
        ...(can('write')
          ? [
              { key: 'r', label: 'retry the job (confirmed)', run: (j: JobDto) => act('retry', j) },
              { key: 'c', label: 'cancel the job (confirmed)', run: (j: JobDto) => act('cancel', j) },
            ]
          : []),
      ],
    },
  }
}
