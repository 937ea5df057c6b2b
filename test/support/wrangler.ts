/**
 * What the tests need of `wrangler.toml`, read from the template itself so a
 * test runs the Worker with the bindings users deploy: the entry, the
 * compatibility date, the Durable Object binding and its SQLite class, and the
 * plain `[vars]`. A line-oriented reader for the template's own shapes
 * (`key = "value"` lines under a few tables), not a TOML parser: an
 * unexpected shape fails loudly.
 */

export interface WranglerTemplate {
  readonly main: string
  readonly compatibilityDate: string
  readonly binding: string
  readonly className: string
  readonly sqliteClasses: ReadonlyArray<string>
  readonly vars: Readonly<Record<string, string>>
}

export const wranglerTemplate = (text: string): WranglerTemplate => {
  const tables = new Map<string, Record<string, string>>()
  let table = ""
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim()
    if (line === "") continue
    const header = /^\[\[?([a-z_.]+)\]\]?$/.exec(line)
    if (header !== null) {
      table = header[1] ?? ""
      continue
    }
    const entry = /^([A-Za-z_]+)\s*=\s*(.+)$/.exec(line)
    if (entry === null) throw new Error(`wrangler.toml: cannot read the line ${raw}`)
    const values = tables.get(table) ?? {}
    values[entry[1] ?? ""] = entry[2] ?? ""
    tables.set(table, values)
  }
  const string = (tableName: string, key: string): string => {
    const value = tables.get(tableName)?.[key]
    const match = value === undefined ? null : /^"([^"]*)"$/.exec(value)
    if (match === null) throw new Error(`wrangler.toml: no string ${key} in [${tableName}]`)
    return match[1] ?? ""
  }
  const sqlite = tables.get("migrations")?.["new_sqlite_classes"] ?? ""
  const vars = Object.fromEntries(Object.keys(tables.get("vars") ?? {}).map((key) => [key, string("vars", key)]))
  return {
    main: string("", "main"),
    compatibilityDate: string("", "compatibility_date"),
    binding: string("durable_objects.bindings", "name"),
    className: string("durable_objects.bindings", "class_name"),
    sqliteClasses: [...sqlite.matchAll(/"([^"]+)"/g)].map((m) => m[1] ?? ""),
    vars
  }
}
