import { Option, type Schema, SchemaAST } from "effect"

/**
 * A type guard compiled once from a Schema, for the records the stores read
 * back from their own storage (a row, a hash, JSON text): on the hot path
 * Schema's decoder costs more than the read itself (~2 µs for a token record,
 * against ~0.1 µs for this guard).
 *
 * It accepts a value only when decoding it would give back the same value:
 * every property the Schema declares has the right type (refinements such as
 * `int` and `nonNegative` run their own filters), and there is no property it
 * does not declare (decoding would drop it). So a caller may use the value as
 * decoded when the guard passes, and decode with the Schema otherwise (to
 * strip, or to fail with the Schema's own error): the result is the same as
 * decoding every time. Schemas with transformations (the encoded form is not
 * the type) or kinds it does not know compile to `undefined`: decode those.
 */
export type Guard<A> = (value: unknown) => value is A

type Check = (value: unknown) => boolean

const parseOptions: SchemaAST.ParseOptions = {}

const compile = (ast: SchemaAST.AST): Check | undefined => {
  switch (ast._tag) {
    case "StringKeyword":
      return (value) => typeof value === "string"
    case "NumberKeyword":
      return (value) => typeof value === "number"
    case "BooleanKeyword":
      return (value) => typeof value === "boolean"
    case "UndefinedKeyword":
      return (value) => value === undefined
    case "Literal": {
      const literal = ast.literal
      return (value) => value === literal
    }
    case "Union": {
      const members = ast.types.map(compile)
      if (members.some((member) => member === undefined)) return undefined
      const checks = members as Array<Check>
      if (checks.length === 2) {
        const [a, b] = checks as [Check, Check]
        return (value) => a(value) || b(value)
      }
      return (value) => checks.some((check) => check(value))
    }
    case "Refinement": {
      const from = compile(ast.from)
      if (from === undefined) return undefined
      return (value) => from(value) && Option.isNone(ast.filter(value, parseOptions, ast))
    }
    case "TupleType": {
      if (ast.elements.length > 0 || ast.rest.length !== 1) return undefined
      const item = compile((ast.rest[0] as SchemaAST.Type).type)
      if (item === undefined) return undefined
      return (value) => {
        if (!Array.isArray(value)) return false
        for (let i = 0; i < value.length; i++) if (!item(value[i])) return false
        return true
      }
    }
    case "TypeLiteral": {
      if (ast.indexSignatures.length > 0) return undefined
      const names: Array<string> = []
      const checks: Array<Check> = []
      const optional: Array<boolean> = []
      for (const property of ast.propertySignatures) {
        if (typeof property.name !== "string") return undefined
        const check = compile(property.type)
        if (check === undefined) return undefined
        names.push(property.name)
        checks.push(check)
        optional.push(property.isOptional)
      }
      const count = names.length
      return (value) => {
        if (typeof value !== "object" || value === null || Array.isArray(value)) return false
        const record = value as Record<string, unknown>
        let present = 0
        for (let i = 0; i < count; i++) {
          const field = record[names[i] as string]
          if (field === undefined) {
            if (!optional[i]) return false
          } else {
            if (!(checks[i] as Check)(field)) return false
            present++
          }
        }
        // No property beyond the declared ones (an own key set to `undefined` counts too: decoding would differ).
        return Object.keys(record).length === present
      }
    }
    default:
      return undefined
  }
}

/** The guard of `schema`, or `undefined` when its encoded form is not its type (see `Guard`). */
export const compileGuard = <A, I, R>(schema: Schema.Schema<A, I, R>): Guard<A> | undefined => {
  // Transformations and declarations compile to `undefined` anywhere in the tree: decoding is not the identity there.
  const check = compile(schema.ast)
  return check === undefined ? undefined : (value: unknown): value is A => check(value)
}
