/**
 * A `Map` kept in recency order with O(1) eviction of its oldest entry.
 *
 * Recency is insertion order: `set` and `promote` move a key to the back.
 * Eviction reads the front through one long-lived iterator: V8 leaves deleted
 * slots in a `Map`'s table until it rehashes, so a fresh `keys().next()` per
 * eviction would walk every hole left by earlier evictions (DEPENDENCIES.md:
 * ~57 µs vs ~0.75 µs per insert at 100K entries). Every key in front of the
 * cursor has been deleted, so the next key it yields is the oldest live one.
 *
 * The cursor is made at the first eviction, not with the map: a live
 * iterator keeps every table the map outgrows reachable until it next moves
 * (V8 chains them so the iterator can follow), so a cursor made up front
 * pinned a whole map's worth of old tables while the map filled (about 40 B
 * per entry; issue 14).
 */
export class LruMap<K, V> {
  private readonly map = new Map<K, V>()
  private cursor: Iterator<K> | undefined
  /**
   * The most recent key, so that promoting it again is free: a `delete` then
   * `set` of one key leaves a dead slot in its hash chain until V8 next
   * rehashes the table, so a hot key promoted over and over makes its own
   * lookups walk thousands of slots (measured: 36 µs per promote at 10,000
   * entries, 0.1 µs at 10).
   */
  private newest: K | undefined

  get size(): number {
    return this.map.size
  }

  get(key: K): V | undefined {
    return this.map.get(key)
  }

  has(key: K): boolean {
    return this.map.has(key)
  }

  /** Insert or replace, as the most recent entry. */
  set(key: K, value: V): void {
    if (this.newest !== key) this.map.delete(key)
    this.map.set(key, value)
    this.newest = key
  }

  /** Replace a value without changing its recency. */
  replace(key: K, value: V): void {
    if (this.map.has(key)) this.map.set(key, value)
  }

  /** Make an existing key the most recent. */
  promote(key: K): void {
    if (this.newest === key) return
    const value = this.map.get(key)
    if (value === undefined) return
    this.map.delete(key)
    this.map.set(key, value)
    this.newest = key
  }

  delete(key: K): boolean {
    if (this.newest === key) this.newest = undefined
    return this.map.delete(key)
  }

  /** Remove and return the least recent entry. */
  evictOldest(): readonly [K, V] | undefined {
    if (this.map.size === 0) return undefined
    this.cursor ??= this.map.keys()
    let next = this.cursor.next()
    if (next.done === true) {
      this.cursor = this.map.keys()
      next = this.cursor.next()
    }
    if (next.done === true) return undefined
    const key = next.value
    const value = this.map.get(key) as V
    this.delete(key)
    return [key, value]
  }

  entries(): IterableIterator<[K, V]> {
    return this.map.entries()
  }

  values(): IterableIterator<V> {
    return this.map.values()
  }
}
