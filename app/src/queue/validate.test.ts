import { describe, expect, it } from 'vitest'
import { encodeJson, jsonDepth, QUEUE_PATTERN } from './validate.ts'

describe('validation rules', () => {
  it('keeps key-breaking characters out of queue names', () => {
    for (const bad of ['', 'a{b}', 'a:b', 'a*', 'a b', 'x\n', 'é', 'q'.repeat(65)])
      expect(QUEUE_PATTERN.test(bad)).toBe(false)
    for (const ok of ['default', 'emails.high', 'a-b_c', 'Q1']) expect(QUEUE_PATTERN.test(ok)).toBe(true)
  })

  it('measures JSON depth', () => {
    expect(jsonDepth(1)).toBe(0)
    expect(jsonDepth({ a: [1, { b: 2 }] })).toBe(3)
    let deep: unknown = 1
    for (let i = 0; i < 10_000; i++) deep = [deep]
    expect(jsonDepth(deep)).toBeGreaterThan(32)
  })

  it('encodes within limits and explains what is wrong otherwise', () => {
    const problems: string[] = []
    expect(encodeJson(problems, 'payload', { a: 1 }, 100)).toBe('{"a":1}')
    expect(encodeJson(problems, 'payload', undefined, 100)).toBe('null')
    expect(encodeJson(problems, 'payload', 'x'.repeat(200), 100)).toBeNull()
    const circular: Record<string, unknown> = {}
    circular.self = circular
    expect(encodeJson(problems, 'payload', circular, 100)).toBeNull()
    expect(encodeJson(problems, 'payload', 10n, 100)).toBeNull()
    expect(problems).toHaveLength(3)
    expect(problems[0]).toMatch(/above the limit of 100/)
  })
})
