import {spawn} from 'node:child_process'
import {closeSync, existsSync, openSync} from 'node:fs'
import {chmod, mkdir, rm} from 'node:fs/promises'
import {createServer, type Socket} from 'node:net'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {HaError} from '../core/errors.js'
import {bmcNodeDir, bmcSocketName} from './cluster.js'
import {labHostnames, type LabNode, labNodes, nodePaths} from './layout.js'
import {nodeEntryArgv} from './node.js'
import {isPoweredOn, powerOn, shutdownNode} from './power.js'

/**
 * The lab's BMC: what a fence device is to a real cluster (an IPMI card, a PDU). One process on
 * the machine (node-main bmc) listens on a Unix socket per node, <node>/run/bmc/bmc.sock, which
 * that node sees at /run/ha-lab-bmc: an out-of-band path that no lab network fault can cut, as a
 * management network is. A request is one JSON line, {action, target}; the answer one JSON line.
 * off/on/reboot act as `ha lab halt/boot/reboot` do (power.ts) and return once the power is in the
 * new state, not when the node has booted; status says on or off. A reboot answers once the node
 * is off and powers it on `powerOnDelaySeconds` later, as a server's firmware takes its time.
 * Pacemaker completes a fencing only when corosync has seen the node leave (token 3 s + consensus
 * 3.6 s); a node back before that joins while the result is broadcast, reads that it was "allegedly
 * just fenced" and its pacemaker stays down. So the delay is longer than that detection.
 */
export const powerOnDelaySeconds = 10


export type BmcAction = 'monitor' | 'off' | 'on' | 'reboot' | 'status'
export interface BmcAnswer {
  error?: string
  ok: boolean
  power?: 'off' | 'on'
}

/** A target by cluster node name (ctl-a) or lab name (primary). */
export function bmcTarget(name: string): LabNode | undefined {
  return labNodes.find((node) => node === name || labHostnames[node] === name)
}

export const bmcSocket = (labDir: string, node: LabNode) => join(nodePaths(labDir, node).runDir, 'bmc', bmcSocketName)
const bmcLog = (labDir: string) => join(labDir, 'cluster', 'bmc.log')

async function act(labDir: string, action: BmcAction, target: LabNode | undefined): Promise<BmcAnswer> {
  if (action === 'monitor') return {ok: true}
  if (!target) return {error: 'no such node', ok: false}
  switch (action) {
    case 'status': {
      return {ok: true, power: (await isPoweredOn(labDir, target)) ? 'on' : 'off'}
    }

    case 'off': {
      await shutdownNode(labDir, target)
      return {ok: true, power: 'off'}
    }

    case 'on': {
      await powerOn(labDir, target)
      return {ok: true, power: 'on'}
    }

    case 'reboot': {
      // Powered on again by the server, powerOnDelaySeconds later.
      await shutdownNode(labDir, target)
      return {ok: true, power: 'off'}
    }
  }
}

/** The BMC's loop (node-main bmc): serves until killed (ha lab down). One request per node at a time. */
export async function bmcServer(labDir: string, log: (line: string) => void): Promise<void> {
  const queues = new Map<LabNode, Promise<unknown>>()
  const serve = (from: LabNode) => (socket: Socket) => {
    let buffer = ''
    socket.setEncoding('utf8')
    socket.on('error', () => {})
    socket.on('data', (chunk: string) => {
      buffer += chunk
      if (!buffer.includes('\n') || buffer.length > 4096) return
      const request = JSON.parse(buffer.split('\n')[0] || '{}') as {action?: BmcAction; target?: string}
      const action = request.action ?? 'monitor'
      const target = bmcTarget(request.target ?? '')
      const queue = target ? (queues.get(target) ?? Promise.resolve()) : Promise.resolve()
      const done = queue.then(async () => {
        const answer = await act(labDir, action, target).catch((error: Error) => ({error: error.message, ok: false}))
        if (action !== 'monitor' && action !== 'status') log(`${labHostnames[from]} asked ${action} ${request.target}: ${JSON.stringify(answer)}`)
        socket.end(`${JSON.stringify(answer)}\n`)
        return answer.ok && action === 'reboot'
      })
      if (!target) return
      const powerOnLater = async (cycle: boolean) => {
        if (!cycle) return
        await sleep(powerOnDelaySeconds * 1000)
        const on = await powerOn(labDir, target).then(() => 'on', (error: Error) => `power on failed: ${error.message}`)
        log(`${labHostnames[target]} ${on} (the reboot ${labHostnames[from]} asked for)`)
      }

      queues.set(target, done.then(powerOnLater))
    })
  }

  for (const node of labNodes) {
    const path = bmcSocket(labDir, node)
    await mkdir(join(nodePaths(labDir, node).runDir, 'bmc'), {recursive: true})
    await rm(path, {force: true})
    await new Promise<void>((resolve, reject) => {
      createServer(serve(node)).once('error', reject).listen(path, () => resolve())
    })
    await chmod(path, 0o600)
  }

  log(`bmc listening for ${labNodes.join(', ')}`)
  // The servers keep the process alive; ha lab down kills it.
  await new Promise(() => {})
}

