export interface JobFilters {
  status?: string
  task_type?: string
  queue?: string
  cursor?: string
}
/** Query keys of the jobs feature. */
export const jobKeys = {
  all: ['jobs'] as const,
  list: (f: JobFilters) => ['jobs', 'list', f] as const,
  search: (term: string) => ['jobs', 'search', term] as const,
  detail: (id: string) => ['job', id] as const,
}
