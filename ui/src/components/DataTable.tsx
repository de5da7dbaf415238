/**
 * The one table of the console: columns say what a header and a cell show; the table draws the
 * markup (scrolling wrapper, caption, header row, one row per item). `selectColumn` adds the
 * checkbox column of tables with bulk actions.
 *
 * Accessibility and small screens (README "Keyboard"): a column with `sortValue` sorts the rows
 * in the browser from a header button (`aria-sort` on its header). With `rowNav` the rows are one
 * tab stop (roving tabindex): the current row is focusable, the arrows (or j / k) move between
 * rows, Enter opens the row, the page's row shortcuts act on it and are listed in the Keyboard
 * help (`?`). Narrower than 640 px every row is drawn as a stacked card, each cell under its
 * header's name (`data-label`; ADR 0034), so no table is wider than the screen.
 */
import { type KeyboardEvent, type ReactNode, useEffect, useMemo, useRef, useState } from 'react'
import { isTyping, type KeyHelp, useRegisterKeys } from './keyboard'

export interface Column<T> {
  /** Header text (unique in the table); with `hideHeader` only screen readers read it (action columns). */
  header: string
  hideHeader?: boolean
  /** Draws the header instead of its text (the select-all checkbox). */
  renderHeader?: (rows: T[]) => ReactNode
  /** Tooltip on the header. */
  headerTitle?: string
  cell: (row: T) => ReactNode
  /** Class of every cell in the column (`mono`, `error-text`). */
  className?: string
  /** Tooltip on a cell. */
  cellTitle?: (row: T) => string
  /** Makes the column sortable (in the browser, over the rows shown): the value rows sort by. */
  sortValue?: (row: T) => string | number
}

/** A row shortcut: a key (one character, no modifier) and what it does to the focused row. */
export interface RowKey<T> extends KeyHelp {
  run: (row: T) => void
}

export interface RowNav<T> {
  /** What Enter does (open the row's page). */
  open?: (row: T) => void
  /** What Enter does, for the help ("open the job"). */
  openLabel?: string
  keys?: RowKey<T>[]
  /** The row's accessible name (what a screen reader says on focus). */
  label: (row: T) => string
}

export interface Sort {
  header: string
  dir: 'ascending' | 'descending'
}

const FOCUSABLE = 'a[href], button, input, select, textarea, [tabindex]'

