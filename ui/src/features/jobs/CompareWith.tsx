/** On a job's page: compare it with another job, or two of its attempts (ADR 0028). */
import type { JobDto } from '@dtq/app/schemas'
import { useState } from 'react'
import { useNavigate } from 'react-router'
import { Card } from '../../components/ui'
import { qs } from '../../lib/api'
import { jobKey } from '../../lib/job-ref'
import { attemptsOnRecord } from './api/replay'

export function CompareWith({ job }: { job: JobDto }) {
  const navigate = useNavigate()
  const [other, setOther] = useState(job.replay_of ?? job.replays?.last[0]?.job ?? '')
  const on = attemptsOnRecord(job)
  const [x, setX] = useState(on[0] ?? 1)
  const [y, setY] = useState(on.at(-1) ?? 1)
  return (
    <Card title="Compare">
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault()
          if (other.trim()) navigate(`/compare${qs({ a: jobKey(job), b: other.trim() })}`)
        }}
      >
        <label className="grow">
          Compare with…
          <input
            aria-label="job to compare with"
            placeholder="queue/id, or an id"
            value={other}
            onChange={(e) => setOther(e.target.value)}
          />
        </label>
        <button type="submit" disabled={!other.trim()}>
          Compare jobs
        </button>
      </form>
      {on.length >= 2 && (
        <form
          className="filters"
          onSubmit={(e) => {
            e.preventDefault()
            navigate(`/compare${qs({ a: jobKey(job), attempts: `${x},${y}` })}`)
          }}
        >
          <label>
            Attempt
            <select aria-label="first attempt" value={x} onChange={(e) => setX(Number(e.target.value))}>
              {on.map((n) => (
                <option key={n}>{n}</option>
              ))}
            </select>
          </label>
          <label>
            with attempt
            <select aria-label="second attempt" value={y} onChange={(e) => setY(Number(e.target.value))}>
              {on.map((n) => (
                <option key={n}>{n}</option>
              ))}
            </select>
          </label>
          <button type="submit" disabled={x === y}>
            Compare attempts
          </button>
        </form>
      )}
    </Card>
  )
}
