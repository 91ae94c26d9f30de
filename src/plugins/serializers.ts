/**
 * Response serializers compiled once per schema object instead of once per route and status.
 * Most routes answer their errors with the same Problem schema ('4xx' and '5xx' on ~60 routes);
 * Fastify's default compiles a fast-json-stringify function for each of them, which held ~8 MiB
 * of generated code for the life of the process. A serializer depends only on its schema and the
 * shared schemas it may reference, so one compiled per schema object serves every route.
 */
import { SerializerSelector, type RouteDefinition, type Serializer, type SerializerFactory } from '@fastify/fast-json-stringify-compiler'

/** A `compilersFactory.buildSerializer` for Fastify's schemaController, sharing compiled serializers. */
export function sharedSerializers (): SerializerFactory {
  const build = SerializerSelector()
  return function buildSerializer (externalSchemas, serializerOpts) {
    const compile = build(externalSchemas, serializerOpts)
    // One cache per set of shared schemas: a compiler built for other shared schemas starts empty.
    const compiled = new WeakMap<object, Serializer>()
    return (route: RouteDefinition): Serializer => {
      const schema = route.schema
      if (typeof schema !== 'object' || schema === null) return compile(route)
      let fn = compiled.get(schema)
      if (fn === undefined) compiled.set(schema, fn = compile(route))
      return fn
    }
  }
}
