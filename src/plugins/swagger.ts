/** OpenAPI 3.1 document from the route schemas, and Swagger UI at /docs. */
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string, description: string }

export default fp(async function swaggerPlugin (app: FastifyInstance, opts: { ui: boolean }) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'multios-patch', description: pkg.description, version: pkg.version },
      tags: [
        { name: 'legacy', description: 'StarlingX Patching API v1, served under /v1/ and /patch/ (GET and POST alike)' },
        { name: 'hosts', description: 'Hosts as their agents report them' },
        { name: 'installs', description: 'Install requests and their outcomes' },
        { name: 'releases', description: 'Release feeds (base packages)' },
        { name: 'agents', description: 'The agent API: reports, commands, plans, results, payloads' },
        { name: 'operations', description: 'Health, readiness and audit' }
      ]
    }
  })
  if (opts.ui) await app.register(swaggerUi, { routePrefix: '/docs' })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}, { name: 'swagger' })
