/**
 * `mcp-oauth-store/sqlite`: every store in one SQLite file
 * (`@effect/sql-sqlite-node`, an optional peer dependency), atomic across the
 * processes sharing the file.
 */
export * as SqliteStore from "../layers/sqlite/index.ts"
