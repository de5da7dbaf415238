/**
 * Bearer tokens with roles. A route declares the role it needs in its config
 * (`config: { role: 'write' }`); `public` routes need none. Tokens are compared in constant
 * time (over their SHA-256, against every configured token) and never logged.
 */
import { hash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { DtqError } from '../errors.ts'

export type Role = 'read' | 'write' | 'admin'
export type RouteRole = Role | 'public'
const RANK: Record<Role, number> = { read: 1, write: 2, admin: 3 }

const digest = (s: string): Buffer => hash('sha256', s, 'buffer')

/** The token of an `Authorization: Bearer <token>` header; the scheme in any case (RFC 7235). */
export function bearerToken(header: string | undefined): string | undefined {
  return header === undefined ? undefined : /^bearer +([^ ]+) *$/i.exec(header)?.[1]
}

/** Who presented a token: its name (API_TOKENS token:role:name, default <role>-<n>) and role. */
export interface Actor {
  name: string
  role: Role
}

export class TokenAuth {
  private readonly tokens: Array<{ hash: Buffer; role: Role; name: string }>
  /** False when no tokens are configured (development) or auth is explicitly disabled. */
  readonly required: boolean

  constructor(apiTokens: string, disabled: boolean) {
    this.tokens = apiTokens
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)
      .map((pair, i) => {
        const [token, role, name] = pair.split(':') as [string, Role, string | undefined]
        return { hash: digest(token), role, name: name || `${role}-${i + 1}` }
      })
    this.required = !disabled && this.tokens.length > 0
  }

  /**
   * Tokens recently found valid, so a client's every request does not hash again (a SHA-256 was
   * ~4 % of the API's CPU under load). A lookup's timing depends on V8's seeded string hash, not
   * on how much of a valid token a guess shares; failed guesses are never kept. Bounded.
   */
  private readonly valid = new Map<string, Actor>()

  /** The role of a presented token, or null. Looks at every token whatever matches. */
  roleOf(token: string): Role | null {
    return this.actorOf(token)?.role ?? null
  }

  /** The name and role of a presented token, or null. Looks at every token whatever matches. */
  actorOf(token: string): Actor | null {
    const known = this.valid.get(token)
    if (known) return known
    const h = digest(token)
    let found: Actor | null = null
    for (const t of this.tokens)
      if (timingSafeEqual(h, t.hash) && !found) found = { name: t.name, role: t.role }
    if (found) {
      if (this.valid.size >= 256) this.valid.clear()
      this.valid.set(token, found)
    }
    return found
  }

  /** Throws 401/403 unless the request carries a token whose role covers `needed`. */
  check(req: FastifyRequest, needed: RouteRole, allowQueryToken: boolean): Role {
    if (needed === 'public') return 'admin'
    if (!this.required) return 'admin'
    let token = bearerToken(req.headers.authorization)
    if (token === undefined && allowQueryToken) {
      const q = (req.query as Record<string, unknown> | undefined)?.access_token
      if (typeof q === 'string') token = q
    }
    if (!token) throw new DtqError('UNAUTHORIZED', 'a bearer token is required')
    const role = this.roleOf(token)
    if (!role) throw new DtqError('UNAUTHORIZED', 'the token is not valid')
    if (RANK[role] < RANK[needed])
      throw new DtqError('FORBIDDEN', `this needs the ${needed} role; the token has ${role}`)
    return role
  }
}
