import {spawn} from 'node:child_process'
import {randomUUID} from 'node:crypto'
import {closeSync, existsSync, openSync} from 'node:fs'
import {mkdir, readdir, readFile, readlink, rm, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {fileURLToPath} from 'node:url'

import {HaError} from '../core/errors.js'
import {containerArgv, nodeInitPid} from './container.js'
import {findBinary, netnsPath, run} from './exec.js'
import {addressOnly, labAddresses, labInterface, labNetns, type LabNode, labPaths, nodePaths} from './layout.js'
import {killAll, listening, netnsExists, nodeEntryArgv, persistentAddresses, pidAlive, readPid} from './node.js'

/**
 * A lab controller's power: a supervisor on the machine (like a hypervisor) starts the node's
 * container, waits for its PID 1 to end, and then either boots it again after a pause (reboot)
 * or leaves it off (halt). The node's network namespace is its network card: it outlives a
 * reboot, but every runtime address on it goes when the node goes down.
 */

/** The checkout, bind-mounted read-only at the same path in every node so `ha` runs there. */
export const checkoutDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** The clean environment a node boots with (nothing of the machine's or the caller's). */
const bootEnv = {LANG: 'C.UTF-8', PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}

/** Block devices every node has in its /dev (the shared storage, like a SAN LUN both can see). */
/**
 * The shared disks a node gets, as node-init's HOST=NODE arguments: each machine loop device and
 * the name the node sees it by (labNodeDevices). A state written by an older ha lists bare paths.
 */
async function sharedDevices(labDir: string): Promise<string[]> {
  const state = JSON.parse(await readFile(labPaths(labDir).state, 'utf8').catch(() => '{}')) as {devices?: unknown}
  const devicePath = /^\/dev\/[\w/-]+$/
  const pairs = (Array.isArray(state.devices) ? state.devices : []).map((d: unknown) =>
    typeof d === 'string' ? {host: d, node: d} : (d as {host?: unknown; node?: unknown}))
  return pairs
    .filter((d): d is {host: string; node: string} => typeof d.host === 'string' && typeof d.node === 'string' && devicePath.test(d.host) && devicePath.test(d.node))
    .map((d) => `${d.host}=${d.node}`)
}

/**
 * Like ifup on a real network: a gratuitous ARP so neighbours drop the MAC of the address's
 * previous holder. Not waited for; it ends by itself (-c 1 -w 1).
 */
function announce(node: LabNode, ip: string): void {
  const arping = findBinary('arping') ?? 'arping'
  const child = spawn(findBinary('nsenter') ?? 'nsenter', [`--net=${netnsPath(labNetns[node])}`, '--', arping, '-q', '-U', '-c', '1', '-w', '1', '-I', labInterface, '-s', ip, ip], {
    detached: true,
    stdio: 'ignore',
  })
  child.on('error', () => {})
  child.unref()
}

async function networkUp(labDir: string, node: LabNode): Promise<void> {
  const netns = labNetns[node]
  await run(['ip', '-n', netns, 'link', 'set', 'lo', 'up'])
  await run(['ip', '-n', netns, 'link', 'set', labInterface, 'up'])
  const wanted = [labAddresses[node], ...(await persistentAddresses(nodePaths(labDir, node).root))]
  for (const cidr of [...new Set(wanted)]) {
    await run(['ip', '-n', netns, 'addr', 'replace', cidr, 'dev', labInterface])
    if (cidr !== labAddresses[node]) announce(node, addressOnly(cidr))
  }
}

/** A node that is off has no addresses and no runtime routes (a dropped-packets fault goes too). */
export async function networkDown(node: LabNode): Promise<void> {
  const netns = labNetns[node]
  if (!(await netnsExists(netns))) return
  await run(['ip', '-n', netns, 'addr', 'flush', 'dev', labInterface], {okCodes: [1]})
  await run(['ip', '-n', netns, 'route', 'flush', 'type', 'blackhole'], {okCodes: [1, 2]})
}

/** The supervisor's loop (node-main power NODE): runs until the node halts. */
export async function powerSupervisor(labDir: string, node: LabNode, log: (line: string) => void): Promise<void> {
  const paths = nodePaths(labDir, node)
  const lab = labPaths(labDir)
  await writeFile(paths.supervisorPid, `${process.pid}\n`)
  try {
    for (;;) {
      await rm(paths.powerIntent, {force: true})
      await networkUp(labDir, node)
      const bootId = randomUUID()
      await writeFile(paths.bootId, `${bootId}\n`)
      log(`power on ${node}, boot id ${bootId}`)
      const argv = containerArgv(labDir, node, lab.nodeInit, checkoutDir, lab.sbinDir, await sharedDevices(labDir))
      const child = spawn(findBinary(argv[0]) ?? argv[0], argv.slice(1), {env: bootEnv, stdio: ['ignore', 'inherit', 'inherit']})
      const ended = new Promise<{code: null | number; signal: NodeJS.Signals | null}>((resolve) => {
        child.on('exit', (code, signal) => resolve({code, signal}))
        child.on('error', () => resolve({code: 127, signal: null}))
      })
      if (child.pid) await writeFile(paths.containerPid, `${child.pid}\n`)
      const {code, signal} = await ended
      await rm(paths.containerPid, {force: true})
      await networkDown(node)
      const intent = (await readFile(paths.powerIntent, 'utf8').catch(() => '')).trim()
      const reboot = code === 10 || intent === 'reboot'
      log(`${node} went down (${signal ?? `exit ${code}`}${intent ? `, ${intent}` : ''})${reboot ? ', rebooting' : ', staying off'}`)
      if (!reboot) return
      // ha lab reboot --down-seconds asks once; a reboot from inside the node takes the default.
      const asked = (await readFile(paths.rebootDelay, 'utf8').catch(() => '')).trim()
      await rm(paths.rebootDelay, {force: true})
      const delay = asked === '' ? Number.NaN : Number(asked)
      await sleep((Number.isFinite(delay) && delay >= 0 ? delay : Number(process.env.HA_LAB_REBOOT_DELAY) || 3) * 1000)
    }
  } finally {
    await rm(paths.supervisorPid, {force: true})
  }
}

async function supervisorAlive(labDir: string, node: LabNode): Promise<number | undefined> {
  const pid = await readPid(nodePaths(labDir, node).supervisorPid)
  if (!pid || !(await pidAlive(pid))) return undefined
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
  return cmdline.includes(labDir) && cmdline.includes('node-main') ? pid : undefined
}

async function tail(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '')
  return text.trim().split('\n').slice(-6).join(' / ')
}

