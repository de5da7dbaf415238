import { describe, expect, it } from 'vitest'
import { STATES } from './job.ts'
import {
  CANCELLABLE_STATES,
  canTransition,
  RETRYABLE_STATES,
  TERMINAL_STATES,
  TRANSITIONS,
} from './states.ts'

describe('state machine', () => {
  it('reaches every state and leaves every non-terminal one', () => {
    for (const s of STATES) {
      expect(TRANSITIONS.some((t) => t.to === s)).toBe(true)
      if (!TERMINAL_STATES.has(s)) expect(TRANSITIONS.some((t) => t.from === s)).toBe(true)
    }
  })

  it('never leaves completed', () => {
    expect(TRANSITIONS.filter((t) => t.from === 'completed')).toEqual([])
  })

  it('agrees with the cancel and retry rules', () => {
    for (const s of STATES) {
      expect(canTransition(s, 'cancel')).toBe(CANCELLABLE_STATES.has(s))
      expect(canTransition(s, 'requeue')).toBe(RETRYABLE_STATES.has(s))
    }
  })
})
