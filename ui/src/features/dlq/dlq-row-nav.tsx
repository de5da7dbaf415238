/**
 * The keyboard of the dead-letter tables' rows (DataTable `rowNav`): a job row opens its job
 * (Enter), is selected (x), retried after a confirmation (r); a group row shows only its dead
 * letters (Enter).
 */
import type { DlqJobDto } from '@dtq/app/schemas'
import type { ReactNode } from 'react'
import { useNavigate } from 'react-router'
import { useConfirm } from '../../components/confirm'
import { type RowNav, selectKey } from '../../components/DataTable'
import { useAuth } from '../../lib/auth'
import { jobKey, jobPath } from '../../lib/job-ref'
import { useRetryDead } from './api/dlq'

export function useDlqRowNav({
  selected,
  onSelect,
  onNotice,
}: {
  selected: Set<string>
  onSelect: (next: Set<string>) => void
  onNotice: (text: string) => void
}): { rowNav: RowNav<DlqJobDto>; dialog: ReactNode } {
  const navigate = useNavigate()
  const { can } = useAuth()
  const { ask, dialog } = useConfirm()
  const retry = useRetryDead()
  return {
    dialog,
    rowNav: {
      label: (j) => `dead letter ${j.id} in ${j.queue}, ${j.task_type}: ${j.error}`,
      open: (j) => navigate(jobPath(j)),
      openLabel: 'open the job',
      keys: [
        selectKey(selected, onSelect, jobKey),
        ...(can('write')
          ? [
              {
                key: 'r',
                label: 'retry the dead letter (confirmed)',
                run: (j: DlqJobDto) =>
                  ask({
                    title: 'Retry dead letter',
                    body: `Retry job ${j.id} in ${j.queue} now?`,
                    confirmLabel: 'Retry',
                    onConfirm: async () => {
                      const n = await retry.mutateAsync([j])
                      onNotice(`Retried ${n} job(s).`)
                    },
                  }),
              },
            ]
          : []),
      ],
    },
  }
}
