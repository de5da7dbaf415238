/**
 * The data states of a page, drawn the same everywhere: loading, the error (with "Try again"),
 * an optional "not found" (404), "ambiguous" (an id in several queues) and "empty" state, else
 * the data itself.
 */
import type { ReactNode } from 'react'
import { ApiError } from '../lib/api'
import { ambiguousQueues } from '../lib/job-ref'
import { Empty, ErrorBox, Loading } from './ui'

/** What is read from a query (a TanStack `useQuery` result fits). */
export interface QueryLike<T> {
  isPending: boolean
  error: unknown
  data: T | undefined
  refetch: () => unknown
}

export function QueryState<T>({
  query,
  loading,
  notFound,
  ambiguous,
  isEmpty,
  empty,
  children,
}: {
  query: QueryLike<T>
  /** What is loading, as in "Loading workers". */
  loading: string
  /** Shown instead of the error when the API answers 404. */
  notFound?: ReactNode
  /** Shown instead of the error when the API answers 409 AMBIGUOUS_JOB_ID, given the candidate queues. */
  ambiguous?: (queues: string[]) => ReactNode
  isEmpty?: (data: T) => boolean
  /** Shown (in the empty box) when `isEmpty` says so. */
  empty?: ReactNode
  children: (data: T) => ReactNode
}) {
  if (query.isPending) return <Loading what={loading} />
  if (query.error) {
    if (notFound && query.error instanceof ApiError && query.error.status === 404) return notFound
    const queues = ambiguousQueues(query.error)
    if (ambiguous && queues) return ambiguous(queues)
    return <ErrorBox error={query.error} retry={() => query.refetch()} />
  }
  const data = query.data as T
  if (isEmpty?.(data)) return <Empty>{empty}</Empty>
  return children(data)
}
