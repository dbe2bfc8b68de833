import {copyFile, mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {HaError} from '../core/errors.js'
import {runInNode} from './container.js'
import {run} from './exec.js'
import {
  labAddresses,
  labDataDir,
  labHostnames,
  labInterface,
  labNetns,
  type LabNode,
  labNodeDevices,
  labNodes,
  labPaths,
  labProductVersion,
  labServiceIp,
  labVersionFile,
  nodePaths,
} from './layout.js'
import {persistentAddresses} from './node.js'
import {nodeProcesses} from './power.js'
import {versionProperties} from './roots.js'

/**
 * Faults on purpose, for rehearsals and tests: each one is something `ha check` (and a failover)
 * must notice, made the way it happens on real hosts, and each can be undone by `clearFaults`.
 * What was done is recorded in <lab>/faults.json so `ha lab fault --clear` undoes exactly that.
 */
export const faultKinds = ['service-ip', 'version', 'host-key', 'sshd-stopped', 'sshd-hung', 'network-drop', 'wrong-device', 'etc-full'] as const
export type FaultKind = (typeof faultKinds)[number]

export const faultDescriptions: Record<FaultKind, string> = {
  'etc-full': 'the filesystem holding the node\'s /etc (its /) is full',
  'host-key': 'a regenerated ssh host key (known_hosts keeps the old one)',
  'network-drop': 'the node\'s network silently drops every packet to the other lab hosts',
  'service-ip': 'the service IP also on this node, at runtime',
  'sshd-hung': 'sshd stopped with SIGSTOP: connections are accepted by the kernel, never answered',
  'sshd-stopped': 'sshd not running',
  version: 'another product version in the node\'s version file',
  'wrong-device': 'the data directory mounted from another device than storage.device',
}

/** The version a `version` fault writes. */
export const faultVersion = '2.1.0.1300'

interface FaultRecord {
  kind: FaultKind
  node: LabNode
  /** For sshd-hung: the stopped pid; for wrong-device: whether the node had the storage mounted. */
  pid?: number
  had_storage?: boolean
}

function faultsFile(labDir: string): string {
  return join(labDir, 'faults.json')
}

async function readFaults(labDir: string): Promise<FaultRecord[]> {
  const parsed = JSON.parse(await readFile(faultsFile(labDir), 'utf8').catch(() => '[]')) as unknown
  return Array.isArray(parsed) ? (parsed as FaultRecord[]) : []
}

async function writeFaults(labDir: string, faults: FaultRecord[]): Promise<void> {
  await writeFile(faultsFile(labDir), `${JSON.stringify(faults, null, 2)}\n`)
}

/** Puts the service IP on `node` at runtime (no announcement): with the primary up, both hold it. */
export async function addServiceIp(node: LabNode): Promise<void> {
  await run(['ip', '-n', labNetns[node], 'addr', 'replace', labServiceIp, 'dev', labInterface])
}

/** Rewrites `node`'s version file with another product.version (a version mismatch). */
export async function setVersion(labDir: string, node: LabNode, version: string): Promise<void> {
  await writeFile(join(nodePaths(labDir, node).root, labVersionFile), versionProperties(version))
}

/** A new ssh host key for `node`, and its sshd restarted to present it (a "changed host key"). */
export async function regenerateHostKey(labDir: string, node: LabNode): Promise<{public_key: string}> {
  const key = join(nodePaths(labDir, node).root, 'etc/ssh/ssh_host_ed25519_key')
  await rm(key, {force: true})
  await rm(`${key}.pub`, {force: true})
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `root@${labHostnames[node]}`, '-f', key])
  await runInNode(labDir, node, ['/etc/init.d/ssh', 'restart'])
  return {public_key: (await readFile(`${key}.pub`, 'utf8')).trim()}
}

async function sshdListener(labDir: string, node: LabNode): Promise<number | undefined> {
  const processes = await nodeProcesses(labDir, node)
  return processes.find((p) => p.ppid === processes[0]?.pid && /^sshd: .*\[listener\]|^\/usr\/sbin\/sshd /.test(p.args))?.pid
}

/** The storage device of the running lab and the decoy a wrong-device fault mounts instead, as the nodes see them. */
async function labDevices(labDir: string): Promise<{decoy?: string; storage?: string}> {
  const state = JSON.parse(await readFile(labPaths(labDir).state, 'utf8').catch(() => '{}')) as {decoy_device?: string}
  return state.decoy_device ? {...labNodeDevices} : {storage: labNodeDevices.storage}
}

