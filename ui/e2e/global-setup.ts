import { startStack } from './stack'

export default async function globalSetup() {
  const stack = await startStack()
  process.env.E2E_BASE_URL = stack.baseURL
  process.env.E2E_API_URL = stack.apiURL
  process.env.E2E_REDIS_URL = stack.redisURL
  return () => stack.stop()
}
