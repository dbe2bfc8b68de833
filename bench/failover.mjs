// bench/failover: a full failover and failback between the lab's controllers, driven from the
// admin namespace as an admin would (`ha failover --yes --json`). Reports, per direction, the
// wall time and the part spent in ha itself: wall time minus waiting on the world (the reboot of
// the node taking over, services start/stop, arping -D's listening window, sleeps between
// retries), as ha's own envelope accounts it (result.ha_ms / waiting_ms). Target (issue 19): ha's
// part at most 0.8 s each way. Per step it prints ha's own ms (and the waiting, when there was any), so a
// slow step shows where the time goes. "ha process" adds what the run's own clock does not see:
// Node and oclif starting, the config, reading the roles and the plan before the first step.
// First it prints, per node, the handshake, one command's round trip and the start-up of ha
// there (bench/ssh-latency.mjs).
//
// --fenced: the night it is for. Each round a fresh lab, a backup on the primary, `ha lab halt`
// of the active node, then `ha failover --fenced NODE --yes --json`. Beside its wall time, per
// step, it prints its yardsticks from the same round: when the service first answered on its IP
// (a client polling from the admin side), and what one connection attempt to the halted node
// costs (the least a run must wait to find it silent). HA_BENCH_BEFORE=<another build>/bin/run.js
// runs that build's fenced failover in each round too, on a lab of its own (an A/B).
//
//   npm run build && flock /tmp/ha-dev-lab.flock node bench/failover.mjs [rounds=1] [--fenced]
import {spawnSync} from 'node:child_process'
import {rmSync} from 'node:fs'

import {labDown, labNetns, labPaths, labUp} from '../dist/lab/lab.js'
import {fencedRound} from './failover-fenced.mjs'

const args = process.argv.slice(2)
const rounds = Number(args.find((a) => /^\d+$/.test(a)) ?? 1)
const fenced = args.includes('--fenced')
const labDir = '/tmp/ha-bench-failover'
const journals = `${labDir}-journal`
const haBin = new URL('../bin/run.js', import.meta.url).pathname

function failover() {
  const started = Date.now()
  const r = spawnSync('ip', ['netns', 'exec', labNetns.admin, process.execPath, haBin, 'failover', '--yes', '--json', '--config', labPaths(labDir).config], {
    encoding: 'utf8',
    env: {...process.env, HA_FAILOVER_DIR: journals},
    timeout: 600_000,
  })
  const wall = Date.now() - started
  const lines = r.stdout.split('\n')
  const envelope = JSON.parse(lines.slice(lines.findIndex((l) => l === '{')).join('\n'))
  if (r.status !== 0) throw new Error(`ha failover exited ${r.status}: ${JSON.stringify(envelope.error ?? r.stderr)}`)
  const steps = envelope.result.steps.map((s) => ({id: s.id, own: s.duration_ms - (s.waiting_ms ?? 0), waiting: s.waiting_ms ?? 0}))
  return {direction: `${envelope.result.from} → ${envelope.result.to}`, ha_ms: envelope.result.ha_ms, process_wall_ms: wall, steps, waiting_ms: envelope.result.waiting_ms, wall_ms: envelope.result.wall_ms}
}

if (fenced) {
  try {
    for (let i = 0; i < rounds; i++) {
      for (const [label, bin] of [['this build', haBin], ...(process.env.HA_BENCH_BEFORE ? [['before', process.env.HA_BENCH_BEFORE]] : [])]) {
        await fencedRound({haBin: bin, label, labDir})
      }
    }
  } finally {
    await labDown({labDir})
    rmSync(labDir, {force: true, recursive: true})
  }

  process.exit(0)
}

rmSync(journals, {force: true, recursive: true})
await labUp({labDir})
try {
  // What every remote command of the run costs here, so a slow ha_ms can be told apart from a
  // slow network or a slow start of ha on the nodes.
  console.log('per node, over one connection (medians):')
  const latency = spawnSync('ip', ['netns', 'exec', labNetns.admin, process.execPath, new URL('ssh-latency.mjs', import.meta.url).pathname, labPaths(labDir).config], {encoding: 'utf8', timeout: 300_000})
  process.stdout.write(latency.stdout)
  if (latency.status !== 0) throw new Error(`bench/ssh-latency exited ${latency.status}: ${latency.stderr}`)
  for (let i = 0; i < rounds; i++) {
    for (const result of [failover(), failover()]) {
      console.log(
        `${result.direction}: wall ${(result.process_wall_ms / 1000).toFixed(2)} s (ha process), run ${(result.wall_ms / 1000).toFixed(2)} s = ha ${(result.ha_ms / 1000).toFixed(2)} s + waiting ${(result.waiting_ms / 1000).toFixed(2)} s; target ha ≤ 0.8 s: ${result.ha_ms <= 800 ? 'met' : 'NOT met'}`,
      )
      console.log(`  ha process own ${((result.process_wall_ms - result.waiting_ms) / 1000).toFixed(2)} s (before the first step: ${((result.process_wall_ms - result.wall_ms) / 1000).toFixed(2)} s)`)
      console.log(`  steps, own ms (+ waiting): ${result.steps.map((s) => `${s.id} ${s.own}${s.waiting ? ` (+${s.waiting})` : ''}`).join(', ')}`)
    }
  }
} finally {
  await labDown({labDir})
  rmSync(labDir, {force: true, recursive: true})
  rmSync(journals, {force: true, recursive: true})
}