/** Starts the lab's BMC (detached, like the power supervisors) and waits until it listens. */
export async function startBmc(labDir: string): Promise<void> {
  await mkdir(join(labDir, 'cluster'), {recursive: true})
  const argv = [...nodeEntryArgv('node-main'), '--lab-dir', labDir, 'bmc']
  const out = openSync(bmcLog(labDir), 'a')
  try {
    const child = spawn(argv[0], argv.slice(1), {detached: true, env: {...process.env, LANG: 'C.UTF-8'}, stdio: ['ignore', out, out]})
    child.on('error', () => {})
    child.unref()
  } finally {
    closeSync(out)
  }

  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (labNodes.every((node) => existsSync(bmcSocket(labDir, node)))) return
    await sleep(50)
  }

  throw new HaError(`lab: the lab's BMC did not listen within 15 s`, {actions: [`read ${bmcLog(labDir)}`]})
}

/**
 * fence_ha_lab: a fence agent in the RHCS style pacemaker runs (options as key=value lines on
 * stdin, or -o ACTION -n NODE), a client of the BMC at /run/ha-lab-bmc. Exit 0 done (status: on),
 * 2 off (status), 1 failed.
 */
export function fenceAgentScript(nodeBinary: string): string {
  const metadata = `<?xml version="1.0" ?>
<resource-agent name="fence_ha_lab" shortdesc="Fence agent for the ha lab's nodes">
<longdesc>Powers a node of the ha lab off, on or cycles it through the lab's BMC (a Unix socket at ${bmcNodeDir}), as ha lab halt, boot and reboot do.</longdesc>
<vendor-url>https://example.invalid/ha</vendor-url>
<parameters>
	<parameter name="action" unique="0" required="1"><getopt mixed="-o, --action=[action]"/><content type="string" default="reboot"/><shortdesc lang="en">Fencing action</shortdesc></parameter>
	<parameter name="port" unique="0" required="0"><getopt mixed="-n, --plug=[node]"/><content type="string"/><shortdesc lang="en">The node to act on (ctl-a, ctl-b)</shortdesc></parameter>
	<parameter name="plug" unique="0" required="0" obsoletes="port"><getopt mixed="-n, --plug=[node]"/><content type="string"/><shortdesc lang="en">The node to act on (ctl-a, ctl-b)</shortdesc></parameter>
</parameters>
<actions>
	<action name="on" automatic="0"/>
	<action name="off"/>
	<action name="reboot"/>
	<action name="status"/>
	<action name="list"/>
	<action name="monitor"/>
	<action name="metadata"/>
	<action name="validate-all"/>
</actions>
</resource-agent>
`
  return `#!${nodeBinary}
// ha lab: fence_ha_lab, generated by \`ha lab up --cluster\`. See src/lab/bmc.ts.
'use strict'
const net = require('node:net')
const fs = require('node:fs')
const opts = {}
if (!process.stdin.isTTY) {
  let input = ''
  try { input = fs.readFileSync(0, 'utf8') } catch {}
  for (const line of input.split('\\n')) {
    const m = line.trim().match(/^([\\w-]+)\\s*=\\s*(.*)$/)
    if (m) opts[m[1]] = m[2]
  }
}
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]
  const long = a.match(/^--(action|plug|port)=(.*)$/)
  if (long) opts[long[1] === 'action' ? 'action' : 'port'] = long[2]
  else if (a === '-o' || a === '--action') opts.action = argv[++i]
  else if (a === '-n' || a === '--plug') opts.port = argv[++i]
}
const action = opts.action || 'reboot'
const target = opts.port || opts.plug || opts.nodename || ''
const hosts = ${JSON.stringify(labNodes.map((n) => labHostnames[n]))}
const metadata = ${JSON.stringify(metadata)}
if (action === 'metadata') { process.stdout.write(metadata); process.exit(0) }
if (action === 'list' || action === 'list-status') { process.stdout.write(hosts.map((h) => h + '\\n').join('')); process.exit(0) }
if (action === 'validate-all') process.exit(0)
if (!['on', 'off', 'reboot', 'status', 'monitor'].includes(action)) { console.error('fence_ha_lab: unknown action ' + action); process.exit(1) }
if (action !== 'monitor' && !hosts.includes(target)) { console.error('fence_ha_lab: no such node: ' + target); process.exit(1) }
const socket = net.createConnection('${bmcNodeDir}/${bmcSocketName}')
let reply = ''
const timer = setTimeout(() => { console.error('fence_ha_lab: the BMC did not answer within 60 s'); process.exit(1) }, 60000)
socket.setEncoding('utf8')
socket.on('connect', () => socket.write(JSON.stringify({action, target}) + '\\n'))
socket.on('data', (d) => { reply += d })
socket.on('error', (e) => { console.error('fence_ha_lab: cannot reach the BMC: ' + e.message); process.exit(1) })
socket.on('end', () => {
  clearTimeout(timer)
  let answer
  try { answer = JSON.parse(reply) } catch { console.error('fence_ha_lab: bad answer: ' + reply); process.exit(1) }
  if (!answer.ok) { console.error('fence_ha_lab: ' + action + ' ' + target + ' failed: ' + answer.error); process.exit(1) }
  if (action === 'status') { console.log('Status: ' + answer.power.toUpperCase()); process.exit(answer.power === 'on' ? 0 : 2) }
  if (action !== 'monitor') console.log('Success: ' + action + ' ' + target)
  process.exit(0)
})
`
}
