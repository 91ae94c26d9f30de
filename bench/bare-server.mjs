// Baseline for the query benchmarks: a bare Fastify route that serves fixed bytes.
import Fastify from 'fastify'
import { readFileSync } from 'node:fs'

const body = readFileSync(process.argv[2])
const app = Fastify({ logger: false })
app.get('/*', async (_req, reply) => reply.type('application/json').send(body))
await app.listen({ host: '127.0.0.1', port: 0 })
process.stdout.write(`listening ${app.server.address().port}\n`)
