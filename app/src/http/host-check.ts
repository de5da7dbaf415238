/**
 * The DNS-rebinding guard. A page on evil.example whose name is made to resolve to 127.0.0.1
 * reaches a laptop's `dtq dev` as its own origin (no CORS in the way); only the Host header
 * (`evil.example`) gives it away. Without tokens that is the admin API, so an API running without
 * tokens in development answers only to localhost names. ALLOWED_HOSTS adds names (and then
 * applies in every mode) or, with `*`, turns the guard off.
 */
import type { Config } from '../config.ts'

/** Whether a request's Host header is one this API answers to. */
export type HostCheck = (host: string | undefined) => boolean

/** The check for these settings, or null when any Host is fine. */
export function hostCheck(config: Config, authRequired: boolean): HostCheck | null {
  const list = config.allowedHosts
  if (list.includes('*')) return null
  const auto = list.length === 1 && list[0] === 'auto'
  if (auto && (config.environment === 'production' || authRequired)) return null
  const names = list.filter((h) => h !== 'auto').map((h) => h.toLowerCase().replace(/\.$/, ''))
  return (header) => {
    const host = hostName(header)
    if (host === null) return false
    return (
      isLocalName(host) || names.some((n) => (n.startsWith('*.') ? host.endsWith(n.slice(1)) : host === n))
    )
  }
}

/** The name in a Host header: lower-cased, without the port or a trailing dot; null if malformed. */
export function hostName(header: string | undefined): string | null {
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]/@\s]+)(:\d{1,5})?$/.exec((header ?? '').trim().toLowerCase())
  return m ? m[1]!.replace(/\.$/, '') : null
}

/** Names only this machine answers to (browsers resolve *.localhost to loopback themselves). */
function isLocalName(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || host === '127.0.0.1' || host === '[::1]'
}
