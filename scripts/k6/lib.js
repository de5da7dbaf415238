// Shared by the k6 scripts: target, auth, and a job body. Plain k6 JavaScript (no build step).
//   BASE_URL   the API base, e.g. http://localhost:8000 or https://dtq.example.com/api
//   API_TOKEN  a token with the write role (omit when the API has no API_TOKENS)
export const BASE_URL = (__ENV.BASE_URL || 'http://localhost:8000').replace(/\/$/, '')
export const TOKEN = __ENV.API_TOKEN || ''

export function headers(extra = {}) {
  const h = { 'Content-Type': 'application/json', ...extra }
  if (TOKEN) h.Authorization = `Bearer ${TOKEN}`
  return h
}

export function jobBody(taskType = __ENV.TASK_TYPE || 'echo', extra = {}) {
  return JSON.stringify({ task_type: taskType, payload: { k6: true, at: Date.now() }, ...extra })
}

export function num(name, fallback) {
  const v = __ENV[name]
  return v === undefined || v === '' ? fallback : Number(v)
}
