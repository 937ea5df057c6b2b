/**
 * Warnings at startup for settings that work but are probably not what an
 * operator wants in production, and a first look at the upstream provider:
 * the server starts either way, the log says what will not work.
 */
import { Duration, Effect, Layer, Option } from "effect"
import { Federation } from "../oauth/federation.ts"
import type { ServerSettings } from "./config.ts"

/** How long the startup probe of the upstream issuer may take. */
export const UPSTREAM_PROBE_TIMEOUT = Duration.seconds(5)

/** One warning line per risky setting: `DEV_AUTO_APPROVE` on; no `API_KEYS` in local mode (the consent page can only deny). */
export const settingsWarnings = (settings: ServerSettings): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (Option.isSome(settings.devAutoApprove)) {
      yield* Effect.logWarning("DEV_AUTO_APPROVE is on: every authorization is approved without a page, for development only").pipe(
        Effect.annotateLogs({ user: settings.devAutoApprove.value })
      )
    } else if (Option.isNone(settings.upstream) && settings.apiKeys.length === 0) {
      yield* Effect.logWarning("no API_KEYS are set: nobody can sign in on the consent page, which can only deny")
    }
  })

/**
 * In upstream mode, discover the upstream issuer once, in the background, as
 * the server starts (a success is cached for the first sign-in). When it
 * cannot be discovered within `UPSTREAM_PROBE_TIMEOUT`, a warning says so;
 * the server serves regardless, and discovery is tried again at each
 * sign-in.
 */
export const upstreamProbe: Layer.Layer<never> = Layer.scopedDiscard(
  Effect.flatMap(Effect.serviceOption(Federation), (federation) =>
    Option.match(federation, {
      onNone: () => Effect.void,
      onSome: ({ issuer, metadata }) =>
        metadata.pipe(
          Effect.timeoutFail({
            duration: UPSTREAM_PROBE_TIMEOUT,
            onTimeout: () => `no answer within ${Duration.format(UPSTREAM_PROBE_TIMEOUT)}`
          }),
          Effect.catchAll((failure) =>
            Effect.logWarning("the upstream issuer cannot be discovered: sign-ins fail until it answers").pipe(
              Effect.annotateLogs({ issuer, detail: typeof failure === "string" ? failure : failure.message })
            )),
          Effect.forkScoped
        )
    }))
)
