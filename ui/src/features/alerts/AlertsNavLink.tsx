/** The nav's Alerts link, with how many alerts fire now (polled every 15 s from any page). */
import { useQuery } from '@tanstack/react-query'
import { NavLink } from 'react-router'
import { alertsOptions } from './api/alerts'

export function AlertsNavLink() {
  const q = useQuery({ ...alertsOptions(), refetchInterval: 15_000 })
  const firing = q.data?.firing ?? 0
  return (
    <NavLink to="/alerts">
      Alerts
      {firing > 0 && (
        <span className="badge nav-count severity-critical" title={`${firing} firing`}>
          {firing}
        </span>
      )}
    </NavLink>
  )
}
