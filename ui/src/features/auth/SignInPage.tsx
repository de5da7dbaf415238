/** Sign-in with an API token (kept in this browser's local storage). */
import { useState } from 'react'
import { ApiError } from '../../lib/api'
import { useAuth } from '../../lib/auth'

export function SignInPage() {
  const { signIn } = useAuth()
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  return (
    <main className="signin">
      <h1>DTQ console</h1>
      <p>This API requires a token. Paste one of the API_TOKENS (its role decides what you can do).</p>
      <form
        onSubmit={async (e) => {
          e.preventDefault()
          setBusy(true)
          setError(null)
          try {
            await signIn(String(new FormData(e.currentTarget).get('token') ?? '').trim())
          } catch (err) {
            setError(
              err instanceof ApiError && err.status === 401
                ? 'That token is not valid.'
                : (err as Error).message,
            )
          } finally {
            setBusy(false)
          }
        }}
      >
        <label>
          API token
          <input name="token" type="password" autoComplete="current-password" required />
        </label>
        <button type="submit" className="primary" disabled={busy}>
          Sign in
        </button>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  )
}
