/** GET /metrics: Prometheus text format from this core's registry. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { Problem } from '../schemas/common.js'

const errors = { '4xx': Problem, '5xx': Problem }

const EXAMPLE = '# HELP mpatch_hosts Hosts by state ...\n# TYPE mpatch_hosts gauge\nmpatch_hosts{state="idle",current="true",driver="rpm",release="22.12"} 12\n'

const metricsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { metrics } = app.core

  app.get('/metrics', {
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics',
      description: 'Metrics in the Prometheus text format: hosts by state, patch-current, driver and release; held and stale hosts; ' +
        'patches by state; installs by outcome and their duration; agent report rate and latency; mutation queue depth; open event ' +
        'streams; and the standard Node.js process metrics (process_*, nodejs_*). Reader role on the authenticated listener.',
      operationId: 'getMetrics',
      response: {
        200: { description: 'The metrics', content: { 'text/plain; version=0.0.4': { schema: Type.String({ examples: [EXAMPLE] }) } } },
        ...errors
      }
    }
  }, async (_request, reply) => {
    const text = await metrics.text()
    return await reply.type(metrics.contentType).send(text)
  })
}

export default metricsRoutes