/** Waits until the node has booted with a boot id other than `previous`: its rc scripts ran and its sshd listens. */
async function waitBooted(labDir: string, node: LabNode, previous: string, timeoutMs: number, supervisor?: number): Promise<string> {
  const paths = nodePaths(labDir, node)
  const log = join(paths.logDir, 'node.log')
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const bootId = (await readFile(paths.bootId, 'utf8').catch(() => '')).trim()
    const init = await nodeInitPid(labDir, node)
    if (bootId && bootId !== previous && init !== undefined && existsSync(`/proc/${init}/root/run/lab-booted`) && (await listening(init, 22))) return bootId
    if (supervisor === undefined ? !(await supervisorAlive(labDir, node)) : !(await pidAlive(supervisor))) {
      throw new HaError(`lab: ${node} (namespace ${labNetns[node]}) did not boot: ${await tail(log)}`, {actions: [`read ${log} and ${paths.root}/var/log/sshd.log`]})
    }

    await sleep(50)
  }

  throw new HaError(`lab: ${node} (namespace ${labNetns[node]}) not up (sshd listening) after ${timeoutMs / 1000}s: ${await tail(log)}`, {
    actions: [`read ${log} and ${paths.root}/var/log/sshd.log`],
  })
}

export async function bootNode(labDir: string, node: LabNode): Promise<{boot_id: string}> {
  const {previous, supervisor} = await startSupervisor(labDir, node)
  return {boot_id: await waitBooted(labDir, node, previous, 20_000, supervisor ?? -1)}
}

/** Starts the node's power supervisor (it powers the node on); the boot id the node had before. */
async function startSupervisor(labDir: string, node: LabNode): Promise<{previous: string; supervisor: number | undefined}> {
  const netns = labNetns[node]
  const paths = nodePaths(labDir, node)
  if (!(await netnsExists(netns))) {
    throw new HaError(`lab: namespace ${netns} does not exist; the lab is not up`, {actions: ['run ha lab up']})
  }

  if (await supervisorAlive(labDir, node)) {
    throw new HaError(`lab: ${node} is already powered on`, {actions: [`use ha lab reboot ${node}`]})
  }

  await mkdir(paths.runDir, {recursive: true})
  await mkdir(paths.logDir, {recursive: true})
  const previous = (await readFile(paths.bootId, 'utf8').catch(() => '')).trim()
  const argv = [...nodeEntryArgv('node-main'), '--lab-dir', labDir, 'power', node]
  const out = openSync(join(paths.logDir, 'node.log'), 'a')
  let supervisor: number | undefined
  try {
    const child = spawn(argv[0], argv.slice(1), {detached: true, env: {...process.env, ...bootEnv}, stdio: ['ignore', out, out]})
    child.on('error', () => {})
    child.unref()
    supervisor = child.pid
  } finally {
    closeSync(out)
  }

  return {previous, supervisor}
}

