/** OAuth scope strings (RFC 6749 §3.3): parsing, narrowing, and the tool-level scope check. */
import { Effect } from "effect"
import { InsufficientScope } from "../errors/OAuthError.ts"

/** One scope token: printable ASCII without space, `"` or `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/

/** The scopes of a space-separated `scope` parameter, duplicates dropped; `undefined` when one is malformed. */
export const parseScope = (scope: string | undefined): ReadonlyArray<string> | undefined => {
  if (scope === undefined) return []
  const tokens = scope.split(" ").filter((token) => token !== "")
  if (!tokens.every((token) => SCOPE_TOKEN.test(token))) return undefined
  return [...new Set(tokens)]
}

/** The `scope` parameter for a list of scopes. */
export const formatScope = (scopes: ReadonlyArray<string>): string => scopes.join(" ")

/** The scopes of `requested` that `allowed` contains, in requested order; everything when `allowed` is `undefined`. */
export const narrowScopes = (
  requested: ReadonlyArray<string>,
  allowed: ReadonlyArray<string> | undefined
): ReadonlyArray<string> => allowed === undefined ? requested : requested.filter((scope) => allowed.includes(scope))

/** The scopes of `required` that `granted` lacks. */
export const missingScopes = (granted: ReadonlyArray<string>, required: ReadonlyArray<string>): ReadonlyArray<string> =>
  required.filter((scope) => !granted.includes(scope))

/**
 * The tool-level check (seed 002's `@Tool({ scopes })`): succeed when the
 * token carries every scope the tool requires; otherwise `InsufficientScope`
 * whose `scope` is every scope the tool requires (RFC 6750 §3: the scope
 * needed for the resource), for the step-up challenge.
 */
export const requireScopes = (
  token: { readonly scopes: ReadonlyArray<string> },
  required: ReadonlyArray<string>
): Effect.Effect<void, InsufficientScope> => {
  const missing = missingScopes(token.scopes, required)
  return missing.length === 0 ? Effect.void : Effect.fail(
    new InsufficientScope({
      description: `missing scope: ${formatScope(missing)}`,
      scope: [...new Set(required)]
    })
  )
}
