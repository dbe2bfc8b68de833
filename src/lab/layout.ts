import {readFileSync} from 'node:fs'
import {isAbsolute, join, normalize} from 'node:path'

import {ConfigError} from '../core/errors.js'

/**
 * Where the lab lives: fixed namespace names and addresses, and the folder layout under the lab
 * directory. Every address is from 198.18.0.0/15 (the benchmarking range, never routed) and is
 * only ever configured inside the namespaces below; the machine's own namespace gets nothing.
 */
export type LabNode = 'primary' | 'secondary'
export const labNodes: LabNode[] = ['primary', 'secondary']

/**
 * A lab's name picks its namespaces (ha-NAME-admin, ha-NAME-primary, ha-NAME-secondary) and its
 * lock: `lab` unless $HA_LAB_NAME says otherwise, so labs of different names run side by side on
 * one machine (the test suite runs two). Everything else is inside those namespaces (the bridge,
 * the cables, the addresses) or under the lab directory, so two labs share no name and no wire.
 * Which name a lab directory was brought up with is kept in its state (see lab.ts openLab).
 */
export const defaultLabName = 'lab'
export function labName(env: NodeJS.ProcessEnv = process.env): string {
  const name = env.HA_LAB_NAME || defaultLabName
  if (!/^[a-z][a-z0-9]{0,7}$/.test(name)) {
    throw new ConfigError(`HA_LAB_NAME "${name}" is not a lab name: a lowercase letter, then up to 7 lowercase letters or digits`, {
      actions: [`unset HA_LAB_NAME for the default lab (${defaultLabName}), or set it to a name such as lab2`],
    })
  }

  return name
}

/** The lab's namespaces, by the current lab name (read each time: see labName). */
export const labNetns = {
  get admin() {
    return `ha-${labName()}-admin`
  },
  get primary() {
    return `ha-${labName()}-primary`
  },
  get secondary() {
    return `ha-${labName()}-secondary`
  },
}
/** Inside the admin namespace, so every lab has one of this name. */
export const labBridge = 'ha-lab-br0'
/** The admin side's end of each node's cable, inside ha-lab-admin (never in the root namespace). */
export const labVeth = {primary: 'veth-primary', secondary: 'veth-secondary'} as const
export const labInterface = 'eth0'
export const labAddresses = {admin: '198.18.0.1/24', primary: '198.18.0.2/24', secondary: '198.18.0.3/24'} as const
export const labServiceIp = '198.18.0.100/24'
export const labServicePort = 8080
export const labHostnames = {primary: 'ctl-a', secondary: 'ctl-b'} as const
export const labDataDir = '/var/opt/sun/xvm'
export const labVersionFile = '/n1gc-setup/.version.properties'
export const labProductVersion = '2.1.0.1234'
export const labImageSize = 256 * 1024 * 1024
/**
 * How each node sees the lab's shared disks: as a host sees a SAN LUN (/dev/sdb), not by the
 * machine's loop device name. A loop name can be a prefix of the node's own disk (/dev/loop1 of
 * /dev/loop12, mounted at /), and resource-agents 4.12's Filesystem agent, stopping the storage,
 * then takes / for a bind mount of it: it unmounts it, fails, and signals every process of the
 * node, the cluster stack included (ha check names that hazard on real hosts: src/drivers/storage/filesystem-stop.ts).
 */
export const labNodeDevices = {decoy: '/dev/sdc', storage: '/dev/sdb'} as const

/** One lab per name: its lock, and where the lab that holds its namespaces lives. */
export const labLockPath = () => `/run/ha-${labName()}.lock`
export const labCurrentPath = () => `/run/ha-${labName()}.current`
export const defaultLabDir = '/var/lib/ha-lab'

export function addressOnly(cidr: string): string {
  return cidr.split('/')[0]
}

