import { describe, expect, it } from "@effect/vitest"
import { LruMap } from "../src/internal/lruMap.ts"

describe("LruMap", () => {
  it("evicts in recency order, with promotions and deletions in between", () => {
    const lru = new LruMap<string, number>()
    for (const k of ["a", "b", "c", "d"]) lru.set(k, k.charCodeAt(0))
    lru.promote("a")
    lru.delete("c")
    lru.set("b", 0) // replacing re-inserts as most recent
    lru.replace("d", 100) // replace keeps recency
    expect(lru.evictOldest()).toEqual(["d", 100])
    lru.set("e", 1)
    expect([lru.evictOldest()?.[0], lru.evictOldest()?.[0], lru.evictOldest()?.[0]]).toEqual(["a", "b", "e"])
    expect(lru.evictOldest()).toBeUndefined()
    expect(lru.size).toBe(0)
  })

  it("keeps evicting correctly after its cursor has run off the end", () => {
    const lru = new LruMap<number, number>()
    lru.set(1, 1)
    expect(lru.evictOldest()?.[0]).toBe(1)
    expect(lru.evictOldest()).toBeUndefined()
    lru.set(2, 2)
    lru.set(3, 3)
    lru.promote(2)
    expect(lru.evictOldest()?.[0]).toBe(3)
    expect(lru.evictOldest()?.[0]).toBe(2)
  })

  it("agrees with a reference model over a long random run", () => {
    const lru = new LruMap<number, number>()
    let model: Array<number> = []
    let seed = 42
    const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n
    for (let step = 0; step < 20_000; step++) {
      const key = random(200)
      switch (random(4)) {
        case 0:
          lru.set(key, step)
          model = [...model.filter((k) => k !== key), key]
          break
        case 1:
          lru.promote(key)
          if (model.includes(key)) model = [...model.filter((k) => k !== key), key]
          break
        case 2:
          lru.delete(key)
          model = model.filter((k) => k !== key)
          break
        case 3: {
          const evicted = lru.evictOldest()
          expect(evicted?.[0]).toBe(model.shift())
        }
      }
      expect(lru.size).toBe(model.length)
    }
  })
})
