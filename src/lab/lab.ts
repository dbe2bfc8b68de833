import {existsSync} from 'node:fs'
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {HaError} from '../core/errors.js'
import {acquireLock} from '../lock/lock.js'
import {fenceAgentScript, startBmc} from './bmc.js'
import {createDecoy, createNetwork, createStorage, prepareNode, writeKnownHosts, writeLabConfig, writeLabTools} from './build.js'
import {clusterKey, type ClusterView, clusterView, writeClusterNode, writeClusterTools} from './cluster.js'
import {nodeInitPid, runInNode} from './container.js'
import {writeGuestImage} from './guest-domain.js'
import {type GuestView, guestView, reserveHugePages, returnHugePages, writeGuestNode} from './guests.js'
import {findBinary, run} from './exec.js'
import {addServiceIp, clearFaults, clockSkews, type FaultKind, injectFault, regenerateHostKey, setVersion, skewClock} from './faults.js'
import {
  labAddresses,
  labCurrentPath,
  labLockPath,
  labNetns,
  type LabNode,
  labNodeDevices,
  labNodes,
  labPaths,
  labServiceIp,
  labServicePort,
  nodePaths,
  labName,
  openLabDir,
} from './layout.js'
import {listening, netnsExists, nodeAddresses} from './node.js'
import {checkoutDir, bootNode, nodeMountPoints, nodeProcesses, rebootNode, shutdownNode} from './power.js'
import {type LabDownResult, loopDevicesOf, teardown} from './teardown.js'

export * from './layout.js'
export {accountOf, labAccounts} from './roots.js'
export {faultDescriptions, type FaultKind, faultKinds, faultVersion, parseSkew} from './faults.js'
export type {LabDownResult} from './teardown.js'
export type {ClusterView} from './cluster.js'
export type {GuestDomain, GuestView} from './guests.js'

/**
 * The two-controller lab: three network namespaces on one machine (admin side, primary,
 * secondary); each controller a small container (container.ts, power.ts) with its own /, /etc,
 * mount table, processes, boot id, sshd and cron; a service IP, a tiny service, and an ext4
 * filesystem on a loop device as the shared storage, mounted inside one node. `up` and `down` are
 * crash-only: `up` first removes whatever a previous run left, `down` leaves nothing behind.
 */

export interface LabOptions {
  /** The lab directory (default $HA_LAB_DIR, then /var/lib/ha-lab). */
  labDir?: string
  onProgress?: (message: string) => void
}

export interface LabUpOptions extends LabOptions {
  /** Corosync and pacemaker in both nodes, fencing through the lab's BMC (cluster.ts, bmc.ts). */
  cluster?: boolean
  /** libvirtd in both nodes, and the lab's tiny guest's disk in a folder both see (guests.ts, guest-domain.ts). */
  guests?: boolean
}

export interface LabRebootOptions extends LabOptions {
  /** How long the node stays down (default $HA_LAB_REBOOT_DELAY or 3 seconds). */
  downSeconds?: number
}

export interface LabNodeStatus {
  address: string
  addresses: string[]
  boot_id: string
  /** Seconds ahead (+) or behind (-) the machine that ha lab skew set for the node's logins and cron jobs. */
  clock_skew_s: number
  data_dir: string
  data_dir_mounted: boolean
  holds_service_ip: boolean
  hostname: string
  /** Host pid of the node's PID 1. */
  init_pid: number | null
  netns: string
  netns_exists: boolean
  /** How many processes run in the node (its PID namespace). */
  processes: number
  root: string
  /** Booted and not halted: its PID 1 is alive. */
  running: boolean
  service_pid: number | null
  service_running: boolean
  sshd_pid: number | null
  sshd_running: boolean
}

export interface LabStatus {
  admin: {address: string; netns: string; netns_exists: boolean}
  config_path: string
  image: string
  lab_dir: string
  loop_device: string | null
  nodes: Record<LabNode, LabNodeStatus>
  service_ip: string
  service_port: number
  up: boolean
  /** A cluster lab: what each running node's pacemaker says (null for a halted node); null when the lab has no cluster. */
  cluster: null | Record<LabNode, ClusterView | null>
  /** A guest lab: each running node's domains (virsh list --all; null for a halted node); null when the lab has no guests. */
  guests: null | Record<LabNode, GuestView | null>
}


