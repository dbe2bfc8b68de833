// bench/failover-fenced: one round of `node bench/failover.mjs --fenced`. A fresh lab, the
// primary's backup made (a dead node makes no final backup), the primary halted (`ha lab halt`:
// its addresses gone, as a pulled plug leaves them), then `ha failover --fenced primary --yes
// --json` from the admin side. Its yardsticks, from the same round: a client polling the service
// IP from the admin side (when the service first answered again), and one connection attempt to
// the halted node's ssh port (what finding it silent costs at the least).
import {spawn, spawnSync} from 'node:child_process'
import {readFileSync, rmSync} from 'node:fs'

import {runInNode} from '../dist/lab/container.js'
import {labHalt, labNetns, labPaths, labUp} from '../dist/lab/lab.js'
import {labAddresses, labServiceIp, labServicePort} from '../dist/lab/layout.js'

const bare = (cidr) => cidr.split('/')[0]

/** A node process in the admin namespace; its script gets the address and port as argv. */
const inAdmin = (script, ...argv) => ['ip', ['netns', 'exec', labNetns.admin, process.execPath, '-e', script, ...argv.map(String)]]

// Polls the service every 20 ms (each ask bounded to 200 ms, the whole for 180 s) and prints the
// time it first answered, as epoch ms.
const pollScript = `
const http = require('node:http')
const [host, port] = process.argv.slice(1)
const end = Date.now() + 180_000
const ask = () => new Promise((resolve) => {
  const req = http.get({host, port, path: '/', timeout: 200}, (res) => { res.resume(); resolve(res.statusCode === 200) })
  req.on('timeout', () => req.destroy()).on('error', () => resolve(false))
})
;(async () => {
  while (Date.now() < end) {
    if (await ask()) { console.log(Date.now()); return }
    await new Promise((r) => setTimeout(r, 20))
  }
})()`

// One TCP connection attempt, bounded to 30 s: how long until it failed, and how.
const connectScript = `
const net = require('node:net')
const [host, port] = process.argv.slice(1)
const t0 = Date.now()
const s = net.connect({host, port: Number(port), timeout: 30_000})
s.on('connect', () => { console.log(JSON.stringify({ms: Date.now() - t0, how: 'connected'})); s.destroy() })
s.on('timeout', () => { console.log(JSON.stringify({ms: Date.now() - t0, how: 'timeout'})); s.destroy() })
s.on('error', (e) => console.log(JSON.stringify({ms: Date.now() - t0, how: e.code})))`

function attemptToDeadNode() {
  const [cmd, argv] = inAdmin(connectScript, bare(labAddresses.primary), 22)
  const r = spawnSync(cmd, argv, {encoding: 'utf8', timeout: 60_000})
  return JSON.parse(r.stdout.trim() || '{"ms": null, "how": "no answer"}')
}

function envelopeOf(stdout) {
  const lines = stdout.split('\n')
  return JSON.parse(lines.slice(lines.findIndex((l) => l === '{')).join('\n') || '{}')
}

/** One fenced failover of the build at haBin, on a fresh lab; prints its line. */
export async function fencedRound({haBin, label, labDir}) {
  const journals = `${labDir}-journal`
  rmSync(journals, {force: true, recursive: true})
  await labUp({labDir})
  const backup = await runInNode(labDir, 'primary', ['ha', 'backup', '--quiet'], {timeoutMs: 120_000})
  if (backup.code !== 0) throw new Error(`ha backup on the primary: ${backup.stderr}`)
  await labHalt('primary', {labDir})
  const attempt = attemptToDeadNode()

  const [cmd, argv] = inAdmin(pollScript, bare(labServiceIp), labServicePort)
  const poller = spawn(cmd, argv, {stdio: ['ignore', 'pipe', 'ignore']})
  let answered = ''
  poller.stdout.on('data', (d) => {
    answered += d
  })
  const polled = new Promise((resolve) => poller.on('close', resolve))
  const started = Date.now()
  const r = spawnSync('ip', ['netns', 'exec', labNetns.admin, process.execPath, haBin, 'failover', '--fenced', 'primary', '--yes', '--json', '--config', labPaths(labDir).config], {
    encoding: 'utf8',
    env: {...process.env, HA_FAILOVER_DIR: journals},
    timeout: 600_000,
  })
  const wall = Date.now() - started
  // The service answers before the run ends (verify asks it); a poller still polling found nothing.
  if (!answered) poller.kill()
  await polled
  rmSync(journals, {force: true, recursive: true})
  const envelope = envelopeOf(r.stdout)
  if (r.status !== 0) throw new Error(`${label}: ha failover --fenced exited ${r.status}: ${JSON.stringify(envelope.error ?? r.stderr)}`)
  const {result} = envelope
  const up = answered ? Number(answered.trim()) - started : undefined
  const s = (ms) => `${(ms / 1000).toFixed(2)} s`
  console.log(`${label}: ha failover --fenced primary: wall ${s(wall)} (ha process), run ${s(result.wall_ms)} = ha ${s(result.ha_ms)} + waiting ${s(result.waiting_ms)}; before the first step ${s(wall - result.wall_ms)}`)
  console.log(`  the service answered again after ${up === undefined ? 'never (while polled)' : `${s(up)}; the run went on for ${s(wall - up)} (verify)`}`)
  console.log(`  one connection attempt to the halted node: ${attempt.ms === null ? 'no answer' : `${attempt.ms} ms`} (${attempt.how}); the config's connect_timeout ${/connect_timeout: (\S+)/.exec(readFileSync(labPaths(labDir).config, 'utf8'))?.[1]}`)
  console.log(`  steps, own ms (+ waiting): ${result.steps.map((st) => `${st.id} ${st.duration_ms - st.waiting_ms}${st.waiting_ms ? ` (+${st.waiting_ms})` : ''}`).join(', ')}`)
  return {ha_ms: result.ha_ms, service_up_ms: up, wall_ms: wall}
}
