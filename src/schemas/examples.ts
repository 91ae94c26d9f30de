/** Examples of one schema reused in the example of a schema that contains it. */

/** The first of a schema's `examples` (every titled schema of the API has one). */
export const firstExample = (schema: object): unknown => {
  const examples = (schema as { examples?: unknown[] }).examples
  if (examples === undefined || examples.length === 0) throw new Error('schema has no examples')
  return examples[0]
}
