/**
 * Keyboard use of the console: the "Keyboard" help dialog (the `?` key, or the button in the
 * header) lists the keys that work everywhere and the row shortcuts of the tables on the page,
 * which each table registers while it is shown (DataTable's `rowNav`).
 */
import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useId,
  useMemo,
  useRef,
  useState,
} from 'react'

export interface KeyHelp {
  /** The key as pressed (`r`) or named (`↑ / k`). */
  key: string
  label: string
}

/** Keys every table with row navigation has (DataTable handles them). */
export const ROW_NAV_KEYS: KeyHelp[] = [
  { key: '↓ / j', label: 'next row' },
  { key: '↑ / k', label: 'previous row' },
  { key: 'Home / End', label: 'first / last row' },
  { key: 'Enter', label: 'open the row' },
  { key: 'Tab', label: "into the row's controls, then out of the table" },
  { key: 'Esc', label: "from a row's control back to its row" },
]

const GLOBAL_KEYS: KeyHelp[] = [
  { key: '?', label: 'this help' },
  { key: 'Tab (first)', label: 'Skip to content' },
]

interface Registered {
  table: string
  keys: KeyHelp[]
}

const Ctx = createContext<{
  register: (id: string, r: Registered | null) => void
  open: () => void
} | null>(null)

/** Whether a key press is typing (in a field) rather than a command. */
export function isTyping(e: KeyboardEvent | React.KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null
  if (!t || typeof t.closest !== 'function') return false
  return !!t.closest('input, textarea, select, [contenteditable="true"]')
}

export function KeyboardHelpProvider({ children }: { children: ReactNode }) {
  const [tables, setTables] = useState<Map<string, Registered>>(new Map())
  const ref = useRef<HTMLDialogElement>(null)
  const register = useCallback((id: string, r: Registered | null) => {
    setTables((m) => {
      const next = new Map(m)
      if (r) next.set(id, r)
      else next.delete(id)
      return next
    })
  }, [])
  const open = useCallback(() => {
    if (!ref.current?.open) ref.current?.showModal()
  }, [])
  // A stable value: the tables' effects re-register when it changes (a new one each render would loop).
  const value = useMemo(() => ({ register, open }), [register, open])
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== '?' || e.ctrlKey || e.metaKey || e.altKey || isTyping(e)) return
      if (document.querySelector('dialog[open]')) return
      e.preventDefault()
      open()
    }
    document.addEventListener('keydown', onKey)
    return () => document.removeEventListener('keydown', onKey)
  }, [open])
  return (
    <Ctx.Provider value={value}>
      {children}
      <dialog ref={ref} aria-labelledby="keyboard-help-title" className="keyboard-help">
        <h3 id="keyboard-help-title">Keyboard</h3>
        <KeyList title="Everywhere" keys={GLOBAL_KEYS} />
        {tables.size > 0 && <KeyList title="Table rows" keys={ROW_NAV_KEYS} />}
        {[...tables.values()]
          .filter((t) => t.keys.length)
          .map((t) => (
            <KeyList key={t.table} title={`Rows of ${t.table}`} keys={t.keys} />
          ))}
        <div className="dialog-actions">
          <button type="button" onClick={() => ref.current?.close()}>
            Close
          </button>
        </div>
      </dialog>
    </Ctx.Provider>
  )
}

function KeyList({ title, keys }: { title: string; keys: KeyHelp[] }) {
  return (
    <section>
      <h4>{title}</h4>
      <dl className="keys">
        {keys.map((k) => (
          <div key={k.key}>
            <dt>
              <kbd>{k.key}</kbd>
            </dt>
            <dd>{k.label}</dd>
          </div>
        ))}
      </dl>
    </section>
  )
}

/** The header's button that opens the help. */
export function KeyboardHelpButton() {
  const ctx = useContext(Ctx)
  return (
    <button type="button" className="link" onClick={() => ctx?.open()} aria-keyshortcuts="?">
      Keyboard
    </button>
  )
}

/** Lists a table's row shortcuts in the help while the table is shown. */
export function useRegisterKeys(table: string, keys: KeyHelp[] | null) {
  const ctx = useContext(Ctx)
  const id = useId()
  const signature = keys ? `${table}\u0000${keys.map((k) => `${k.key}:${k.label}`).join('\u0000')}` : ''
  // biome-ignore lint/correctness/useExhaustiveDependencies: the signature stands for table and keys
  useEffect(() => {
    if (!ctx || !keys) return
    ctx.register(id, { table, keys })
    return () => ctx.register(id, null)
  }, [ctx, id, signature])
}