/** Each binary the lab runs, and the Debian package that has it. */
const requiredBinaries: Array<[string, string]> = [
  ['ip', 'iproute2'],
  ['nsenter', 'util-linux'],
  ['unshare', 'util-linux'],
  ['losetup', 'util-linux'],
  ['mount', 'mount'],
  ['umount', 'mount'],
  ['mkfs.ext4', 'e2fsprogs'],
  ['ssh-keygen', 'openssh-client'],
  ['/usr/sbin/sshd', 'openssh-server'],
  ['arping', 'iputils-arping'],
  ['pivot_root', 'util-linux'],
  ['cron', 'cron'],
]

/** What ha lab up --cluster runs in each node (the machine's binaries, from its /usr). */
const clusterBinaries: Array<[string, string]> = [
  ['corosync', 'corosync'],
  ['corosync-cfgtool', 'corosync'],
  ['pacemakerd', 'pacemaker'],
  ['crm_mon', 'pacemaker-cli-utils'],
  ['stonith_admin', 'pacemaker-cli-utils'],
]

/** What ha lab up --guests runs in each node. */
const guestBinaries: Array<[string, string]> = [
  ['/usr/sbin/libvirtd', 'libvirt-daemon'],
  ['virsh', 'libvirt-clients'],
  [`/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so`, 'libvirt-daemon-driver-qemu'],
  ['/usr/bin/qemu-system-x86_64', 'qemu-system-x86'],
]

/** Fails, naming each missing binary and its package, before the lab touches anything. */
export function requirePrerequisites(find: (name: string) => string | undefined = findBinary, uid = process.getuid?.(), cluster = false, guests = false): void {
  if (uid !== 0) {
    throw new HaError('the lab needs root (network namespaces, loop devices, mounts)', {actions: ['run it as root, e.g. sudo npm run lab:up']})
  }

  // A driver module is a file to load, not a program to run: it need only exist.
  const present = (file: string) => (file.endsWith('.so') ? existsSync(file) : find(file) !== undefined)
  const missing = [...requiredBinaries, ...(cluster ? clusterBinaries : []), ...(guests ? guestBinaries : [])].filter(([binary]) => !present(binary))
  if (missing.length > 0) {
    throw new HaError(`the lab needs ${missing.map(([b, p]) => `${b} (package ${p})`).join(', ')}, not found`, {
      actions: [`apt-get install ${[...new Set(missing.map(([, p]) => p))].join(' ')}`, 'or run node scripts/ensure-deps.mjs as root'],
    })
  }
}

async function withLabLock<T>(command: string, work: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(labLockPath(), command)
  try {
    return await work()
  } finally {
    await lock.release()
  }
}

export async function labUp(options: LabUpOptions = {}): Promise<LabStatus> {
  const labDir = openLabDir(options.labDir)
  const progress = options.onProgress ?? (() => {})
  const cluster = options.cluster === true
  const guests = options.guests === true
  requirePrerequisites(findBinary, process.getuid?.(), cluster, guests)
  return withLabLock('ha lab up', async () => {
    progress('cleaning up any previous lab')
    await teardown(labDir)
    try {
      await mkdir(labDir, {recursive: true})
      await writeFile(labCurrentPath(), `${labDir}\n`)
      const lab = labPaths(labDir)
      // Only the lab's own sub-folders are wiped, never the lab directory itself.
      for (const sub of [...labNodes, 'admin', 'bin', 'sbin', 'cluster', 'guests']) await rm(join(labDir, sub), {force: true, recursive: true})
      await rm(lab.state, {force: true})
      await rm(lab.image, {force: true})
      await rm(join(labDir, 'decoy.img'), {force: true})
      await rm(join(labDir, 'faults.json'), {force: true})

      progress(`creating namespaces ${Object.values(labNetns).join(', ')}`)
      await createNetwork()

      progress('creating the shared storage (ext4 on a loop device)')
      const loopDevice = await createStorage(labDir)
      const decoy = await createDecoy(labDir)
      const devices = [{host: loopDevice, node: labNodeDevices.storage}, {host: decoy, node: labNodeDevices.decoy}]
      const state = {cluster, guests, decoy_device: decoy, devices, image: lab.image, lab_dir: labDir, loop_device: loopDevice, name: labName(), up_at: new Date().toISOString()}
      await writeFile(lab.state, `${JSON.stringify(state, null, 2)}\n`)

      progress('writing the controllers\' roots and keys')
      await mkdir(lab.adminDir, {recursive: true})
      await mkdir(lab.binDir, {recursive: true})
      await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'ha-lab-admin', '-f', lab.adminKey])
      await writeLabTools(labDir)
      await Promise.all(labNodes.map((node) => prepareNode(labDir, node, labNodeDevices.storage)))
      await writeKnownHosts(labDir)
      await writeLabConfig(labDir, labNodeDevices.storage, cluster, guests)
      if (cluster) {
        progress('writing the cluster (corosync, pacemaker, fence_ha_lab) into both nodes; starting the lab\'s BMC')
        const key = clusterKey()
        await Promise.all(labNodes.map((node) => writeClusterNode(labDir, node, key)))
        await writeClusterTools(labDir, fenceAgentScript(process.execPath), await readFile(join(checkoutDir, 'ocf/controller'), 'utf8'))
        await startBmc(labDir)
      }

      if (guests) {
        progress('writing libvirtd into both nodes; the guest\'s disk into the shared image folder')
        await Promise.all(labNodes.map((node) => writeGuestNode(labDir, node)))
        await writeGuestImage(labDir)
        await writeFile(join(labDir, 'guests', 'hugepages-added'), `${await reserveHugePages()}\n`)
      }

      progress('booting ctl-a and ctl-b')
      await Promise.all(labNodes.map((node) => bootNode(labDir, node)))
    } catch (error) {
      // A half-built lab is worse than none; the logs under the lab dir are kept for diagnosis.
      await teardown(labDir).catch(() => {})
      throw error
    }

    return labStatus({labDir})
  })
}

