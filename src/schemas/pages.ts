/** Pagination atoms of the native API's lists (native-api.md): `limit` and `cursor` in, `{ items, nextCursor }` out. */
import { Type, type TSchema } from 'typebox'

export const Limit = Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'Page size (1..1000, default 100)', examples: [100] })

export const Cursor = Type.String({ minLength: 1, maxLength: 512, description: 'Where to continue: the `nextCursor` of the previous page (opaque). No example on purpose: Swagger UI would prefill it' })

/** A titled page of `item`: the items in order and the cursor of the next page (null on the last one). */
export function PageOf<T extends TSchema> (item: T, title: string, description: string, example: Record<string, unknown>) {
  return Type.Object({
    items: Type.Array(item, { description: 'This page, in the list\'s stable order' }),
    nextCursor: Type.Union([Type.Null(), Type.String()], { description: 'Pass as `cursor` for the next page; null: this is the last page' })
  }, { title, description, examples: [example] })
}
