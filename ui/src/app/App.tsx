/** Providers and routes. Each test (and each page load) gets a fresh QueryClient. */
import { QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { useState } from 'react'
import { createBrowserRouter, RouterProvider } from 'react-router'
import { ErrorBox, Loading } from '../components/ui'
import { AlertsPage } from '../features/alerts/AlertsPage'
import { AnalyticsPage } from '../features/analytics/AnalyticsPage'
import { AuditPage } from '../features/audit/AuditPage'
import { SignInPage } from '../features/auth/SignInPage'
import { DashboardPage } from '../features/dashboard/DashboardPage'
import { DlqPage } from '../features/dlq/DlqPage'
import { FlowPage } from '../features/flows/FlowPage'
import { ComparePage } from '../features/jobs/ComparePage'
import { JobDetailPage } from '../features/jobs/JobDetailPage'
import { JobsPage } from '../features/jobs/JobsPage'
import { NewJobPage } from '../features/jobs/NewJobPage'
import { LimitsPage } from '../features/limits/LimitsPage'
import { QueuePage } from '../features/queues/QueuePage'
import { QueuesPage } from '../features/queues/QueuesPage'
import { SchedulesPage } from '../features/schedules/SchedulesPage'
import { SearchPage } from '../features/search/SearchPage'
import { WorkerPage } from '../features/workers/WorkerPage'
import { WorkersPage } from '../features/workers/WorkersPage'
import { AuthProvider, useAuth } from '../lib/auth'
import { LiveProvider } from '../lib/live'
import { Layout } from './Layout'

const router = createBrowserRouter([
  {
    path: '/',
    element: <Layout />,
    errorElement: <ErrorBox error={new Error('This page failed to load.')} />,
    children: [
      { index: true, element: <DashboardPage /> },
      { path: 'jobs', element: <JobsPage /> },
      { path: 'search', element: <SearchPage /> },
      { path: 'jobs/new', element: <NewJobPage /> },
      { path: 'jobs/:id', element: <JobDetailPage /> },
      { path: 'compare', element: <ComparePage /> },
      { path: 'flows/:id', element: <FlowPage /> },
      { path: 'dlq', element: <DlqPage /> },
      { path: 'queues', element: <QueuesPage /> },
      { path: 'queues/:queue', element: <QueuePage /> },
      { path: 'queues/:queue/limits', element: <LimitsPage /> },
      { path: 'workers', element: <WorkersPage /> },
      { path: 'workers/:id', element: <WorkerPage /> },
      { path: 'schedules', element: <SchedulesPage /> },
      { path: 'alerts', element: <AlertsPage /> },
      { path: 'audit', element: <AuditPage /> },
      { path: 'analytics', element: <AnalyticsPage /> },
    ],
  },
])

function Gate() {
  const { status, error } = useAuth()
  if (status === 'loading') return <Loading what="Connecting to the API" />
  if (status === 'needs-token') return <SignInPage />
  if (status === 'error') return <ErrorBox error={error} retry={() => location.reload()} />
  return (
    <LiveProvider enabled>
      <RouterProvider router={router} />
    </LiveProvider>
  )
}

export function App() {
  const [client] = useState(
    () =>
      new QueryClient({
        defaultOptions: { queries: { staleTime: 2000, refetchOnWindowFocus: true, retry: 1 } },
      }),
  )
  return (
    <QueryClientProvider client={client}>
      <AuthProvider>
        <Gate />
      </AuthProvider>
    </QueryClientProvider>
  )
}
