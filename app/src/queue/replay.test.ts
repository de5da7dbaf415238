import { describe, expect, it } from 'vitest'
import { decodeJob, F } from './job.ts'
import { attemptOf, attemptsOnRecord, jsonDiff, MAX_DIFFERENCES, parseJobRef, replaySpec } from './replay.ts'

describe('jsonDiff', () => {
  it.each([
    ['equal values', { a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }, []],
    ['a changed leaf', { a: 1 }, { a: 2 }, [{ path: '/a', kind: 'changed', a: 1, b: 2 }]],
    [
      'added and removed keys',
      { a: 1 },
      { b: 1 },
      [
        { path: '/a', kind: 'removed', a: 1 },
        { path: '/b', kind: 'added', b: 1 },
      ],
    ],
    [
      'arrays by position',
      [1, 2],
      [1, 3, 4],
      [
        { path: '/1', kind: 'changed', a: 2, b: 3 },
        { path: '/2', kind: 'added', b: 4 },
      ],
    ],
    [
      'kinds differ as wholes',
      { a: [1] },
      { a: { 0: 1 } },
      [{ path: '/a', kind: 'changed', a: [1], b: { 0: 1 } }],
    ],
    ['null is a value', { a: null }, { a: 0 }, [{ path: '/a', kind: 'changed', a: null, b: 0 }]],
    ['scalars at the top', 'x', 'y', [{ path: '', kind: 'changed', a: 'x', b: 'y' }]],
    [
      'JSON Pointer escapes',
      { 'a/b': 1, 'c~d': 1 },
      { 'a/b': 2, 'c~d': 2 },
      [
        { path: '/a~1b', kind: 'changed', a: 1, b: 2 },
        { path: '/c~0d', kind: 'changed', a: 1, b: 2 },
      ],
    ],
  ])('%s', (_name, a, b, want) => {
    const { differences, total } = jsonDiff(a, b)
    expect(differences).toEqual(want)
    expect(total).toBe(want.length)
  })

  it(`lists at most ${MAX_DIFFERENCES} and counts them all`, () => {
    const a = Array.from({ length: 500 }, (_, i) => i)
    const { differences, total } = jsonDiff(
      a,
      a.map((i) => i + 1),
    )
    expect(differences).toHaveLength(MAX_DIFFERENCES)
    expect(total).toBe(500)
  })
})

const job = (h: Record<string, string>, queue = 'q') =>
  decodeJob(queue, { [F.task_type]: 't', [F.payload]: '{"n":1}', [F.created_at]: '1000', ...h }, '7')

describe('replaySpec', () => {
  it("carries the original's options, not its keys, id, trace or deadline", () => {
    const original = job({
      [F.state]: 'failed',
      [F.priority]: 'high',
      [F.max_retries]: '4',
      [F.timeout_ms]: '900',
      [F.partition_key]: 'p',
      [F.idempotency_key]: 'k',
      [F.dedup]: 'unique 0 abc',
      [F.trace]: '00-x-y-01',
      [F.start_by]: '5000',
      [F.backoff]: '{"initial_ms":5}',
    })
    expect(replaySpec(original)).toEqual({
      task_type: 't',
      payload: { n: 1 },
      queue: 'q',
      priority: 'high',
      max_retries: 4,
      timeout_ms: 900,
      partition_key: 'p',
      backoff: { initial_ms: 5 },
      replay_of: 'q/7',
    })
  })

  it('applies changes (a payload of null too) and replays a partition into its queue', () => {
    const original = job({ [F.state]: 'completed' }, 'q~2')
    expect(
      replaySpec(original, { payload: null, priority: 'low', job_id: 'mine', delay_ms: 5 }),
    ).toMatchObject({
      payload: null,
      queue: 'q',
      priority: 'low',
      id: 'mine',
      delay_ms: 5,
      replay_of: 'q/7',
    })
  })
})

describe('attempts', () => {
  const errors = JSON.stringify([
    { attempt: 1, message: 'a', worker: 'w1', started_at: 10, at: 15 },
    { attempt: 3, message: 'c', class: 'E', worker: 'w2', at: 40 },
  ])
  const j = job({
    [F.state]: 'completed',
    [F.attempts]: '4',
    [F.errors]: errors,
    [F.worker]: 'w3',
    [F.started_at]: '50',
    [F.finished_at]: '58',
    [F.result]: '{"ok":true}',
  })

  it('on record: the failed ones in the history and the last', () => {
    expect(attemptsOnRecord(j)).toEqual([1, 3, 4])
    expect(attemptOf(j, 1)).toMatchObject({ outcome: 'failed', worker: 'w1', duration_ms: 5, error: 'a' })
    expect(attemptOf(j, 3)).toMatchObject({ outcome: 'failed', duration_ms: null, error_class: 'E' })
    expect(attemptOf(j, 4)).toMatchObject({
      outcome: 'completed',
      worker: 'w3',
      duration_ms: 8,
      result: { ok: true },
    })
    expect(attemptOf(j, 2)).toBeNull()
    expect(attemptOf(j, 5)).toBeNull()
  })
})

describe('parseJobRef', () => {
  it.each([
    ['q/7', { queue: 'q', id: '7' }],
    ['7', { id: '7' }],
  ])('%s', (ref, want) => expect(parseJobRef(ref)).toEqual(want))
})