export function DataTable<T>({
  rows,
  columns,
  rowKey,
  caption,
  rowNav,
  defaultSort,
}: {
  rows: T[]
  columns: Column<T>[]
  rowKey: (row: T) => string
  /** What the table holds, for screen readers (drawn visually hidden). */
  caption?: string
  rowNav?: RowNav<T>
  defaultSort?: Sort
}) {
  const [sort, setSort] = useState<Sort | undefined>(defaultSort)
  const sorted = useMemo(() => {
    const col = sort && columns.find((c) => c.header === sort.header && c.sortValue)
    if (!col?.sortValue) return rows
    const v = col.sortValue
    const sign = sort?.dir === 'descending' ? -1 : 1
    return [...rows].sort((a, b) => {
      const x = v(a)
      const y = v(b)
      return (x < y ? -1 : x > y ? 1 : 0) * sign
    })
  }, [rows, columns, sort])
  const [active, setActive] = useState(0)
  const current = Math.min(active, Math.max(sorted.length - 1, 0))
  const body = useRef<HTMLTableSectionElement>(null)
  useRegisterKeys(
    caption ?? 'this table',
    rowNav
      ? [
          ...(rowNav.open ? [{ key: 'Enter', label: rowNav.openLabel ?? 'open' }] : []),
          ...(rowNav.keys ?? []).map(({ key, label }) => ({ key, label })),
        ]
      : null,
  )
  // One tab stop per row set: the controls of rows other than the current one leave the tab order.
  useEffect(() => {
    if (!rowNav || !body.current) return
    body.current.querySelectorAll<HTMLTableRowElement>(':scope > tr').forEach((tr, i) => {
      for (const el of tr.querySelectorAll<HTMLElement>(FOCUSABLE)) {
        if (el.closest('dialog')) continue
        if (i === current) {
          if (el.dataset.roving) {
            el.removeAttribute('tabindex')
            delete el.dataset.roving
          }
        } else if (!el.hasAttribute('tabindex')) {
          el.tabIndex = -1
          el.dataset.roving = '1'
        }
      }
    })
  })
  const focusRow = (i: number) => {
    const tr = body.current?.querySelectorAll<HTMLTableRowElement>(':scope > tr')[i]
    if (!tr) return
    setActive(i)
    tr.focus()
  }
  const onKeyDown = (e: KeyboardEvent<HTMLTableRowElement>, row: T, i: number) => {
    if (!rowNav || e.ctrlKey || e.metaKey || e.altKey) return
    if (e.target !== e.currentTarget) {
      // In one of the row's controls: Escape goes back to the row; the rest is the control's.
      if (e.key === 'Escape' && !(e.target as HTMLElement).closest('dialog')) {
        e.preventDefault()
        focusRow(i)
      }
      return
    }
    if (isTyping(e)) return
    const last = sorted.length - 1
    const move: Record<string, number> = {
      ArrowDown: Math.min(i + 1, last),
      j: Math.min(i + 1, last),
      ArrowUp: Math.max(i - 1, 0),
      k: Math.max(i - 1, 0),
      Home: 0,
      End: last,
    }
    if (e.key in move) {
      e.preventDefault()
      focusRow(move[e.key] as number)
      return
    }
    if (e.key === 'Enter' && rowNav.open) {
      e.preventDefault()
      rowNav.open(row)
      return
    }
    const k = rowNav.keys?.find((x) => x.key === e.key)
    if (k) {
      e.preventDefault()
      k.run(row)
    }
  }
  const toggle = (header: string) =>
    setSort((s) => ({
      header,
      dir: s?.header === header && s.dir === 'ascending' ? 'descending' : 'ascending',
    }))
  return (
    <div className="table-wrap">
      <table className="data-table">
        {caption && <caption className="sr-only">{caption}</caption>}
        <thead>
          <tr>
            {columns.map((c) => (
              <th
                key={c.header}
                title={c.headerTitle}
                scope="col"
                aria-sort={c.sortValue && sort?.header === c.header ? sort.dir : undefined}
              >
                {c.renderHeader ? (
                  c.renderHeader(rows)
                ) : c.hideHeader ? (
                  <span className="sr-only">{c.header}</span>
                ) : c.sortValue ? (
                  <button type="button" className="sort" onClick={() => toggle(c.header)}>
                    {c.header}
                    <span aria-hidden="true" className="sort-mark">
                      {sort?.header === c.header ? (sort.dir === 'ascending' ? ' ▲' : ' ▼') : ' ↕'}
                    </span>
                  </button>
                ) : (
                  c.header
                )}
              </th>
            ))}
          </tr>
        </thead>
        <tbody ref={body}>
          {sorted.map((row, i) => (
            <tr
              key={rowKey(row)}
              {...(rowNav && {
                tabIndex: i === current ? 0 : -1,
                'aria-label': rowNav.label(row),
                onKeyDown: (e: KeyboardEvent<HTMLTableRowElement>) => onKeyDown(e, row, i),
                onFocus: () => setActive(i),
              })}
            >
              {columns.map((c) => (
                <td
                  key={c.header}
                  className={c.className}
                  title={c.cellTitle?.(row)}
                  data-label={c.hideHeader || c.renderHeader ? undefined : c.header}
                >
                  {c.cell(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

/** A checkbox per row and a "select all" in the header, over the set of selected row keys. */
export function selectColumn<T>({
  selected,
  onChange,
  rowKey: key,
  label,
  allLabel,
}: {
  selected: Set<string>
  onChange: (next: Set<string>) => void
  /** What the selection holds for a row (the table's `rowKey`). */
  rowKey: (row: T) => string
  /** Accessible name of a row's checkbox. */
  label: (row: T) => string
  allLabel: string
}): Column<T> {
  return {
    header: 'Select',
    renderHeader: (rows) => (
      <input
        type="checkbox"
        aria-label={allLabel}
        checked={rows.every((r) => selected.has(key(r)))}
        onChange={(e) => onChange(e.target.checked ? new Set(rows.map(key)) : new Set())}
      />
    ),
    cell: (row) => (
      <input
        type="checkbox"
        aria-label={label(row)}
        checked={selected.has(key(row))}
        onChange={(e) => {
          const next = new Set(selected)
          if (e.target.checked) next.add(key(row))
          else next.delete(key(row))
          onChange(next)
        }}
      />
    ),
  }
}

/** The `x` key: toggles the row in a selection of row keys. */
export function selectKey<T>(
  selected: Set<string>,
  onChange: (next: Set<string>) => void,
  key: (row: T) => string,
): RowKey<T> {
  return {
    key: 'x',
    label: 'select or unselect the row',
    run: (row) => {
      const next = new Set(selected)
      if (next.has(key(row))) next.delete(key(row))
      else next.add(key(row))
      onChange(next)
    },
  }
}