export async function injectFault(labDir: string, node: LabNode, kind: FaultKind): Promise<{detail: string}> {
  const faults = await readFaults(labDir)
  if (faults.some((f) => f.node === node && f.kind === kind)) {
    throw new HaError(`lab: ${node} already has the fault ${kind}`, {actions: ['ha lab fault --clear']})
  }

  const record: FaultRecord = {kind, node}
  const paths = nodePaths(labDir, node)
  let detail = faultDescriptions[kind]
  switch (kind) {
    case 'service-ip': {
      await addServiceIp(node)
      break
    }

    case 'version': {
      await setVersion(labDir, node, faultVersion)
      detail = `product.version=${faultVersion} in ${labVersionFile}`
      break
    }

    case 'host-key': {
      const key = join(paths.root, 'etc/ssh/ssh_host_ed25519_key')
      const saved = join(paths.runDir, 'host-key.orig')
      await mkdir(paths.runDir, {recursive: true})
      await copyFile(key, saved)
      await copyFile(`${key}.pub`, `${saved}.pub`)
      detail = `new host key ${(await regenerateHostKey(labDir, node)).public_key.split(' ').slice(0, 2).join(' ')}`
      break
    }

    case 'sshd-stopped': {
      await runInNode(labDir, node, ['/etc/init.d/ssh', 'stop'])
      break
    }

    case 'sshd-hung': {
      const pid = await sshdListener(labDir, node)
      if (pid === undefined) throw new HaError(`lab: no sshd running on ${node} to hang`, {actions: ['ha lab fault --clear']})
      process.kill(pid, 'SIGSTOP')
      record.pid = pid
      detail = `sshd (pid ${pid} on the machine) stopped with SIGSTOP`
      break
    }

    case 'network-drop': {
      // Routes that swallow the replies: the other hosts' packets arrive, nothing goes back, and
      // nobody is told (no ICMP, no reset), as with a dead switch port or a bad firewall rule.
      for (const half of ['198.18.0.0/25', '198.18.0.128/25']) await run(['ip', '-n', labNetns[node], 'route', 'add', 'blackhole', half])
      break
    }

    case 'wrong-device': {
      const {decoy, storage} = await labDevices(labDir)
      if (!decoy) throw new HaError('lab: this lab has no decoy device (it was brought up by an older ha)', {actions: ['ha lab up']})
      const mounted = await runInNode(labDir, node, ['findmnt', '-n', '-o', 'SOURCE', '--mountpoint', labDataDir], {okCodes: [1]})
      record.had_storage = mounted.code === 0
      if (record.had_storage) await runInNode(labDir, node, ['umount', labDataDir])
      await runInNode(labDir, node, ['mount', '-t', 'ext4', decoy, labDataDir])
      detail = `${labDataDir} mounted from ${decoy}, not from the storage ${storage ?? '(unknown)'}`
      break
    }

    case 'etc-full': {
      // Fills the node's / (where /etc lives, a filesystem of its own) to the last block.
      await runInNode(labDir, node, ['sh', '-c', 'fallocate -l "$(df -P -B1 /etc | awk \'NR==2 {print $4}\')" /etc/.ha-lab-fill; dd if=/dev/zero of=/etc/.ha-lab-fill-tail bs=4k 2>/dev/null; df -P -B1 /etc | awk \'NR==2 {exit $4 > 65536}\''], {timeoutMs: 60_000})
      break
    }
  }

  faults.push(record)
  await writeFaults(labDir, faults)
  return {detail}
}

/** Undoes every recorded fault (the last first); what cannot be undone is named. */
export async function clearFaults(labDir: string): Promise<{cleared: Array<{kind: FaultKind; node: LabNode}>}> {
  const faults = await readFaults(labDir)
  const cleared: Array<{kind: FaultKind; node: LabNode}> = []
  const problems: string[] = []
  for (const fault of [...faults].reverse()) {
    try {
      await undo(labDir, fault)
      cleared.push({kind: fault.kind, node: fault.node})
    } catch (error) {
      problems.push(`${fault.kind} on ${fault.node}: ${(error as Error).message}`)
    }
  }

  await writeFaults(labDir, faults.filter((f) => !cleared.some((c) => c.kind === f.kind && c.node === f.node)))
  if (problems.length > 0) {
    throw new HaError(`lab: could not clear every fault:\n  ${problems.join('\n  ')}`, {actions: ['ha lab up rebuilds the lab from scratch']})
  }

  return {cleared}
}

