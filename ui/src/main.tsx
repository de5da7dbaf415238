import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'

/** Placeholder: the console (dashboard, jobs, DLQ, workers) is built in its own issue. */
function App() {
  return (
    <main
      style={{ fontFamily: 'system-ui, sans-serif', maxWidth: 640, margin: '4rem auto', lineHeight: 1.5 }}
    >
      <h1>DTQ console</h1>
      <p>
        The live console is on its way. Meanwhile, drive DTQ from the command line:{' '}
        <code>pnpm dtq stats</code>, <code>pnpm dtq jobs</code>, <code>pnpm dtq dlq ls</code>.
      </p>
    </main>
  )
}

const root = document.getElementById('root')
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  )
}
