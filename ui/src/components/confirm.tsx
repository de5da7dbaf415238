/**
 * A confirmation asked from code (a row's keyboard shortcut), drawn like ConfirmButton's: a
 * native modal <dialog>, so focus and Escape behave; focus goes back where it was on close.
 */
import { type ReactNode, useRef, useState } from 'react'

export interface Ask {
  title: string
  body: ReactNode
  confirmLabel: string
  danger?: boolean
  onConfirm: () => unknown
}

export function useConfirm(): { ask: (a: Ask) => void; dialog: ReactNode } {
  const ref = useRef<HTMLDialogElement>(null)
  const back = useRef<HTMLElement | null>(null)
  const [asked, setAsked] = useState<Ask | null>(null)
  const [busy, setBusy] = useState(false)
  const close = () => {
    ref.current?.close()
  }
  const ask = (a: Ask) => {
    back.current = document.activeElement as HTMLElement | null
    setAsked(a)
    // The dialog's content is drawn first, then opened (so its first button gets focus).
    requestAnimationFrame(() => {
      if (!ref.current?.open) ref.current?.showModal()
    })
  }
  const dialog = (
    <dialog
      ref={ref}
      aria-label={asked?.title ?? 'Confirm'}
      onClose={() => {
        setAsked(null)
        back.current?.focus()
      }}
    >
      {asked && (
        <>
          <h3>{asked.title}</h3>
          <div className="dialog-body">{asked.body}</div>
          <div className="dialog-actions">
            <button type="button" onClick={close}>
              Cancel
            </button>
            <button
              type="button"
              className={asked.danger ? 'danger' : 'primary'}
              disabled={busy}
              onClick={async () => {
                setBusy(true)
                try {
                  await asked.onConfirm()
                } finally {
                  setBusy(false)
                  close()
                }
              }}
            >
              {asked.confirmLabel}
            </button>
          </div>
        </>
      )}
    </dialog>
  )
  return { ask, dialog }
}
