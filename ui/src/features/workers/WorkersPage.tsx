/** Live workers: host, pid, queues, concurrency, active, processed, failed, heartbeat, state; each links to its page. */
import type { WorkerDto } from '@dtq/app/schemas'
import { useState } from 'react'
import { Link, useNavigate } from 'react-router'
import { useConfirm } from '../../components/confirm'
import { type Column, DataTable } from '../../components/DataTable'
import { QueryState } from '../../components/QueryState'
import { Card, ConfirmButton, ErrorBox, StateBadge } from '../../components/ui'
import { useAuth } from '../../lib/auth'
import { ago, num } from '../../lib/format'
import { useWorkerCommand, useWorkerConcurrency, useWorkers, type WorkerCommand } from './api/workers'

/** Pause a running worker, resume a paused one. */
function PauseButton({
  worker: w,
  disabled,
  onCommand,
}: {
  worker: WorkerDto
  disabled: boolean
  onCommand: (command: WorkerCommand) => void
}) {
  const command = w.state === 'paused' ? 'resume' : 'pause'
  return (
    <button
      type="button"
      disabled={disabled || (command === 'pause' && w.state !== 'running')}
      onClick={() => onCommand(command)}
      aria-label={`${command} ${w.id}`}
    >
      {command === 'pause' ? 'Pause' : 'Resume'}
    </button>
  )
}

/** Changes a worker's concurrency after a confirmation; running jobs go on (ADR 0020). */
export function ConcurrencyButton({ worker: w, disabled }: { worker: WorkerDto; disabled: boolean }) {
  const set = useWorkerConcurrency()
  const [n, setN] = useState(String(w.concurrency))
  const value = Number(n)
  return (
    <>
      <ConfirmButton
        disabled={disabled || w.state === 'stopping'}
        title={`Concurrency of ${w.id}`}
        body={
          <label>
            Jobs at once{' '}
            <input
              aria-label="new concurrency"
              type="number"
              min={1}
              max={10000}
              value={n}
              onChange={(e) => setN(e.target.value)}
            />
            <p className="muted">Running jobs go on; lowered, no job starts until fewer run.</p>
          </label>
        }
        confirmLabel="Set concurrency"
        onConfirm={() => set.mutateAsync({ id: w.id, concurrency: value }).catch(() => {})}
      >
        Concurrency
      </ConfirmButton>
      {set.error && <ErrorBox error={set.error} />}
    </>
  )
}

export function WorkersPage() {
  const q = useWorkers()
  const cmd = useWorkerCommand()
  const { can } = useAuth()
  const navigate = useNavigate()
  const { ask, dialog } = useConfirm()
  const columns: Column<WorkerDto>[] = [
    {
      header: 'Worker',
      className: 'mono',
      cell: (w) => <Link to={`/workers/${encodeURIComponent(w.id)}`}>{w.id}</Link>,
      sortValue: (w) => w.id,
    },
    { header: 'Host', cell: (w) => w.host, sortValue: (w) => w.host },
    { header: 'PID', cell: (w) => w.pid },
    { header: 'Queues', cell: (w) => w.queues.join(', ') },
    {
      header: 'Active',
      cell: (w) => (
        <>
          {w.active} / {w.concurrency}
        </>
      ),
      sortValue: (w) => w.active,
    },
    { header: 'Processed', cell: (w) => num(w.processed), sortValue: (w) => w.processed },
    { header: 'Failed', cell: (w) => num(w.failed), sortValue: (w) => w.failed },
    { header: 'Heartbeat', cell: (w) => ago(w.heartbeat_at) },
    { header: 'State', cell: (w) => <StateBadge state={w.state} />, sortValue: (w) => w.state },
    {
      header: 'Actions',
      hideHeader: true,
      cell: (w) => (
        <>
          <PauseButton
            worker={w}
            disabled={!can('admin')}
            onCommand={(command) => cmd.mutate({ id: w.id, command })}
          />
          <ConcurrencyButton worker={w} disabled={!can('admin')} />
          <ConfirmButton
            danger
            disabled={!can('admin') || w.state === 'stopping' || w.state === 'draining'}
            title="Drain worker"
            body="The worker takes no new jobs, finishes what it runs, then stops."
            confirmLabel="Drain"
            onConfirm={() => cmd.mutateAsync({ id: w.id, command: 'drain' })}
          >
            Drain
          </ConfirmButton>
        </>
      ),
    },
  ]
  return (
    <Card title="Workers">
      {cmd.error && <ErrorBox error={cmd.error} />}
      {dialog}
      <QueryState
        query={q}
        loading="Loading workers"
        isEmpty={(d) => !d.items.length}
        empty={
          <>
            No live workers. Start one with <code>pnpm dtq worker</code>.
          </>
        }
      >
        {(d) => (
          <DataTable
            caption="Live workers"
            rows={d.items}
            columns={columns}
            rowKey={(w) => w.id}
            defaultSort={{ header: 'Worker', dir: 'ascending' }}
            rowNav={{
              label: (w) => `worker ${w.id}, ${w.state}, ${w.active} of ${w.concurrency} running`,
              open: (w) => navigate(`/workers/${encodeURIComponent(w.id)}`),
              openLabel: 'open the worker',
              keys: can('admin')
                ? [
                    {
                      key: 'p',
                      label: 'pause or resume the worker (confirmed)',
                      run: (w) => {
                        const command = w.state === 'paused' ? 'resume' : 'pause'
                        ask({
                          title: `${command === 'pause' ? 'Pause' : 'Resume'} worker ${w.id}`,
                          body:
                            command === 'pause'
                              ? 'The worker takes no new jobs; the ones it runs go on.'
                              : 'The worker takes jobs again.',
                          confirmLabel: command === 'pause' ? 'Pause' : 'Resume',
                          onConfirm: () => cmd.mutateAsync({ id: w.id, command }).catch(() => {}),
                        })
                      },
                    },
                    {
                      key: 'd',
                      label: 'drain the worker (confirmed)',
                      run: (w) =>
                        ask({
                          title: `Drain worker ${w.id}`,
                          body: 'The worker takes no new jobs, finishes what it runs, then stops.',
                          confirmLabel: 'Drain',
                          danger: true,
                          onConfirm: () => cmd.mutateAsync({ id: w.id, command: 'drain' }).catch(() => {}),
                        }),
                    },
                  ]
                : [],
            }}
          />
        )}
      </QueryState>
    </Card>
  )
}