/** Powered on with a boot id other than `previous`: its PID 1 runs (its boot is under way, not done). */
async function waitPowered(labDir: string, node: LabNode, previous: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const bootId = (await readFile(nodePaths(labDir, node).bootId, 'utf8').catch(() => '')).trim()
    if (bootId && bootId !== previous && (await nodeInitPid(labDir, node)) !== undefined) return bootId
    await sleep(50)
  }

  throw new HaError(`lab: ${node} not powered on after ${timeoutMs / 1000}s`, {actions: [`read ${join(nodePaths(labDir, node).logDir, 'node.log')}`]})
}

/**
 * A power switch's view (the lab's BMC, bmc.ts): on or off, and on that returns once the power
 * is on, as IPMI's does, without waiting for the node's operating system.
 */
export async function isPoweredOn(labDir: string, node: LabNode): Promise<boolean> {
  return (await supervisorAlive(labDir, node)) !== undefined && (await nodeInitPid(labDir, node)) !== undefined
}

export async function powerOn(labDir: string, node: LabNode): Promise<{boot_id: string}> {
  if (await supervisorAlive(labDir, node)) return {boot_id: (await readFile(nodePaths(labDir, node).bootId, 'utf8').catch(() => '')).trim()}
  const {previous} = await startSupervisor(labDir, node)
  return {boot_id: await waitPowered(labDir, node, previous, 20_000)}
}

/** Pulls the plug: PID 1 of the node is killed, so is everything else in it; the supervisor then acts on `intent`. */
async function pullPlug(labDir: string, node: LabNode, intent: 'halt' | 'reboot'): Promise<void> {
  const paths = nodePaths(labDir, node)
  await writeFile(paths.powerIntent, `${intent}\n`)
  const init = await nodeInitPid(labDir, node)
  if (init !== undefined) {
    try {
      process.kill(init, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
}

/** Everything running in the node dies and its addresses go; it stays off until bootNode. */
export async function shutdownNode(labDir: string, node: LabNode): Promise<void> {
  const supervisor = await supervisorAlive(labDir, node)
  await pullPlug(labDir, node, 'halt')
  const deadline = Date.now() + 10_000
  while (supervisor && (await pidAlive(supervisor)) && Date.now() < deadline) await sleep(50)
  if (supervisor && (await pidAlive(supervisor))) await killAll([supervisor])
  // Whatever the supervisor did or did not do, a halted node holds no address.
  await networkDown(node)
}

export async function rebootNode(labDir: string, node: LabNode, downSeconds: number): Promise<{boot_id: string}> {
  if (!(await netnsExists(labNetns[node]))) {
    throw new HaError(`lab: cannot reboot ${node}: namespace ${labNetns[node]} does not exist; the lab is not up`, {actions: ['run ha lab up']})
  }

  if (!(await supervisorAlive(labDir, node))) {
    throw new HaError(`lab: cannot reboot ${node}: it is halted`, {actions: [`ha lab boot ${node}`]})
  }

  const paths = nodePaths(labDir, node)
  const previous = (await readFile(paths.bootId, 'utf8').catch(() => '')).trim()
  await writeFile(paths.rebootDelay, `${Math.max(0, downSeconds)}\n`)
  await pullPlug(labDir, node, 'reboot')
  return {boot_id: await waitBooted(labDir, node, previous, downSeconds * 1000 + 20_000)}
}

/** Host pids of every process in the node (its PID namespace), PID 1 first. */
export async function nodeProcesses(labDir: string, node: LabNode): Promise<Array<{args: string; pid: number; ppid: number}>> {
  const init = await nodeInitPid(labDir, node)
  if (init === undefined) return []
  const ns = await readlink(`/proc/${init}/ns/pid`).catch(() => '')
  if (!ns) return []
  const found: Array<{args: string; pid: number; ppid: number}> = []
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue
    if ((await readlink(`/proc/${entry}/ns/pid`).catch(() => '')) !== ns) continue
    const args = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' ').trim()
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    found.push({args, pid: Number(entry), ppid})
  }

  return found.sort((a, b) => (a.pid === init ? -1 : b.pid === init ? 1 : a.pid - b.pid))
}

/** Mount points as the node sees them (its PID 1's mount namespace, paths under its own /). */
export async function nodeMountPoints(labDir: string, node: LabNode): Promise<string[]> {
  const init = await nodeInitPid(labDir, node)
  if (init === undefined) return []
  const text = await readFile(`/proc/${init}/mountinfo`, 'utf8').catch(() => '')
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ')[4].replaceAll(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8))))
}