async function undo(labDir: string, fault: FaultRecord): Promise<void> {
  const {node} = fault
  const paths = nodePaths(labDir, node)
  switch (fault.kind) {
    case 'service-ip': {
      const own = [labAddresses[node], ...(await persistentAddresses(paths.root))]
      if (!own.includes(labServiceIp)) await run(['ip', '-n', labNetns[node], 'addr', 'del', labServiceIp, 'dev', labInterface], {okCodes: [2]})
      break
    }

    case 'version': {
      await setVersion(labDir, node, labProductVersion)
      break
    }

    case 'host-key': {
      const key = join(paths.root, 'etc/ssh/ssh_host_ed25519_key')
      const saved = join(paths.runDir, 'host-key.orig')
      await copyFile(saved, key)
      await copyFile(`${saved}.pub`, `${key}.pub`)
      await runInNode(labDir, node, ['/etc/init.d/ssh', 'restart'])
      break
    }

    case 'sshd-stopped': {
      await runInNode(labDir, node, ['/etc/init.d/ssh', 'start'])
      break
    }

    case 'sshd-hung': {
      try {
        if (fault.pid) process.kill(fault.pid, 'SIGCONT')
      } catch {
        // Gone with a reboot: nothing is stopped any more.
      }

      break
    }

    case 'network-drop': {
      await run(['ip', '-n', labNetns[node], 'route', 'flush', 'type', 'blackhole'], {okCodes: [1, 2]})
      break
    }

    case 'wrong-device': {
      const {decoy, storage} = await labDevices(labDir)
      const mounted = await runInNode(labDir, node, ['findmnt', '-n', '-o', 'SOURCE', '--mountpoint', labDataDir], {okCodes: [1]})
      if (mounted.code === 0 && mounted.stdout.trim() === decoy) await runInNode(labDir, node, ['umount', labDataDir])
      if (fault.had_storage && storage) await runInNode(labDir, node, ['mount', '-t', 'ext4', storage, labDataDir])
      break
    }

    case 'etc-full': {
      await runInNode(labDir, node, ['rm', '-f', '/etc/.ha-lab-fill', '/etc/.ha-lab-fill-tail'])
      break
    }
  }
}

// ---- Clock ----

/** Debian's libfaketime, as the node sees it (its /usr is the machine's). */
export const libfaketime = `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/faketime/libfaketime.so.1`

/** "+10s", "-2m", "+1h", "0": seconds, or undefined when it is not an offset. */
export function parseSkew(text: string): number | undefined {
  const m = /^([+-]?)(\d{1,6})(s|m|h)?$/.exec(text.trim())
  if (!m) return undefined
  const seconds = Number(m[2]) * ({h: 3600, m: 60, s: 1}[m[3] ?? 's'] ?? 1)
  return m[1] === '-' ? -seconds : seconds
}

/**
 * Shifts the wall clock of every login and cron job on `node` from now on: libfaketime preloaded
 * through the node's /etc/environment (read by pam_env for sshd sessions and cron jobs), with the
 * offset. Not /etc/ld.so.preload: sshd's seccomp-sandboxed pre-auth child dies (SIGSYS) under
 * libfaketime. Daemons already running, and static programs, keep the machine's clock. 0 resets.
 */
export async function skewClock(labDir: string, node: LabNode, seconds: number): Promise<void> {
  const file = join(nodePaths(labDir, node).root, 'etc/environment')
  const kept = (await readFile(file, 'utf8').catch(() => ''))
    .split('\n')
    .filter((line) => line !== '' && !/^(LD_PRELOAD|FAKETIME)=/.test(line))
  if (seconds !== 0) {
    const {existsSync} = await import('node:fs')
    if (!existsSync(libfaketime)) {
      throw new HaError(`lab: ${libfaketime} not found, so the clock of ${node} cannot be shifted`, {actions: ['apt-get install libfaketime', 'or run node scripts/ensure-deps.mjs as root']})
    }

    kept.push(`LD_PRELOAD=${libfaketime}`, `FAKETIME=${seconds >= 0 ? '+' : ''}${seconds}`)
  }

  await writeFile(file, kept.length > 0 ? `${kept.join('\n')}\n` : '')
}

export async function clockSkews(labDir: string): Promise<Record<LabNode, number>> {
  const result = {} as Record<LabNode, number>
  for (const node of labNodes) {
    const text = await readFile(join(nodePaths(labDir, node).root, 'etc/environment'), 'utf8').catch(() => '')
    result[node] = Number(/^FAKETIME=(\S+)$/m.exec(text)?.[1] ?? 0) || 0
  }

  return result
}
