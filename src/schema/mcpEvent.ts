import { Schema } from "effect"

/** The server's tool list changed (`notifications/tools/list_changed`). */
export const ToolsListChanged = Schema.TaggedStruct("ToolsListChanged", {})
export type ToolsListChanged = typeof ToolsListChanged.Type

/** The server's prompt list changed (`notifications/prompts/list_changed`). */
export const PromptsListChanged = Schema.TaggedStruct("PromptsListChanged", {})
export type PromptsListChanged = typeof PromptsListChanged.Type

/** The server's resource list changed (`notifications/resources/list_changed`). */
export const ResourcesListChanged = Schema.TaggedStruct("ResourcesListChanged", {})
export type ResourcesListChanged = typeof ResourcesListChanged.Type

/** One resource changed (`notifications/resources/updated`, delivered to the streams that listed its URI). */
export const ResourceUpdated = Schema.TaggedStruct("ResourceUpdated", { uri: Schema.String })
export type ResourceUpdated = typeof ResourceUpdated.Type

/**
 * A server-side change event that every instance must hear, so that each
 * forwards it to the `subscriptions/listen` streams it holds. A tagged union
 * (`_tag`); its JSON form (`Schema.parseJson(McpEvent)`) is what travels
 * between instances, e.g. `{"_tag":"ResourceUpdated","uri":"file:///a"}`.
 * A literal such as `{ _tag: "ToolsListChanged" }` is a valid event.
 */
export const McpEvent = Schema.Union(ToolsListChanged, PromptsListChanged, ResourcesListChanged, ResourceUpdated)
export type McpEvent = typeof McpEvent.Type
