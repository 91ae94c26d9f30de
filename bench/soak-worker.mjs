// One share of the soak's simulated agents (hosts [from, to)): each reports its unchanged hash on
// a fixed 30 s schedule, and the first `polls` of them keep a command long poll open all along.
// Answers the parent with what was sent, what came back, and every report's latency.
import http from 'node:http'

const o = JSON.parse(process.argv[2])
const reportAgent = new http.Agent({ keepAlive: true, maxSockets: o.reportSockets })
const pollAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity })
const latencies = []
let scheduled = 0
let sent = 0
let ok = 0
let errors = 0
const errorSamples = []
let pollsAnswered = 0
let pollErrors = 0
let pollsOpen = 0
let pollsOpenMin = Infinity
const run = { stopping: false }

const note = (what) => { if (errorSamples.length < 5) errorSamples.push(what) }

function report (i) {
  const t0 = performance.now()
  sent++
  return new Promise((resolve) => {
    const body = o.bodies[i % o.bodies.length]
    const req = http.request(`${o.url}/api/v1/agents/host-${i}/report`, { method: 'POST', agent: reportAgent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.on('data', () => {})
      res.on('end', () => {
        latencies.push(performance.now() - t0)
        if (res.statusCode === 200) ok++
        else { errors++; note(`report ${res.statusCode}`) }
        resolve()
      })
    })
    req.on('error', (err) => { errors++; note(`report ${err.message}`); resolve() })
    req.end(body)
  })
}

async function pollLoop (i) {
  while (!run.stopping) {
    pollsOpen++
    const status = await new Promise((resolve) => {
      const req = http.get(`${o.url}/api/v1/agents/host-${i}/commands?wait=30`, { agent: pollAgent }, (res) => {
        res.on('data', () => {})
        res.on('end', () => { resolve(res.statusCode) })
      })
      req.on('error', (err) => { resolve(run.stopping ? 200 : err.message) })
    })
    pollsOpen--
    if (status === 200) pollsAnswered++
    else if (!run.stopping) { pollErrors++; note(`poll ${status}`); await new Promise((resolve) => setTimeout(resolve, 1000)) }
  }
}

const start = o.startAt
const end = start + o.seconds * 1000
// Polls open over the first few seconds (not all at once: a listen backlog is finite).
for (let k = 0; k < o.polls; k++) setTimeout(() => { pollLoop(o.from + k) }, Math.max(0, start - Date.now()) * (k / o.polls))
// Host i's reports are due at start + offset(i) + n × interval, offsets spread over one interval.
const due = []
for (let i = o.from; i < o.to; i++) due.push({ i, at: start + ((i * o.intervalMs) / o.hosts) % o.intervalMs })
due.sort((a, b) => a.at - b.at)
const pending = new Set()
let next = 0
let round = 0
const timer = setInterval(() => {
  const now = Date.now()
  if (now >= start + 5000 && pollsOpen < pollsOpenMin) pollsOpenMin = pollsOpen
  for (;;) {
    if (next === due.length) { next = 0; round++ }
    const at = due[next].at + round * o.intervalMs
    if (at > now || at >= end) break
    scheduled++
    const p = report(due[next].i)
    pending.add(p)
    p.then(() => pending.delete(p))
    next++
  }
  if (now >= end) {
    clearInterval(timer)
    run.stopping = true
    Promise.all([...pending]).then(() => {
      pollAgent.destroy()
      reportAgent.destroy()
      process.send({ scheduled, sent, ok, errors, errorSamples, pollsAnswered, pollErrors, pollsOpenMin: pollsOpenMin === Infinity ? 0 : pollsOpenMin, latencies }, () => process.exit(0))
    })
  }
}, 5)
