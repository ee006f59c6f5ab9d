'use strict'
// pino's run of the micro benchmark, the same workload as benchmarks/worker.py's throughput mode:
//
//   node benchmarks/node/bench.js --mode transport --events 100000 --path out.log --result r.json
//
// --mode transport: pino.transport({target: 'pino/file'}), the file written by a worker thread.
// --mode destination: pino.destination({sync: false}), sonic-boom's asynchronous writes on the
// main thread. Each call is `log.info({method, path, status, duration_ms}, 'request handled')`;
// the loop yields (setImmediate) every 100 calls, as the Python workers yield every 100. Only
// what follows pino's import is measured: configuring the logger, the calls, and until the
// stream has closed with the file complete. The result is one JSON object written to --result.

const fs = require('node:fs')
const { parseArgs } = require('node:util')
const pino = require('pino')

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'transport' },
    events: { type: 'string', default: '100000' },
    path: { type: 'string' },
    result: { type: 'string' }
  }
})
const events = Number(values.events)
const path = values.path
if (!path || !values.result || !Number.isInteger(events) || events < 1) {
  console.error('usage: bench.js --mode transport|destination --events N --path FILE --result FILE')
  process.exit(2)
}

function peakRss () {
  // VmHWM, as the Python workers read it (ru_maxrss carries over from the parent process).
  const match = /VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))
  return match ? Number(match[1]) * 1024 : process.resourceUsage().maxRSS * 1024
}

function open (mode) {
  if (mode === 'transport') {
    return pino.transport({ target: 'pino/file', options: { destination: path } })
  }
  if (mode === 'destination') {
    return pino.destination({ dest: path, sync: false })
  }
  throw new Error(`unknown mode ${mode}`)
}

function closed (stream) {
  // A transport's end() returns once its worker has closed the file, then emits 'finish' (its
  // 'close' may never come: the worker is unref'd); sonic-boom emits both after its last write.
  return new Promise((resolve, reject) => {
    stream.once('finish', resolve)
    stream.once('close', resolve)
    stream.once('error', reject)
    stream.end()
  })
}

async function main () {
  const rssStart = process.memoryUsage().rss
  const clock = process.hrtime.bigint
  const cpu0 = process.cpuUsage()
  const w0 = clock()
  const stream = open(values.mode)
  const log = pino(stream)
  const w1 = clock()
  let inCalls = 0n
  const batches = Math.floor(events / 100)
  const rest = events % 100
  for (let b = 0; b < batches; b++) {
    const b0 = clock()
    for (let i = 0; i < 100; i++) {
      log.info({ method: 'GET', path: '/api/items', status: 200, duration_ms: 12.5 }, 'request handled')
    }
    inCalls += clock() - b0
    await new Promise(setImmediate)
  }
  const b0 = clock()
  for (let i = 0; i < rest; i++) {
    log.info({ method: 'GET', path: '/api/items', status: 200, duration_ms: 12.5 }, 'request handled')
  }
  inCalls += clock() - b0
  const w2 = clock()
  await closed(stream)
  const w3 = clock()
  const cpu = process.cpuUsage(cpu0) // every thread of the process, the transport's worker too
  const s = (ns) => Number(ns) / 1e9
  const result = {
    events,
    loop_ns_per_call: Number(w2 - w1) / events,
    call_ns: Number(inCalls) / events,
    cpu_us_per_event: (cpu.user + cpu.system) / events,
    events_per_s: events / s(w3 - w0),
    setup_ms: s(w1 - w0) * 1e3,
    drain_ms: s(w3 - w2) * 1e3,
    wall_s: s(w3 - w0),
    rss_start: rssStart,
    peak_rss: peakRss(),
    file_bytes: fs.statSync(path).size,
    stats: { node: process.version, pino: require('pino/package.json').version, mode: values.mode }
  }
  fs.writeFileSync(values.result, JSON.stringify(result))
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
