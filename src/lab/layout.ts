import {isAbsolute, join, normalize} from 'node:path'

import {ConfigError} from '../core/errors.js'

/**
 * Where the lab lives: fixed namespace names and addresses, and the folder layout under the lab
 * directory. Every address is from 198.18.0.0/15 (the benchmarking range, never routed) and is
 * only ever configured inside the namespaces below; the machine's own namespace gets nothing.
 */
export type LabNode = 'primary' | 'secondary'
export const labNodes: LabNode[] = ['primary', 'secondary']

export const labNetns = {admin: 'ha-lab-admin', primary: 'ha-lab-primary', secondary: 'ha-lab-secondary'} as const
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

/** One lab per machine: the namespace names are fixed, so the lock and the pointer are too. */
export const labLockPath = '/run/ha-lab.lock'
export const labCurrentPath = '/run/ha-lab.current'
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
