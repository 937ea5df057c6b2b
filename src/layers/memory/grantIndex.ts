/**
 * Which records belong to which grant, so revoking a grant finds them all
 * without a scan. Members are storage keys of one kind each.
 */
export class GrantIndex {
  private readonly members = new Map<string, Set<string>>()

  add(grantId: string, key: string): void {
    const set = this.members.get(grantId)
    if (set === undefined) this.members.set(grantId, new Set([key]))
    else set.add(key)
  }

  remove(grantId: string, key: string): void {
    const set = this.members.get(grantId)
    if (set === undefined) return
    set.delete(key)
    if (set.size === 0) this.members.delete(grantId)
  }

  /** Remove and return every member of a grant. */
  take(grantId: string): ReadonlySet<string> {
    const set = this.members.get(grantId) ?? new Set<string>()
    this.members.delete(grantId)
    return set
  }
}
