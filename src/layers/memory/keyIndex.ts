/**
 * The session ids of each API key (by its hash): one id held as the string
 * itself, several as a small array. A key has at most `maxPerKey` sessions
 * (5 by default), so a linear scan is as fast as a hash, and much smaller: a
 * `Set` per key cost about 200 B per session, more than half of what a
 * session itself takes (issue 14).
 */
export class KeyIndex {
  private readonly ids = new Map<string, string | Array<string>>()

  add(key: string, id: string): void {
    const current = this.ids.get(key)
    if (current === undefined) this.ids.set(key, id)
    else if (typeof current === "string") {
      if (current !== id) this.ids.set(key, [current, id])
    } else if (!current.includes(id)) this.ids.set(key, [...current, id]) // exact size: `push` would leave ~16 slots of slack
  }

  remove(key: string, id: string): void {
    const current = this.ids.get(key)
    if (current === undefined) return
    if (typeof current === "string") {
      if (current === id) this.ids.delete(key)
      return
    }
    const at = current.indexOf(id)
    if (at < 0) return
    current.splice(at, 1)
    if (current.length === 1) this.ids.set(key, current[0] as string)
    else if (current.length === 0) this.ids.delete(key)
  }

  /** The key's ids, as a copy (the caller may remove while it walks them). */
  of(key: string): ReadonlyArray<string> {
    const current = this.ids.get(key)
    return current === undefined ? [] : typeof current === "string" ? [current] : current.slice()
  }

  /** Every key with its ids. */
  *entries(): IterableIterator<readonly [string, ReadonlyArray<string>]> {
    for (const [key, ids] of this.ids) yield [key, typeof ids === "string" ? [ids] : ids.slice()]
  }
}