export async function labDown(options: LabOptions = {}): Promise<LabDownResult> {
  const labDir = openLabDir(options.labDir)
  requirePrerequisites()
  return withLabLock('ha lab down', async () => {
    const result = await teardown(labDir)
    // The huge pages a guest lab added to the machine's pool, given back once nothing uses them.
    const added = Number((await readFile(join(labDir, 'guests', 'hugepages-added'), 'utf8').catch(() => '0')).trim())
    await returnHugePages(added).catch(() => {})
    await rm(labPaths(labDir).image, {force: true})
    await rm(join(labDir, 'decoy.img'), {force: true})
    await rm(join(labDir, 'faults.json'), {force: true})
    await rm(labPaths(labDir).state, {force: true})
    await rm(labCurrentPath(), {force: true})
    return result
  })
}

/** Reboots a lab controller: everything in it dies, runtime addresses go, it comes back with a new boot id. */
export async function labReboot(node: LabNode, options: LabRebootOptions = {}): Promise<{boot_id: string; down_seconds: number; node: LabNode}> {
  const labDir = openLabDir(options.labDir)
  const downSeconds = options.downSeconds ?? (Number(process.env.HA_LAB_REBOOT_DELAY) || 3)
  const {boot_id: bootId} = await rebootNode(labDir, node, downSeconds)
  return {boot_id: bootId, down_seconds: downSeconds, node}
}

/** Powers a node off: everything in it dies and its addresses go, until labBoot (a fenced primary). */
export async function labHalt(node: LabNode, options: LabOptions = {}): Promise<void> {
  await shutdownNode(openLabDir(options.labDir), node)
}

/** Powers a halted node on: addresses from its network config, a new boot id, its init (sshd, cron, the service if it can serve). */
export async function labBoot(node: LabNode, options: LabOptions = {}): Promise<{boot_id: string}> {
  return bootNode(openLabDir(options.labDir), node)
}

/** Starts the node's service with its own init script; refuses where it could not really serve (no service IP or no data). */
export async function labServiceStart(node: LabNode, options: LabOptions = {}): Promise<void> {
  const r = await runInNode(openLabDir(options.labDir), node, ['/etc/init.d/xvm', 'start'], {okCodes: [1], timeoutMs: 20_000})
  if (r.code !== 0) throw new HaError(`lab: ${r.stderr.trim() || `cannot start the service on ${node}`}`, {actions: ['take over the storage and the service IP first']})
}

/** Stops the node's service (the product), leaving the node up. True when it was running. */
export async function labServiceStop(node: LabNode, options: LabOptions = {}): Promise<boolean> {
  const labDir = openLabDir(options.labDir)
  const was = await labServiceStatus(node, {labDir})
  await runInNode(labDir, node, ['/etc/init.d/xvm', 'stop'])
  return was
}

export async function labServiceStatus(node: LabNode, options: LabOptions = {}): Promise<boolean> {
  const r = await runInNode(openLabDir(options.labDir), node, ['/etc/init.d/xvm', 'status'], {okCodes: [3]})
  return r.code === 0
}

