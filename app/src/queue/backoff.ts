/** Retry delays: exponential growth, capped, with "equal jitter" (half fixed, half random). */
export interface BackoffPolicy {
  initialMs: number
  multiplier: number
  maxMs: number
}

/**
 * Delay before retry number `retry` (1 = the first retry). The result lies in
 * [d/2, d] where d = min(maxMs, initialMs · multiplier^(retry-1)): never zero-spread
 * (no thundering herd), never above the cap, never below half the nominal delay.
 */
export function backoffDelayMs(
  policy: BackoffPolicy,
  retry: number,
  random: () => number = Math.random,
): number {
  const n = Math.max(1, Math.floor(retry))
  const nominal = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** (n - 1))
  const half = nominal / 2
  return Math.round(half + random() * half)
}
