// bench/ssh-latency: what one remote command costs a failover, per node, over ha's own transport
// (one connection per node, as a run keeps): the handshake, a bare `true` (the round trip every
// action pays), and `ha --version` / `ha config check` on the node (their excess over `true` is
// ha's start-up there). Run by bench/failover.mjs inside the lab's admin namespace; alone:
//
//   ip netns exec ha-lab-admin node bench/ssh-latency.mjs CONFIG [runs=7]
import {loadConfig} from '../dist/config/load.js'
import {connectHost} from '../dist/hosts/connect.js'

const [configPath, runsArg] = process.argv.slice(2)
const runs = Number(runsArg ?? 7)
const {config} = await loadConfig(configPath)
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function timed(fn) {
  const t0 = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - t0) / 1e6
}

for (const name of ['primary', 'secondary']) {
  let host
  const connect = await timed(async () => {
    host = await connectHost(name, config.nodes[name])
  })
  try {
    const cost = async (argv) => {
      const times = []
      for (let i = 0; i < runs; i++) {
        times.push(await timed(async () => {
          const r = await host.run(argv)
          if (r.code !== 0) throw new Error(`${name}: ${argv.join(' ')} exited ${r.code}: ${r.stderr}`)
        }))
      }

      return median(times)
    }

    const trip = await cost(['true'])
    const version = await cost(['ha', '--version'])
    const check = await cost(['ha', 'config', 'check', '--quiet'])
    console.log(
      `  ${name}: handshake ${connect.toFixed(0)} ms; per command: true ${trip.toFixed(0)} ms, ha --version ${version.toFixed(0)} ms (start-up there ${(version - trip).toFixed(0)} ms), ha config check ${check.toFixed(0)} ms (${(check - trip).toFixed(0)} ms)`,
    )
  } finally {
    await host.close()
  }
}
