/** Shared building blocks: the pieces of the data states (loading, empty, error; pages draw them through
 * QueryState), badges, buttons, confirm dialog. */
import { type ReactNode, useRef, useState } from 'react'
import { allExpanded, darkStyles, defaultStyles, JsonView as Json } from 'react-json-view-lite'
import 'react-json-view-lite/dist/index.css'

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p className="muted" role="status" aria-live="polite">
      {what}…
    </p>
  )
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>
}

export function ErrorBox({ error, retry }: { error: unknown; retry?: () => void }) {
  return (
    <div className="error" role="alert">
      <strong>Something went wrong.</strong> {(error as Error)?.message ?? String(error)}{' '}
      {retry && (
        <button type="button" className="link" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  )
}

export function StateBadge({ state }: { state: string }) {
  return <span className={`badge state-${state}`}>{state}</span>
}

export function Card({
  title,
  children,
  actions,
}: {
  title?: ReactNode
  children: ReactNode
  actions?: ReactNode
}) {
  return (
    <section className="card">
      {(title || actions) && (
        <header className="card-head">
          {title && <h2>{title}</h2>}
          {actions && <div className="actions">{actions}</div>}
        </header>
      )}
      {children}
    </section>
  )
}

export function Progress({ value }: { value: number | null }) {
  if (value === null) return null
  const v = Math.max(0, Math.min(100, value))
  return (
    <div
      className="progress"
      role="progressbar"
      aria-valuenow={v}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-label="progress"
    >
      <div style={{ width: `${v}%` }} />
      <span>{v}%</span>
    </div>
  )
}

/** The library's light styles with colours that reach 4.5:1 on white (styles.css, json-light-*). */
const lightStyles = {
  ...defaultStyles,
  stringValue: `${defaultStyles.stringValue} json-light-string`,
  numberValue: `${defaultStyles.numberValue} json-light-number`,
  booleanValue: `${defaultStyles.booleanValue} json-light-boolean`,
  nullValue: `${defaultStyles.nullValue} json-light-null`,
  undefinedValue: `${defaultStyles.undefinedValue} json-light-null`,
  otherValue: `${defaultStyles.otherValue} json-light-other`,
  label: `${defaultStyles.label} json-light-label`,
}

export function JsonView({ data }: { data: unknown }) {
  const dark = typeof window !== 'undefined' && document.documentElement.dataset.theme === 'dark'
  if (data === null || typeof data !== 'object')
    return <pre className="json-scalar">{JSON.stringify(data)}</pre>
  return <Json data={data as object} shouldExpandNode={allExpanded} style={dark ? darkStyles : lightStyles} />
}

/**
 * A button that asks before it acts (every destructive action). The dialog is a native
 * <dialog>, so focus and Escape behave.
 */
export function ConfirmButton(props: {
  children: ReactNode
  title: string
  body: ReactNode
  confirmLabel: string
  onConfirm: () => unknown
  disabled?: boolean
  danger?: boolean
  className?: string
}) {
  const ref = useRef<HTMLDialogElement>(null)
  const [busy, setBusy] = useState(false)
  return (
    <>
      <button
        type="button"
        className={props.className ?? (props.danger ? 'danger' : '')}
        disabled={props.disabled}
        onClick={() => ref.current?.showModal()}
      >
        {props.children}
      </button>
      <dialog ref={ref} aria-label={props.title}>
        <h3>{props.title}</h3>
        <div className="dialog-body">{props.body}</div>
        <div className="dialog-actions">
          <button type="button" onClick={() => ref.current?.close()}>
            Cancel
          </button>
          <button
            type="button"
            className={props.danger ? 'danger' : 'primary'}
            disabled={busy}
            onClick={async () => {
              setBusy(true)
              try {
                await props.onConfirm()
              } finally {
                setBusy(false)
                ref.current?.close()
              }
            }}
          >
            {props.confirmLabel}
          </button>
        </div>
      </dialog>
    </>
  )
}

/** Previous / next page, named by where they go: newer / older, or earlier / later in an oldest-first list. */
export function Pager({
  onPrev,
  onNext,
  oldestFirst = false,
}: {
  onPrev?: () => void
  onNext?: () => void
  oldestFirst?: boolean
}) {
  return (
    <nav className="pager" aria-label="pagination">
      <button type="button" onClick={onPrev} disabled={!onPrev}>
        ← {oldestFirst ? 'Earlier' : 'Newer'}
      </button>
      <button type="button" onClick={onNext} disabled={!onNext}>
        {oldestFirst ? 'Later' : 'Older'} →
      </button>
    </nav>
  )
}

/** A text filter kept in the URL: applied when the field loses focus; empty means "any". */
export function FilterInput(props: {
  label: string
  value: string | undefined
  onChange: (v: string | undefined) => void
  type?: string
}) {
  return (
    <label>
      {props.label}
      <input
        type={props.type}
        defaultValue={props.value}
        placeholder="any"
        onBlur={(e) => props.onChange(e.target.value.trim() || undefined)}
      />
    </label>
  )
}
