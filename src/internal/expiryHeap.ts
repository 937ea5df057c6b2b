/**
 * A binary min-heap of (expiry, key), earliest expiry on top: what lets a
 * bounded store drop its expired entries first, in O(log n) each, without
 * walking everything. Entries are never updated in place: a key written again
 * gets a second entry, and the owner checks on `pop` that an entry is still
 * the key's current one.
 */
export class ExpiryHeap {
  private readonly expiries: Array<number> = []
  private readonly keys: Array<string> = []

  get size(): number {
    return this.expiries.length
  }

  /** The earliest expiry held, or `Infinity` when empty. */
  peek(): number {
    return this.expiries[0] ?? Number.POSITIVE_INFINITY
  }

  push(expiresAt: number, key: string): void {
    this.expiries.push(expiresAt)
    this.keys.push(key)
    let i = this.expiries.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if ((this.expiries[parent] as number) <= expiresAt) break
      this.move(parent, i)
      i = parent
    }
    this.expiries[i] = expiresAt
    this.keys[i] = key
  }

  /** Remove and return the entry with the earliest expiry. */
  pop(): readonly [number, string] | undefined {
    const n = this.expiries.length
    if (n === 0) return undefined
    const top = [this.expiries[0] as number, this.keys[0] as string] as const
    const lastExpiry = this.expiries.pop() as number
    const lastKey = this.keys.pop() as string
    if (n > 1) {
      let i = 0
      const size = n - 1
      for (;;) {
        const left = 2 * i + 1
        if (left >= size) break
        const right = left + 1
        const child = right < size && (this.expiries[right] as number) < (this.expiries[left] as number) ? right : left
        if ((this.expiries[child] as number) >= lastExpiry) break
        this.move(child, i)
        i = child
      }
      this.expiries[i] = lastExpiry
      this.keys[i] = lastKey
    }
    return top
  }

  clear(): void {
    this.expiries.length = 0
    this.keys.length = 0
  }

  private move(from: number, to: number): void {
    this.expiries[to] = this.expiries[from] as number
    this.keys[to] = this.keys[from] as string
  }
}
