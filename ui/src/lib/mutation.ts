/** Mutations that refresh what they change. */
import { type QueryKey, useMutation, useQueryClient } from '@tanstack/react-query'

/**
 * A mutation that, once settled (done or failed), invalidates the given query keys (from
 * `queryKeys`); it stays pending until the visible ones have refetched, so a confirmed action's
 * dialog closes on fresh data.
 */
export function useInvalidatingMutation<A, R>(mutationFn: (arg: A) => Promise<R>, keys: readonly QueryKey[]) {
  const qc = useQueryClient()
  return useMutation({
    mutationFn,
    onSettled: () => Promise.all(keys.map((queryKey) => qc.invalidateQueries({ queryKey }))),
  })
}
