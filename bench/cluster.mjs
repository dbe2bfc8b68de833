// bench/cluster: the service on the cluster lab's two-node Pacemaker cluster (ha lab up --cluster,
// then ha cluster setup --apply), timed from outside as a client sees it:
//   - node death: from `ha lab halt` of the active node to the service answering on the survivor
//     (corosync's detection, priority-fencing-delay, the fence, the group's start there);
//   - switchover, the standard tool: `crm_resource --move` to the other node, until the service
//     answers there, then `crm_resource --clear`;
//   - switchover, `ha failover` (the guided switchover through Pacemaker), when ha has it.
// ha's own share of each move is the time Pacemaker recorded for ha's resource agent
// (ocf:ha:controller's stop and start, exec-time in the CIB's status): the rest is Pacemaker,
// corosync and the stock agents (Filesystem, IPaddr2).
//
//   npm run build && node bench/cluster.mjs [rounds=1]
import {spawnSync} from 'node:child_process'
import {rmSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'

import {runInNode} from '../dist/lab/container.js'
import {labDown, labHalt, labNetns, labPaths, labUp} from '../dist/lab/lab.js'

const rounds = Number(process.argv[2] ?? 1)
const labDir = '/tmp/ha-bench-cluster'
const names = {primary: 'ctl-a', secondary: 'ctl-b'}
const other = (node) => (node === 'primary' ? 'secondary' : 'primary')
const haBin = new URL('../bin/run.js', import.meta.url).pathname
const all = Array.from({length: 255}, (_, i) => i + 1)
const inNode = (node, argv, timeoutMs = 120_000) => runInNode(labDir, node, ['env', '-u', 'NODE_EXTRA_CA_CERTS', ...argv], {okCodes: all, timeoutMs})

function answeredBy() {
  const script = 'fetch("http://198.18.0.100:8080/", {signal: AbortSignal.timeout(1000)}).then(r => r.json()).then(j => process.stdout.write(j.hostname), () => process.exit(1))'
  const r = spawnSync('ip', ['netns', 'exec', labNetns.admin, process.execPath, '-e', script], {encoding: 'utf8', timeout: 5000})
  return r.status === 0 ? r.stdout : undefined
}

async function until(seconds, probe, every = 100) {
  const deadline = Date.now() + seconds * 1000
  while (Date.now() < deadline) {
    const v = await probe()
    if (v) return v
    await sleep(every)
  }

  throw new Error(`not within ${seconds} s`)
}

async function activeNode() {
  return until(60, async () => {
    const host = answeredBy()
    return host ? Object.keys(names).find((n) => names[n] === host) : undefined
  })
}

/** ocf:ha:controller's last stop and start on each node, as Pacemaker recorded them (ms). */
async function agentTimes(from) {
  const r = await inNode(from, ['cibadmin', '--query', '--scope', 'status'])
  const ops = [...r.stdout.matchAll(/<lrm_rsc_op id="ha-controller_last_0"[^>]*>/g)].map((m) => m[0])
  const sum = ops.map((op) => ({exec: Number(/exec-time="(\d+)"/.exec(op)?.[1] ?? 0), op: /operation="(\w+)"/.exec(op)?.[1]}))
  return sum
}

async function moveWithCrmResource(to) {
  const started = Date.now()
  await inNode(to, ['crm_resource', '--move', '--resource', 'ha-service', '--node', names[to]])
  await until(120, async () => answeredBy() === names[to])
  const wall = Date.now() - started
  await inNode(to, ['crm_resource', '--clear', '--resource', 'ha-service'])
  return wall
}

async function moveWithHa(to) {
  const started = Date.now()
  const r = spawnSync('ip', ['netns', 'exec', labNetns.admin, process.execPath, haBin, 'failover', '--yes', '--json', '--config', labPaths(labDir).config], {encoding: 'utf8', timeout: 600_000})
  const wall = Date.now() - started
  if (r.status !== 0) return {error: `ha failover exited ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').at(-1)}`}
  if (answeredBy() !== names[to]) return {error: 'ha failover returned, but the service does not answer from the other node'}
  const lines = r.stdout.split('\n')
  const result = JSON.parse(lines.slice(lines.findIndex((l) => l === '{')).join('\n')).result
  // ha's own: the run's wall time less its waiting on the cluster (crm_mon polls until the group runs there).
  return {own: result.wall_ms - result.waiting_ms, run: result.wall_ms, wall}
}

async function nodeDeath(active) {
  const halted = Date.now()
  await labHalt(active, {labDir})
  const survivor = other(active)
  await until(120, async () => answeredBy() === names[survivor])
  const wall = Date.now() - halted
  // The fence was a reboot: wait for the node to be back in the cluster before the next round.
  await until(120, async () => (await inNode(survivor, ['crm_mon', '-1'])).stdout.includes('Online: [ ctl-a ctl-b ]'), 500)
  return wall
}

const s = (ms) => `${(ms / 1000).toFixed(2)} s`
await labUp({cluster: true, labDir})
try {
  await until(60, async () => (await inNode('primary', ['crm_mon', '-1'])).stdout.includes('Online: [ ctl-a ctl-b ]'), 500)
  const setup = await inNode('primary', ['ha', 'cluster', 'setup', '--apply'])
  if (setup.code !== 0) throw new Error(`ha cluster setup --apply: ${setup.stderr}`)
  let active = await activeNode()
  for (let i = 0; i < rounds; i++) {
    const to = other(active)
    const crm = await moveWithCrmResource(to)
    const agent = await agentTimes(to)
    const own = agent.reduce((sum, a) => sum + a.exec, 0)
    console.log(`switchover ${names[active]} -> ${names[to]}, crm_resource --move: ${s(crm)} until the service answers there; ocf:ha:controller's own stop + start: ${s(own)} (${agent.map((a) => `${a.op} ${a.exec} ms`).join(', ')})`)
    active = to
    const back = other(active)
    const ha = await moveWithHa(back)
    if (ha.error) console.log(`switchover ${names[active]} -> ${names[back]}, ha failover: ${ha.error}`)
    else {
      console.log(`switchover ${names[active]} -> ${names[back]}, ha failover: ${s(ha.wall)} until done (service answering, move constraint cleared); ${(ha.wall / crm).toFixed(2)}x crm_resource --move; its run ${s(ha.run)}, of which ha's own ${s(ha.own)} (the rest waits on the cluster), plus ${s(ha.wall - ha.run)} starting ha and reading the cluster before it`)
      active = back
    }

    const death = await nodeDeath(active)
    console.log(`node death: ha lab halt ${names[active]} -> the service answers on ${names[other(active)]}: ${s(death)} (target in the lab: under 15 s)`)
    active = other(active)
  }
} finally {
  await labDown({labDir})
  rmSync(labDir, {force: true, recursive: true})
}