export async function labStatus(options: LabOptions = {}): Promise<LabStatus> {
  const labDir = openLabDir(options.labDir)
  const lab = labPaths(labDir)
  const state = JSON.parse(await readFile(lab.state, 'utf8').catch(() => '{}')) as {cluster?: boolean; guests?: boolean; loop_device?: string}
  const nodes = {} as Record<LabNode, LabNodeStatus>
  for (const node of labNodes) nodes[node] = await nodeStatus(labDir, node)
  const adminExists = await netnsExists(labNetns.admin)
  let cluster: LabStatus['cluster'] = null
  if (state.cluster === true) {
    cluster = {primary: null, secondary: null}
    for (const node of labNodes) if (nodes[node].running) cluster[node] = await clusterView(labDir, node)
  }

  let guests: LabStatus['guests'] = null
  if (state.guests === true) {
    guests = {primary: null, secondary: null}
    for (const node of labNodes) if (nodes[node].running) guests[node] = await guestView(labDir, node)
  }

  return {
    cluster,
    guests,
    admin: {address: labAddresses.admin, netns: labNetns.admin, netns_exists: adminExists},
    config_path: lab.config,
    image: lab.image,
    lab_dir: labDir,
    loop_device: (await loopDevicesOf(lab.image))[0] ?? state.loop_device ?? null,
    nodes,
    service_ip: labServiceIp,
    service_port: labServicePort,
    // The lab exists while its namespaces do; a halted node is part of an up lab (running: false).
    up: adminExists && labNodes.every((node) => nodes[node].netns_exists),
  }
}

async function nodeStatus(labDir: string, node: LabNode): Promise<LabNodeStatus> {
  const paths = nodePaths(labDir, node)
  const exists = await netnsExists(labNetns[node])
  const addresses = await nodeAddresses(node)
  const init = await nodeInitPid(labDir, node)
  const processes = await nodeProcesses(labDir, node)
  // The daemon itself, not its per-connection children: the one init adopted.
  const sshdPid = processes.find((p) => p.ppid === init && /^sshd: .*\[listener\]|^\/usr\/sbin\/sshd /.test(p.args))?.pid ?? null
  const servicePid = processes.find((p) => /\/lab\/service\.[jt]s /.test(p.args))?.pid ?? null
  const sshdRunning = init !== undefined && (await listening(init, 22))
  return {
    address: labAddresses[node],
    addresses,
    boot_id: init === undefined ? '' : (await readFile(paths.bootId, 'utf8').catch(() => '')).trim(),
    clock_skew_s: (await clockSkews(labDir))[node],
    data_dir: paths.dataDir,
    data_dir_mounted: (await nodeMountPoints(labDir, node)).includes(paths.dataDir),
    holds_service_ip: addresses.includes(labServiceIp),
    hostname: (await readFile(join(paths.root, 'etc/hostname'), 'utf8').catch(() => '')).trim(),
    init_pid: init ?? null,
    netns: labNetns[node],
    netns_exists: exists,
    processes: processes.length,
    root: paths.root,
    running: init !== undefined,
    service_pid: servicePid,
    service_running: servicePid !== null && init !== undefined && (await listening(init, labServicePort)),
    sshd_pid: sshdPid,
    sshd_running: sshdRunning,
  }
}

// ---- Faults on purpose: what ha check and failover must notice (faults.ts) ----

/** Puts the service IP on `node` at runtime (no announcement): with the primary up, both hold it. */
export async function labAddServiceIp(node: LabNode): Promise<void> {
  await addServiceIp(node)
}

/** Rewrites `node`'s version file with another product.version (a version mismatch). */
export async function labSetVersion(node: LabNode, version: string, options: LabOptions = {}): Promise<void> {
  await setVersion(openLabDir(options.labDir), node, version)
}

/** A new ssh host key for `node`, and its sshd restarted to present it (a "changed host key"). */
export async function labRegenerateHostKey(node: LabNode, options: LabOptions = {}): Promise<{public_key: string}> {
  return regenerateHostKey(openLabDir(options.labDir), node)
}

export async function labFault(node: LabNode, kind: FaultKind, options: LabOptions = {}): Promise<{detail: string; kind: FaultKind; node: LabNode}> {
  const labDir = openLabDir(options.labDir)
  await requireUp(labDir)
  return {...(await injectFault(labDir, node, kind)), kind, node}
}

export async function labClearFaults(options: LabOptions = {}): Promise<{cleared: Array<{kind: FaultKind; node: LabNode}>}> {
  return clearFaults(openLabDir(options.labDir))
}

/** Shifts the clock `node`'s programs see by `seconds` (0: the machine's clock again). */
export async function labSkew(node: LabNode, seconds: number, options: LabOptions = {}): Promise<{node: LabNode; skew_s: number}> {
  const labDir = openLabDir(options.labDir)
  await requireUp(labDir)
  await skewClock(labDir, node, seconds)
  return {node, skew_s: seconds}
}

async function requireUp(labDir: string): Promise<void> {
  if (!(await labStatus({labDir})).up) throw new HaError('lab: the lab is not up', {actions: ['ha lab up']})
}
