import { describe, expect, it } from 'vitest'
import { backoffDelayMs } from './backoff.ts'

const policy = { initialMs: 1000, multiplier: 2, maxMs: 10_000 }

describe('backoffDelayMs', () => {
  it.each([
    [1, 500, 1000],
    [2, 1000, 2000],
    [3, 2000, 4000],
    [4, 4000, 8000],
    [5, 5000, 10_000],
    [50, 5000, 10_000],
  ])('retry %i lies in [%i, %i]', (retry, lo, hi) => {
    expect(backoffDelayMs(policy, retry, () => 0)).toBe(lo)
    expect(backoffDelayMs(policy, retry, () => 1)).toBe(hi)
    for (let i = 0; i < 100; i++) {
      const d = backoffDelayMs(policy, retry)
      expect(d).toBeGreaterThanOrEqual(lo)
      expect(d).toBeLessThanOrEqual(hi)
    }
  })

  it('spreads delays (jitter)', () => {
    const seen = new Set(Array.from({ length: 50 }, () => backoffDelayMs(policy, 3)))
    expect(seen.size).toBeGreaterThan(10)
  })

  it('treats nonsense retry numbers as the first retry', () => {
    expect(backoffDelayMs(policy, 0, () => 1)).toBe(1000)
    expect(backoffDelayMs(policy, -3, () => 1)).toBe(1000)
  })
})
