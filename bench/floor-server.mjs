// The floor of the comparison rows: a bare Fastify server doing the least the service must do.
// GET serves the fixed bytes of argv[2] (the service's own answer, captured in the same run);
// POST JSON-parses the body (as large as a report may be) and answers a report's small JSON.
import Fastify from 'fastify'
import { readFileSync } from 'node:fs'

const body = process.argv[2] !== undefined ? readFileSync(process.argv[2]) : Buffer.from('{}')
const answer = Buffer.from('{"needInventory":false,"installPending":false}')
const app = Fastify({ logger: false, bodyLimit: 32 * 1024 * 1024 })
app.removeContentTypeParser('application/json')
app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, text, done) => {
  try { done(null, JSON.parse(text)) } catch (err) { done(err) }
})
app.get('/*', async (_req, reply) => reply.type('application/json; charset=utf-8').send(body))
app.post('/*', async (req, reply) => {
  if (req.body === null || typeof req.body !== 'object') throw new Error('no body')
  return reply.type('application/json; charset=utf-8').send(answer)
})
await app.listen({ host: '127.0.0.1', port: 0 })
process.stdout.write(`listening ${app.server.address().port}\n`)
