/**
 * Content shown as it is on a wide screen and behind a toggle button under 640 px (the DLQ's
 * filters, which would fill a phone's first screen): the button says how many filters are set.
 * The page draws `button` before the content and gives the content `id` and `className`.
 */
import { type ReactElement, useId, useState } from 'react'

export function useNarrowDisclosure(
  label: string,
  /** How many of its settings are in force (shown on the button). */
  count = 0,
): { button: ReactElement; id: string; className: string } {
  const [open, setOpen] = useState(false)
  const id = useId()
  const button = (
    <button
      type="button"
      className="narrow-toggle"
      aria-expanded={open}
      aria-controls={id}
      onClick={() => setOpen(!open)}
    >
      {label}
      {count > 0 ? ` (${count} set)` : ''} <span aria-hidden="true">{open ? '▴' : '▾'}</span>
    </button>
  )
  return { button, id, className: open ? '' : 'narrow-collapsed' }
}
