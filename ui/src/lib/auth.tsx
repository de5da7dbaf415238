/**
 * Who the console acts as: asks /auth/whoami with the stored token. When the API requires a
 * token and none (or a bad one) is stored, the app shows the sign-in page. `can(role)` gates
 * every mutating control, so a read-only token sees them disabled.
 */
import { useQuery, useQueryClient } from '@tanstack/react-query'
import { createContext, type ReactNode, useContext, useMemo } from 'react'
import { ApiError, api, tokenStore } from './api'
import { queryKeys } from './query-keys'

export type Role = 'read' | 'write' | 'admin'
const RANK: Record<Role, number> = { read: 1, write: 2, admin: 3 }

interface WhoAmI {
  role: Role
  auth_required: boolean
  environment: string
}

interface Auth {
  status: 'loading' | 'signed-in' | 'needs-token' | 'error'
  role: Role | null
  authRequired: boolean
  environment: string
  error: Error | null
  can(role: Role): boolean
  signIn(token: string): Promise<void>
  signOut(): void
}

const AuthContext = createContext<Auth | null>(null)

export function AuthProvider({ children }: { children: ReactNode }) {
  const qc = useQueryClient()
  const q = useQuery({
    queryKey: queryKeys.whoami,
    queryFn: ({ signal }) => api<WhoAmI>('/auth/whoami', { signal }),
    retry: (n, err) => !(err instanceof ApiError && err.status === 401) && n < 2,
    staleTime: 60_000,
  })
  const value = useMemo<Auth>(() => {
    const needsToken = q.error instanceof ApiError && q.error.status === 401
    const role = q.data?.role ?? null
    return {
      status: q.isPending ? 'loading' : needsToken ? 'needs-token' : q.error ? 'error' : 'signed-in',
      role,
      authRequired: q.data?.auth_required ?? needsToken,
      environment: q.data?.environment ?? 'production',
      error: needsToken ? null : (q.error as Error | null),
      can: (needed) => role !== null && RANK[role] >= RANK[needed],
      async signIn(token) {
        const who = await fetchWhoami(token)
        tokenStore.set(token)
        qc.setQueryData(queryKeys.whoami, who)
        await qc.invalidateQueries()
      },
      signOut() {
        tokenStore.clear()
        qc.clear()
        void qc.invalidateQueries({ queryKey: queryKeys.whoami })
      },
    }
  }, [q.data, q.error, q.isPending, qc])
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>
}

async function fetchWhoami(token: string): Promise<WhoAmI> {
  const previous = tokenStore.get()
  tokenStore.set(token)
  try {
    return await api<WhoAmI>('/auth/whoami')
  } finally {
    if (previous === null) tokenStore.clear()
    else tokenStore.set(previous)
  }
}

export function useAuth(): Auth {
  const a = useContext(AuthContext)
  if (!a) throw new Error('useAuth outside AuthProvider')
  return a
}