/** The lab directory: option, then $HA_LAB_DIR, then /var/lib/ha-lab. */
export function resolveLabDir(option?: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = option ?? (env.HA_LAB_DIR || defaultLabDir)
  if (!isAbsolute(dir)) {
    throw new ConfigError(`lab directory "${dir}" must be an absolute path`, {actions: ['set HA_LAB_DIR to an absolute path']})
  }

  const clean = normalize(dir).replace(/\/+$/, '')
  // `up` wipes the node folders below it; a short path like / or /var would be a disaster.
  if (clean.split('/').filter(Boolean).length < 2) {
    throw new ConfigError(`lab directory "${dir}" is too close to / to be wiped safely`, {
      actions: [`use a dedicated folder such as ${defaultLabDir}`],
    })
  }

  return clean
}

/**
 * The lab directory (as resolveLabDir), refused when the lab in it was brought up under another
 * name than the current one: its namespaces and lock are that name's, and acting on this name's
 * would touch another lab (or none). A directory with no lab in it yet is fine.
 */
export function openLabDir(option?: string, env: NodeJS.ProcessEnv = process.env): string {
  const labDir = resolveLabDir(option, env)
  const name = labName(env)
  const recorded = recordedLabName(labDir)
  if (recorded !== undefined && recorded !== name) {
    throw new ConfigError(`lab ${labDir} was brought up as lab "${recorded}" (namespaces ha-${recorded}-*), and HA_LAB_NAME makes this one "${name}"`, {
      actions: [recorded === defaultLabName ? 'unset HA_LAB_NAME, then run the command again' : `run the command again with HA_LAB_NAME=${recorded}`],
    })
  }

  return labDir
}

/** The name kept in a lab directory's state by `up` (a state from before names: the default). */
function recordedLabName(labDir: string): string | undefined {
  let text: string
  try {
    text = readFileSync(join(labDir, 'state.json'), 'utf8')
  } catch {
    return undefined
  }

  try {
    const name = (JSON.parse(text) as {name?: unknown}).name
    return typeof name === 'string' ? name : defaultLabName
  } catch {
    return undefined
  }
}

export interface LabPaths {
  adminDir: string
  binDir: string
  config: string
  image: string
  knownHosts: string
  adminKey: string
  labDir: string
  /** What every node has bind-mounted at /usr/local/sbin: ha, reboot, halt (the lab's "installed" tools). */
  sbinDir: string
  /** Phase one of a node's boot: turns a fresh set of namespaces into the node (see container.ts). */
  nodeInit: string
  state: string
}

export interface NodePaths {
  /** The node's boot id, bind-mounted over /proc/sys/kernel/random/boot_id inside it. */
  bootId: string
  /** Host pid of the `unshare` whose child is the node's PID 1. */
  containerPid: string
  /** The data directory as the node sees it (inside its own mount namespace). */
  dataDir: string
  logDir: string
  /** Why the node's init last ended, written by ha lab reboot/halt before they pull the plug. */
  powerIntent: string
  /** Seconds a reboot keeps the node down, read by its power supervisor. */
  rebootDelay: string
  root: string
  runDir: string
  /** Host pid of the node's power supervisor (node-main power). */
  supervisorPid: string
}

export function labPaths(labDir: string): LabPaths {
  return {
    adminDir: join(labDir, 'admin'),
    adminKey: join(labDir, 'admin', 'id_ed25519'),
    binDir: join(labDir, 'bin'),
    config: join(labDir, 'ha.yaml'),
    image: join(labDir, 'shared.img'),
    knownHosts: join(labDir, 'admin', 'known_hosts'),
    labDir,
    nodeInit: join(labDir, 'bin', 'node-init'),
    sbinDir: join(labDir, 'sbin'),
    state: join(labDir, 'state.json'),
  }
}

export function nodePaths(labDir: string, node: LabNode): NodePaths {
  const base = join(labDir, node)
  const root = join(base, 'root')
  return {
    bootId: join(base, 'run', 'boot_id'),
    containerPid: join(base, 'run', 'container.pid'),
    dataDir: labDataDir,
    logDir: join(base, 'log'),
    powerIntent: join(base, 'run', 'power-intent'),
    rebootDelay: join(base, 'run', 'reboot-delay'),
    root,
    runDir: join(base, 'run'),
    supervisorPid: join(base, 'run', 'supervisor.pid'),
  }
}

export function isLabNode(value: string): value is LabNode {
  return (labNodes as string[]).includes(value)
}
