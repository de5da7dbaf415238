/** The shell: navigation, live connection state, role, theme, sign out. */
import { useEffect, useState } from 'react'
import { NavLink, Outlet } from 'react-router'
import { KeyboardHelpButton, KeyboardHelpProvider } from '../components/keyboard'
import { AlertsNavLink } from '../features/alerts/AlertsNavLink'
import { useAuth } from '../lib/auth'
import { type LiveState, useLive } from '../lib/live'

const LABEL: Record<LiveState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  polling: 'Polling (live feed down)',
  paused: 'Paused (tab hidden)',
}

function useTheme(): [string, () => void] {
  const [theme, setTheme] = useState(
    () =>
      localStorage.getItem('dtq.theme') ??
      (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'),
  )
  useEffect(() => {
    document.documentElement.dataset.theme = theme
    localStorage.setItem('dtq.theme', theme)
  }, [theme])
  return [theme, () => setTheme(theme === 'dark' ? 'light' : 'dark')]
}

export function Layout() {
  const { state } = useLive()
  const { role, authRequired, signOut, can } = useAuth()
  const [theme, toggleTheme] = useTheme()
  return (
    <KeyboardHelpProvider>
      <div className="shell">
        <a className="skip-link" href="#content">
          Skip to content
        </a>
        <header className="top">
          <a className="brand" href="/">
            DTQ
          </a>
          <nav aria-label="main">
            <NavLink to="/" end>
              Dashboard
            </NavLink>
            <NavLink to="/jobs">Jobs</NavLink>
            <NavLink to="/search">Search</NavLink>
            <NavLink to="/jobs/new">New job</NavLink>
            <NavLink to="/dlq">Dead letters</NavLink>
            <NavLink to="/queues">Queues</NavLink>
            <NavLink to="/schedules">Schedules</NavLink>
            <NavLink to="/workers">Workers</NavLink>
            <AlertsNavLink />
            {can('admin') && <NavLink to="/audit">Audit</NavLink>}
            <NavLink to="/analytics">Analytics</NavLink>
          </nav>
          <div className="status">
            <span className={`live live-${state}`} role="status" aria-live="polite" title="live updates">
              {LABEL[state]}
            </span>
            {role && <span className="badge">{role}</span>}
            <KeyboardHelpButton />
            <button
              type="button"
              className="link"
              onClick={toggleTheme}
              aria-label={`switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}
            >
              {theme === 'dark' ? '☀' : '☾'}
            </button>
            {authRequired && (
              <button type="button" className="link" onClick={signOut}>
                Sign out
              </button>
            )}
          </div>
        </header>
        <main className="content" id="content" tabIndex={-1}>
          <Outlet />
        </main>
      </div>
    </KeyboardHelpProvider>
  )
}
