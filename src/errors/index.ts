/** OAuth protocol errors: one tagged class per code, and their HTTP rendering. */
export * from "./OAuthError.ts"
export * from "./render.ts"
