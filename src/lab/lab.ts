import {chmod, copyFile, mkdir, open, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {stringify} from 'yaml'

import {HaError} from '../errors.js'
import {acquireLock} from '../lock.js'
import {findBinary, run} from './exec.js'
import {
  addressOnly,
  labAddresses,
  labBridge,
  labCurrentPath,
  labDataDir,
  labHostnames,
  labImageSize,
  labInterface,
  labLockPath,
  labNetns,
  type LabNode,
  labNodes,
  labPaths,
  labServiceIp,
  labServicePort,
  labVeth,
  labVersionFile,
  nodePaths,
  resolveLabDir,
} from './layout.js'
import {nodeInitPid, nodeInitScript, powerScript, runInNode} from './container.js'
import {killAll, labProcesses, listening, mountPoints, netnsExists, netnsPids, nodeAddresses, nodeEntryArgv} from './node.js'
import {writeNodeSystem} from './node-system.js'
import {bootNode, checkoutDir, nodeMountPoints, nodeProcesses, rebootNode, shutdownNode} from './power.js'
import {addServiceIp, clearFaults, clockSkews, type FaultKind, injectFault, regenerateHostKey, setVersion, skewClock} from './faults.js'
import {seedDataDir, writeNodeRoot} from './roots.js'

export * from './layout.js'
export {accountOf, labAccounts} from './roots.js'
export {faultDescriptions, type FaultKind, faultKinds, faultVersion, parseSkew} from './faults.js'

/**
 * The two-controller lab: three network namespaces on one machine (admin side, primary,
 * secondary), each controller with its own sshd, root folder, boot id and hostname, a service IP,
 * a tiny service, and an ext4 filesystem on a loop device as the shared storage. `up` and `down`
 * are crash-only: `up` first removes whatever a previous run left, `down` leaves nothing behind.
 */

export interface LabOptions {
  /** The lab directory (default $HA_LAB_DIR, then /var/lib/ha-lab). */
  labDir?: string
  onProgress?: (message: string) => void
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
}

export interface LabDownResult {
  lab_dir: string
  loop_devices: string[]
  mounts: string[]
  namespaces: string[]
  processes: number
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

/** Fails, naming each missing binary and its package, before the lab touches anything. */
export function requirePrerequisites(find: (name: string) => string | undefined = findBinary, uid = process.getuid?.()): void {
  if (uid !== 0) {
    throw new HaError('the lab needs root (network namespaces, loop devices, mounts)', {actions: ['run it as root, e.g. sudo npm run lab:up']})
  }

  const missing = requiredBinaries.filter(([binary]) => !find(binary))
  if (missing.length > 0) {
    throw new HaError(`the lab needs ${missing.map(([b, p]) => `${b} (package ${p})`).join(', ')}, not found`, {
      actions: [`apt-get install ${[...new Set(missing.map(([, p]) => p))].join(' ')}`, 'or run node scripts/ensure-deps.mjs as root'],
    })
  }
}

async function withLabLock<T>(command: string, work: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(labLockPath, command)
  try {
    return await work()
  } finally {
    await lock.release()
  }
}

export async function labUp(options: LabOptions = {}): Promise<LabStatus> {
  const labDir = resolveLabDir(options.labDir)
  const progress = options.onProgress ?? (() => {})
  requirePrerequisites()
  return withLabLock('ha lab up', async () => {
    progress('cleaning up any previous lab')
    await teardown(labDir)
    try {
      await mkdir(labDir, {recursive: true})
      await writeFile(labCurrentPath, `${labDir}\n`)
      const lab = labPaths(labDir)
      // Only the lab's own sub-folders are wiped, never the lab directory itself.
      for (const sub of [...labNodes, 'admin', 'bin', 'sbin']) await rm(join(labDir, sub), {force: true, recursive: true})
      await rm(lab.state, {force: true})
      await rm(lab.image, {force: true})
      await rm(join(labDir, 'decoy.img'), {force: true})
      await rm(join(labDir, 'faults.json'), {force: true})

      progress('creating namespaces ha-lab-admin, ha-lab-primary, ha-lab-secondary')
      await createNetwork()

      progress('creating the shared storage (ext4 on a loop device)')
      const loopDevice = await createStorage(labDir)
      const decoy = await createDecoy(labDir)
      const state = {decoy_device: decoy, devices: [loopDevice, decoy], image: lab.image, lab_dir: labDir, loop_device: loopDevice, up_at: new Date().toISOString()}
      await writeFile(lab.state, `${JSON.stringify(state, null, 2)}\n`)

      progress('writing the controllers\' roots and keys')
      await mkdir(lab.adminDir, {recursive: true})
      await mkdir(lab.binDir, {recursive: true})
      await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'ha-lab-admin', '-f', lab.adminKey])
      await writeLabTools(labDir)
      await Promise.all(labNodes.map((node) => prepareNode(labDir, node, loopDevice)))
      await writeKnownHosts(labDir)
      await writeLabConfig(labDir, loopDevice)

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
  const labDir = resolveLabDir(options.labDir)
  requirePrerequisites()
  return withLabLock('ha lab down', async () => {
    const result = await teardown(labDir)
    await rm(labPaths(labDir).image, {force: true})
    await rm(join(labDir, 'decoy.img'), {force: true})
    await rm(join(labDir, 'faults.json'), {force: true})
    await rm(labPaths(labDir).state, {force: true})
    await rm(labCurrentPath, {force: true})
    return result
  })
}

/** Reboots a lab controller: everything in it dies, runtime addresses go, it comes back with a new boot id. */
export async function labReboot(node: LabNode, options: LabRebootOptions = {}): Promise<{boot_id: string; down_seconds: number; node: LabNode}> {
  const labDir = resolveLabDir(options.labDir)
  const downSeconds = options.downSeconds ?? (Number(process.env.HA_LAB_REBOOT_DELAY) || 3)
  const {boot_id: bootId} = await rebootNode(labDir, node, downSeconds)
  return {boot_id: bootId, down_seconds: downSeconds, node}
}

/** Powers a node off: everything in it dies and its addresses go, until labBoot (a fenced primary). */
export async function labHalt(node: LabNode, options: LabOptions = {}): Promise<void> {
  await shutdownNode(resolveLabDir(options.labDir), node)
}

/** Powers a halted node on: addresses from its network config, a new boot id, its init (sshd, cron, the service if it can serve). */
export async function labBoot(node: LabNode, options: LabOptions = {}): Promise<{boot_id: string}> {
  return bootNode(resolveLabDir(options.labDir), node)
}

/** Starts the node's service with its own init script; refuses where it could not really serve (no service IP or no data). */
export async function labServiceStart(node: LabNode, options: LabOptions = {}): Promise<void> {
  const r = await runInNode(resolveLabDir(options.labDir), node, ['/etc/init.d/xvm', 'start'], {okCodes: [1], timeoutMs: 20_000})
  if (r.code !== 0) throw new HaError(`lab: ${r.stderr.trim() || `cannot start the service on ${node}`}`, {actions: ['take over the storage and the service IP first']})
}

/** Stops the node's service (the product), leaving the node up. True when it was running. */
export async function labServiceStop(node: LabNode, options: LabOptions = {}): Promise<boolean> {
  const labDir = resolveLabDir(options.labDir)
  const was = await labServiceStatus(node, {labDir})
  await runInNode(labDir, node, ['/etc/init.d/xvm', 'stop'])
  return was
}

export async function labServiceStatus(node: LabNode, options: LabOptions = {}): Promise<boolean> {
  const r = await runInNode(resolveLabDir(options.labDir), node, ['/etc/init.d/xvm', 'status'], {okCodes: [3]})
  return r.code === 0
}

export async function labStatus(options: LabOptions = {}): Promise<LabStatus> {
  const labDir = resolveLabDir(options.labDir)
  const lab = labPaths(labDir)
  const state = JSON.parse(await readFile(lab.state, 'utf8').catch(() => '{}')) as {loop_device?: string}
  const nodes = {} as Record<LabNode, LabNodeStatus>
  for (const node of labNodes) nodes[node] = await nodeStatus(labDir, node)
  const adminExists = await netnsExists(labNetns.admin)
  return {
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
  await setVersion(resolveLabDir(options.labDir), node, version)
}

/** A new ssh host key for `node`, and its sshd restarted to present it (a "changed host key"). */
export async function labRegenerateHostKey(node: LabNode, options: LabOptions = {}): Promise<{public_key: string}> {
  return regenerateHostKey(resolveLabDir(options.labDir), node)
}

export async function labFault(node: LabNode, kind: FaultKind, options: LabOptions = {}): Promise<{detail: string; kind: FaultKind; node: LabNode}> {
  const labDir = resolveLabDir(options.labDir)
  await requireUp(labDir)
  return {...(await injectFault(labDir, node, kind)), kind, node}
}

export async function labClearFaults(options: LabOptions = {}): Promise<{cleared: Array<{kind: FaultKind; node: LabNode}>}> {
  return clearFaults(resolveLabDir(options.labDir))
}

/** Shifts the clock `node`'s programs see by `seconds` (0: the machine's clock again). */
export async function labSkew(node: LabNode, seconds: number, options: LabOptions = {}): Promise<{node: LabNode; skew_s: number}> {
  const labDir = resolveLabDir(options.labDir)
  await requireUp(labDir)
  await skewClock(labDir, node, seconds)
  return {node, skew_s: seconds}
}

async function requireUp(labDir: string): Promise<void> {
  if (!(await labStatus({labDir})).up) throw new HaError('lab: the lab is not up', {actions: ['ha lab up']})
}

// ---- Building blocks ----

async function createNetwork(): Promise<void> {
  for (const netns of Object.values(labNetns)) {
    await run(['ip', 'netns', 'add', netns])
    // No IPv6: link-local and autoconfigured addresses would be addresses outside 198.18.0.0/15.
    // /proc/sys/net is the namespace of the process writing it; a kernel without IPv6 has no file.
    await run(['/bin/sh', '-c', 'for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6; do [ ! -e "$f" ] || echo 1 > "$f" || exit 1; done'], {netns})
    await run(['ip', '-n', netns, 'link', 'set', 'lo', 'up'])
  }

  const admin = labNetns.admin
  await run(['ip', '-n', admin, 'link', 'add', labBridge, 'type', 'bridge'])
  // No STP/forward delay: a port must pass traffic the moment a node boots.
  await run(['ip', '-n', admin, 'link', 'set', labBridge, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0'])
  await run(['ip', '-n', admin, 'addr', 'add', labAddresses.admin, 'dev', labBridge])
  await run(['ip', '-n', admin, 'link', 'set', labBridge, 'up'])
  for (const node of labNodes) {
    // Both ends are created directly inside lab namespaces: nothing ever appears in the root namespace.
    await run(['ip', '-n', admin, 'link', 'add', labVeth[node], 'type', 'veth', 'peer', 'name', labInterface, 'netns', labNetns[node]])
    await run(['ip', '-n', admin, 'link', 'set', labVeth[node], 'master', labBridge])
    await run(['ip', '-n', admin, 'link', 'set', labVeth[node], 'up'])
  }
}

async function prepareNode(labDir: string, node: LabNode, storageDevice: string): Promise<void> {
  const paths = nodePaths(labDir, node)
  const lab = labPaths(labDir)
  await mkdir(paths.logDir, {recursive: true})
  await mkdir(paths.runDir, {recursive: true})
  await createNodeDisk(labDir, node)
  const adminPublicKey = await readFile(`${lab.adminKey}.pub`, 'utf8')
  await writeNodeRoot(paths.root, node, {adminPublicKey, storageDevice, storageFstype: 'ext4'})
  await writeNodeSystem(paths.root, {serviceArgv: nodeEntryArgv('service')})
  const key = join(paths.root, 'etc/ssh/ssh_host_ed25519_key')
  await mkdir(join(paths.root, 'etc/ssh/sshd_config.d'), {recursive: true})
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `root@${labHostnames[node]}`, '-f', key])
  // Root on each controller can reach the peer the way the admin does (a takeover run on a node).
  await copyFile(lab.adminKey, join(paths.root, 'root/.ssh/id_ed25519'))
  await chmod(join(paths.root, 'root/.ssh/id_ed25519'), 0o600)
}

async function writeKnownHosts(labDir: string): Promise<void> {
  const lines = []
  for (const node of labNodes) {
    const pub = (await readFile(join(nodePaths(labDir, node).root, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8')).trim()
    const [type, key] = pub.split(/\s+/)
    lines.push(`${addressOnly(labAddresses[node])} ${type} ${key}`)
  }

  await writeFile(labPaths(labDir).knownHosts, `${lines.join('\n')}\n`)
  for (const node of labNodes) await writeFile(join(nodePaths(labDir, node).root, 'root/.ssh/known_hosts'), `${lines.join('\n')}\n`, {mode: 0o644})
}

async function createStorage(labDir: string): Promise<string> {
  const lab = labPaths(labDir)
  const handle = await open(lab.image, 'w', 0o600)
  try {
    // Sparse: 256 MB of address space, a few MB on disk.
    await handle.truncate(labImageSize)
  } finally {
    await handle.close()
  }

  await run(['mkfs.ext4', '-q', '-F', '-L', 'xvm', '-E', 'lazy_itable_init=1,lazy_journal_init=1', lab.image], {timeoutMs: 60_000})
  const {stdout} = await run(['losetup', '--find', '--show', lab.image])
  const device = stdout.trim()
  // Seeded through a mount on the machine that is gone before any node boots: from then on the
  // filesystem is mounted only inside a node (the primary's /etc/fstab).
  const seed = join(labDir, 'seed-mount')
  await mkdir(seed, {recursive: true})
  await run(['mount', '-t', 'ext4', device, seed])
  try {
    await rm(join(seed, 'lost+found'), {force: true, recursive: true})
    await seedDataDir(seed)
  } finally {
    await run(['umount', seed])
  }

  await rm(seed, {force: true, recursive: true})
  return device
}

/** Another small ext4 filesystem, for the wrong-device fault: mounted where the storage belongs. */
async function createDecoy(labDir: string): Promise<string> {
  const image = join(labDir, 'decoy.img')
  await makeImage(image, 32 * 1024 * 1024, 'other')
  return (await run(['losetup', '--find', '--show', image])).stdout.trim()
}

/** Each node's / is a filesystem of its own (a disk, as on a real host), mounted on the machine at <node>/root. */
async function createNodeDisk(labDir: string, node: LabNode): Promise<void> {
  const paths = nodePaths(labDir, node)
  const image = join(labDir, node, 'disk.img')
  await makeImage(image, 512 * 1024 * 1024, labHostnames[node])
  const device = (await run(['losetup', '--find', '--show', image])).stdout.trim()
  await mkdir(paths.root, {recursive: true})
  await run(['mount', '-t', 'ext4', device, paths.root])
  await rm(join(paths.root, 'lost+found'), {force: true, recursive: true})
  await chmod(paths.root, 0o755)
}

async function makeImage(image: string, size: number, label: string): Promise<void> {
  const handle = await open(image, 'w', 0o600)
  try {
    await handle.truncate(size)
  } finally {
    await handle.close()
  }

  // -m 0: no blocks reserved for root, so "full" is full for everyone (the etc-full fault).
  await run(['mkfs.ext4', '-q', '-F', '-m', '0', '-L', label, '-E', 'lazy_itable_init=1,lazy_journal_init=1', image], {timeoutMs: 60_000})
}

/**
 * What every node has at /usr/local/sbin (bind-mounted read-only): `ha` itself, installed as on a
 * real controller, and the node's reboot and halt, which signal its init. Plus node-init, phase
 * one of a boot, run by the power supervisor on the machine.
 */
async function writeLabTools(labDir: string): Promise<void> {
  const lab = labPaths(labDir)
  if (!process.execPath.startsWith('/usr/')) {
    throw new HaError(`lab: node (${process.execPath}) is not under /usr, so the lab's controllers (which see the machine's /usr only) cannot run it`, {
      actions: ['install Node.js from Debian or into /usr/local'],
    })
  }

  await mkdir(lab.sbinDir, {recursive: true})
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`
  const tools: Record<string, string> = {
    ha: `#!/bin/sh\n# ha lab: ha as installed on this controller (the checkout, read-only).\nexec ${quote(process.execPath)} ${quote(join(checkoutDir, 'bin/run.js'))} "$@"\n`,
    halt: powerScript('halt'),
    reboot: powerScript('reboot'),
  }
  for (const [name, text] of Object.entries(tools)) {
    await writeFile(join(lab.sbinDir, name), text, {mode: 0o755})
    await chmod(join(lab.sbinDir, name), 0o755)
  }

  await writeFile(lab.nodeInit, nodeInitScript, {mode: 0o755})
}

/**
 * The admin side's config (ha run in ha-lab-admin reaches both nodes over ssh) and each node's
 * /etc/ha/ha.yaml (ha run on the node itself, as cron does): a production config, `root: /` and
 * the default reboot_command (/sbin/reboot), only the ssh key paths differ.
 */
async function writeLabConfig(labDir: string, loopDevice: string): Promise<void> {
  const lab = labPaths(labDir)
  const config = (keys: {identity_file: string; known_hosts: string}) => {
    const node = (name: LabNode) => ({
      hostname: labHostnames[name],
      root: '/',
      ssh: {host: addressOnly(labAddresses[name]), user: 'root', ...keys, host_key_policy: 'strict', connect_timeout: '5s', command_timeout: '30s'},
    })
    return {
      data_dir: labDataDir,
      version_file: labVersionFile,
      version_key: 'product.version',
      nodes: {primary: node('primary'), secondary: node('secondary')},
      service_ips: [{address: labServiceIp, interface: labInterface}],
      storage: {kind: 'mount', device: loopDevice, fstype: 'ext4'},
      backup: {dir: '.ha/backups', manifest: 'builtin:opscenter', keep: 24, max_age: '2h'},
    }
  }

  const header = [
    '# ha lab: generated by `ha lab up`; rewritten at every up. Run ha against the lab from the',
    `# admin side: ip netns exec ${labNetns.admin} ha <command> --config ${lab.config}`,
    '',
  ].join('\n')
  await writeFile(lab.config, header + stringify(config({identity_file: lab.adminKey, known_hosts: lab.knownHosts})))
  const onNode = `# ha lab: this controller's ha config, generated by \`ha lab up\`.\n${stringify(config({identity_file: '/root/.ssh/id_ed25519', known_hosts: '/root/.ssh/known_hosts'}))}`
  for (const node of labNodes) {
    await mkdir(join(nodePaths(labDir, node).root, 'etc/ha'), {recursive: true})
    await writeFile(join(nodePaths(labDir, node).root, 'etc/ha/ha.yaml'), onNode)
  }
}

/** Loop devices backed by `image` (also when the image was deleted under them). */
async function loopDevicesOf(image: string): Promise<string[]> {
  const {stdout} = await run(['losetup', '--list', '--noheadings', '--output', 'NAME,BACK-FILE'])
  return stdout
    .split('\n')
    .map((line) => line.trim().match(/^(\S+)\s+(.*)$/))
    .filter((m): m is RegExpMatchArray => m !== null && m[2].replace(/ \(deleted\)$/, '') === image)
    .map((m) => m[1])
}

/**
 * Removes every trace of a lab, running or crashed: processes in its namespaces, mounts under
 * its directory, its loop device, the namespaces (and with them the bridge and veths). Each step
 * is attempted even when an earlier one failed; what is left at the end is an error.
 */
async function teardown(labDir: string): Promise<LabDownResult> {
  const dirs = [labDir]
  const recorded = (await readFile(labCurrentPath, 'utf8').catch(() => '')).trim()
  if (recorded && recorded !== labDir && recorded.startsWith('/')) dirs.push(recorded)
  const problems: string[] = []
  const attempt = async (what: string, work: () => Promise<void>) => {
    try {
      await work()
    } catch (error) {
      problems.push(`${what}: ${(error as Error).message}`)
    }
  }

  const result: LabDownResult = {lab_dir: labDir, loop_devices: [], mounts: [], namespaces: [], processes: 0}
  const namespaces = Object.values(labNetns)
  await attempt('stopping processes', async () => {
    const pids: number[] = []
    for (const netns of namespaces) pids.push(...(await netnsPids(netns)))
    for (const dir of dirs) pids.push(...(await labProcesses(dir)))

    // Crash-only: a node is powered off, not shut down (and unshare ignores SIGTERM anyway).
    result.processes = await killAll(pids, 0)
  })
  for (const dir of dirs) {
    await attempt(`unmounting under ${dir}`, async () => {
      const mounts = (await mountPoints()).filter((m) => m.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length)
      for (const mount of mounts) {
        await run(['umount', mount], {timeoutMs: 20_000}).catch(async () => run(['umount', '-l', mount]))
        result.mounts.push(mount)
      }
    })
    for (const image of [labPaths(dir).image, join(dir, 'decoy.img'), ...labNodes.map((node) => join(dir, node, 'disk.img'))]) {
      await attempt(`detaching loop devices of ${image}`, async () => {
        for (const device of await loopDevicesOf(image)) {
          await run(['losetup', '-d', device])
          result.loop_devices.push(device)
        }
      })
    }
  }

  await attempt('deleting namespaces', async () => {
    for (const netns of namespaces) {
      if (!(await netnsExists(netns))) continue
      await run(['ip', 'netns', 'del', netns])
      result.namespaces.push(netns)
    }
  })
  if (problems.length > 0) {
    throw new HaError(`lab: could not remove everything:\n  ${problems.join('\n  ')}`, {
      actions: ['look at the named processes, mounts or devices and remove them, then run ha lab down again'],
      details: {problems},
    })
  }

  return result
}
