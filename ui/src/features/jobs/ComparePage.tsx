/**
 * Two jobs, or two attempts of one job, side by side (ADR 0028): `/compare?a=<queue>/<id>&b=…`
 * or `/compare?a=<queue>/<id>&attempts=1,3`. The server computes the differences (JSON Pointer
 * paths); every leaf of both views is listed side by side, the differing ones highlighted.
 */
import { useState } from 'react'
import { Link } from 'react-router'
import { QueryState } from '../../components/QueryState'
import { Card, Empty } from '../../components/ui'
import { time } from '../../lib/format'
import { jobPath, parseJobKey } from '../../lib/job-ref'
import { useUrlParams } from '../../lib/url-params'
import { useCompare, useCompareAttempts } from './api/replay'

interface Diff {
  path: string
  kind: 'added' | 'removed' | 'changed'
}
interface Comparison {
  same: boolean
  total: number
  differences: Diff[]
}

export function ComparePage() {
  const { get } = useUrlParams()
  const a = get('a')
  const b = get('b')
  const attempts = /^(\d+),(\d+)$/.exec(get('attempts') ?? '')
  if (a && attempts) return <CompareAttempts job={a} x={Number(attempts[1])} y={Number(attempts[2])} />
  if (a && b) return <CompareJobs a={a} b={b} />
  return (
    <Card title="Compare">
      <Empty>
        Pick two jobs to compare: select two in the <Link to="/jobs">job list</Link>, or use "Compare with…"
        on a job's page (two attempts of one job there, too).
      </Empty>
    </Card>
  )
}

/** A `queue/id` (or bare id) as a link to the job's page. */
function JobLink({ refText }: { refText: string }) {
  const r = parseJobKey(refText.includes('/') ? refText.replace(/#.*$/, '') : `/${refText}`)
  return (
    <Link className="mono" to={jobPath(r)}>
      {refText}
    </Link>
  )
}

function CompareJobs({ a, b }: { a: string; b: string }) {
  const q = useCompare(a, b)
  return (
    <QueryState query={q} loading="Comparing">
      {(c) => (
        <Card
          title={
            <>
              Compare <JobLink refText={c.a.ref} /> with <JobLink refText={c.b.ref} />
            </>
          }
        >
          <div className="grid2 compare-meta">
            {[c.a, c.b].map((s, i) => (
              <dl className="facts" key={s.ref} aria-label={i === 0 ? 'job a' : 'job b'}>
                <dt>{i === 0 ? 'A' : 'B'}</dt>
                <dd>
                  <JobLink refText={s.ref} /> {s.source !== 'redis' ? `(from ${s.source})` : ''}
                </dd>
                <dt>Created</dt>
                <dd>{time(s.created_at)}</dd>
                <dt>Started</dt>
                <dd>{time(s.started_at)}</dd>
                <dt>Finished</dt>
                <dd>{time(s.finished_at)}</dd>
                <dt>Worker</dt>
                <dd className="mono">{s.worker ?? '—'}</dd>
              </dl>
            ))}
          </div>
          <SideBySide a={c.a.view} b={c.b.view} c={c} />
        </Card>
      )}
    </QueryState>
  )
}

function CompareAttempts({ job, x, y }: { job: string; x: number; y: number }) {
  const q = useCompareAttempts(job, x, y)
  return (
    <QueryState query={q} loading="Comparing attempts">
      {(c) => (
        <Card
          title={
            <>
              Attempts {x} and {y} of <JobLink refText={job} />
            </>
          }
        >
          <SideBySide a={c.a.view} b={c.b.view} c={c} labels={[`attempt ${x}`, `attempt ${y}`]} />
        </Card>
      )}
    </QueryState>
  )
}

/** Every leaf of a JSON value by its JSON Pointer (empty objects and arrays are leaves). */
function leaves(v: unknown, path = '', out = new Map<string, unknown>()): Map<string, unknown> {
  if (v !== null && typeof v === 'object' && Object.keys(v).length) {
    for (const [k, x] of Object.entries(v))
      leaves(x, `${path}/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`, out)
  } else out.set(path, v)
  return out
}

/** A leaf as shown: JSON, and a time (`…_at`, ms since the epoch) as a date too. */
const show = (path: string, v: unknown) =>
  v === undefined ? '' : path.endsWith('_at') && typeof v === 'number' ? time(v) : JSON.stringify(v)

/**
 * Both views' leaves in rows: path, A, B; a row under a difference's path is highlighted and says
 * its kind in words (not by colour alone). Under 640 px each row is a card: the path, then A and B
 * stacked, each named (ADR 0034).
 */
function SideBySide({
  a,
  b,
  c,
  labels = ['A', 'B'],
}: {
  a: unknown
  b: unknown
  c: Comparison
  labels?: [string, string]
}) {
  const [onlyDiff, setOnlyDiff] = useState(false)
  const la = leaves(a)
  const lb = leaves(b)
  const paths = [...new Set([...la.keys(), ...lb.keys()])].sort()
  const kindOf = (p: string) =>
    c.differences.find((d) => d.path === p || p.startsWith(`${d.path}/`) || d.path.startsWith(`${p}/`))?.kind
  const rows = paths.map((p) => ({ p, kind: kindOf(p) })).filter((r) => !onlyDiff || r.kind)
  return (
    <>
      <p role="status" className={c.same ? 'muted' : 'notice'}>
        {c.same
          ? 'No differences.'
          : `${c.total} difference${c.total === 1 ? '' : 's'}${c.total > c.differences.length ? ` (the first ${c.differences.length} listed)` : ''}.`}{' '}
        <label className="inline-check">
          <input type="checkbox" checked={onlyDiff} onChange={(e) => setOnlyDiff(e.target.checked)} /> only
          differences
        </label>
      </p>
      <div className="table-wrap">
        <table className="table data-table compare-table">
          <caption className="sr-only">
            Comparison of {labels[0]} and {labels[1]}: every field, differences marked
          </caption>
          <thead>
            <tr>
              <th scope="col">Field</th>
              <th scope="col">{labels[0]}</th>
              <th scope="col">{labels[1]}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map(({ p, kind }) => (
              <tr key={p} className={kind ? `diff diff-${kind}` : ''} data-diff={kind ?? 'same'}>
                <th scope="row" className="mono">
                  {p.slice(1) || '(value)'}
                  {kind && <span className="diff-kind"> {kind}</span>}
                </th>
                <td className="mono" data-label={labels[0]}>
                  {show(p, la.get(p))}
                </td>
                <td className="mono" data-label={labels[1]}>
                  {show(p, lb.get(p))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  )
}
