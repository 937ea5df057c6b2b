import { Config } from "effect"

/** Seed 000's default store file. */
export const DEFAULT_PATH = "./data/tokens.enc"

/** The store file's path: `RS_TOKENS_FILE`, default `./data/tokens.enc` (seed 000). */
export const pathConfig: Config.Config<string> = Config.string("RS_TOKENS_FILE").pipe(Config.withDefault(DEFAULT_PATH))
