import {spawn} from 'node:child_process'
import {randomUUID} from 'node:crypto'
import {existsSync, openSync, closeSync} from 'node:fs'
import {mkdir, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {fileURLToPath} from 'node:url'

import {HaError} from '../errors.js'
import {findBinary, netnsPath, run} from './exec.js'
import {
  addressOnly,
  labAddresses,
  labInterface,
  labNetns,
  type LabNode,
  labPaths,
  labServiceIp,
  labServicePort,
  nodePaths,
} from './layout.js'

/**
 * One lab controller's life cycle: boot (addresses, new boot id, hostname, sshd, service) and
 * shutdown (every process in its namespace dies, runtime addresses go). A reboot is the two with
 * a pause between, which is what a failover's "reboot the secondary, wait for it" must survive.
 */

const here = dirname(fileURLToPath(import.meta.url))
const runningFromSource = fileURLToPath(import.meta.url).endsWith('.ts')

/** How to start one of the lab's own Node entry points, from dist or (under tsx) from src. */
export function nodeEntryArgv(name: 'node-main' | 'service'): string[] {
  if (!runningFromSource) return [process.execPath, join(here, `${name}.js`)]
  return [process.execPath, '--import', import.meta.resolve('tsx'), join(here, `${name}.ts`)]
}

export async function netnsExists(netns: string): Promise<boolean> {
  return existsSync(netnsPath(netns))
}

/** A process that exists and is not a zombie. */
export async function pidAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  if (!stat) return false
  const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]
  return state !== 'Z' && state !== 'X'
}

/** Parent pid and session id, from /proc/PID/stat. */
async function parentAndSession(pid: number): Promise<{ppid: number; sid: number} | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ppid = Number(fields[1])
  const sid = Number(fields[3])
  return Number.isInteger(ppid) && Number.isInteger(sid) ? {ppid, sid} : undefined
}

export async function readPid(file: string): Promise<number | undefined> {
  const value = Number((await readFile(file, 'utf8').catch(() => '')).trim())
  return Number.isInteger(value) && value > 0 ? value : undefined
}

/** Is something in `pid`'s network namespace listening on TCP `port`? (/proc/PID/net is per namespace.) */
export async function listening(pid: number, port: number): Promise<boolean> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '')
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/)
      if (fields[1]?.endsWith(`:${hex}`) && fields[3] === '0A') return true
    }
  }

  return false
}

/**
 * The lab's own processes found by their command line: a crash can leave an sshd or service in a
 * namespace that was already deleted, where `ip netns pids` no longer sees it.
 */
export async function labProcesses(labDir: string): Promise<number[]> {
  const found: number[] = []
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' ')
    if (!cmdline.includes(`${labDir}/`)) continue
    if (/sshd|\/lab\/(service|node-main)\.[jt]s/.test(cmdline)) found.push(Number(entry))
  }

  return found
}

export async function netnsPids(netns: string): Promise<number[]> {
  if (!(await netnsExists(netns))) return []
  const {stdout} = await run(['ip', 'netns', 'pids', netns])
  return stdout.split(/\s+/).filter(Boolean).map(Number)
}

/**
 * This process and the helpers it started in its own session (tsx's esbuild): a reboot running
 * inside the node must not kill itself. The node's sshd and service are started in sessions of
 * their own (setsid), so they are never spared even when this process is their parent.
 */
async function selfAndHelpers(): Promise<Set<number>> {
  const keep = new Set([process.pid])
  const mine = await parentAndSession(process.pid)
  const entries = await readdir('/proc').catch(() => [] as string[])
  const parents = new Map<number, number>()
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const info = await parentAndSession(Number(entry))
    if (info && mine && info.sid === mine.sid) parents.set(Number(entry), info.ppid)
  }

  let grew = true
  while (grew) {
    grew = false
    for (const [pid, ppid] of parents) {
      if (keep.has(ppid) && !keep.has(pid)) {
        keep.add(pid)
        grew = true
      }
    }
  }

  return keep
}

/** SIGTERM, then SIGKILL whatever is left; bounded to a few seconds in total. */
export async function killAll(pids: number[], graceMs = 1500): Promise<number> {
  const keep = await selfAndHelpers()
  const targets = [...new Set(pids)].filter((pid) => !keep.has(pid))
  const signal = (sig: NodeJS.Signals) => {
    for (const pid of targets) {
      try {
        process.kill(pid, sig)
      } catch {
        // Already gone.
      }
    }
  }

  const waitGone = async (ms: number) => {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      const alive = await Promise.all(targets.map((pid) => pidAlive(pid)))
      if (!alive.includes(true)) return true
      await sleep(50)
    }

    return false
  }

  if (targets.length === 0) return 0
  signal('SIGTERM')
  if (!(await waitGone(graceMs))) {
    signal('SIGKILL')
    if (!(await waitGone(2000))) {
      const left = []
      for (const pid of targets) if (await pidAlive(pid)) left.push(pid)
      throw new HaError(`lab: processes ${left.join(', ')} survived SIGKILL`, {actions: ['look at them with ps -o pid,stat,args -p ...']})
    }
  }

  return targets.length
}

/** Addresses configured on the node's eth0, as CIDR strings. */
export async function nodeAddresses(node: LabNode): Promise<string[]> {
  const netns = labNetns[node]
  if (!(await netnsExists(netns))) return []
  const {stdout} = await run(['ip', '-n', netns, '-o', '-4', 'addr', 'show', 'dev', labInterface])
  return [...stdout.matchAll(/\sinet\s+(\S+)/g)].map((m) => m[1])
}

export async function isMounted(path: string): Promise<boolean> {
  return (await mountPoints()).includes(path)
}

/** Mount points of this mount namespace (octal escapes in /proc/self/mountinfo decoded). */
export async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8')
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ')[4].replaceAll(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8))))
}

function inLabRange(cidr: string): boolean {
  const [a, b] = addressOnly(cidr).split('.').map(Number)
  return a === 198 && (b === 18 || b === 19)
}

/**
 * The identity addresses a boot configures, from <root>/etc/network/interfaces (ifupdown's
 * `iface eth0[:N] inet static` + `address`). Anything outside 198.18.0.0/15 is ignored: the lab
 * must never put a real address on any interface, whatever a restored file says.
 */
export async function persistentAddresses(root: string): Promise<string[]> {
  const files = [join(root, 'etc/network/interfaces')]
  const extra = await readdir(join(root, 'etc/network/interfaces.d')).catch(() => [] as string[])
  files.push(...extra.sort().map((name) => join(root, 'etc/network/interfaces.d', name)))
  const found: string[] = []
  for (const file of files) {
    const text = await readFile(file, 'utf8').catch(() => '')
    let inStanza = false
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*/, '').trim()
      const words = line.split(/\s+/)
      if (['iface', 'auto', 'allow-hotplug', 'mapping', 'source'].includes(words[0])) {
        inStanza = words[0] === 'iface' && (words[1] === labInterface || words[1]?.startsWith(`${labInterface}:`)) && words[3] === 'static'
        continue
      }

      if (inStanza && words[0] === 'address' && words[1]) {
        const cidr = words[1].includes('/') ? words[1] : `${words[1]}/24`
        if (inLabRange(cidr)) found.push(cidr)
      }
    }
  }

  return found
}

function sshdConfig(labDir: string, node: LabNode): string {
  const paths = nodePaths(labDir, node)
  const lab = labPaths(labDir)
  return [
    `# ha lab: the sshd of ${node}, started inside ${labNetns[node]} by the lab's boot.`,
    // Every address of the namespace, like a real host's default: whoever holds the service IP
    // also answers ssh on it. The namespace only ever has 198.18.0.0/15 addresses.
    'ListenAddress 0.0.0.0:22',
    // The host key lives in the node's root, so a takeover that installs the primary's key
    // changes what this node presents after its next boot.
    `HostKey ${join(paths.root, 'etc/ssh/ssh_host_ed25519_key')}`,
    `PidFile ${paths.sshdPid}`,
    `AuthorizedKeysFile ${lab.adminKey}.pub`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The lab's files sit under /var/lib with root ownership but not sshd's expected modes.
    'StrictModes no',
    'UseDNS no',
    'PrintMotd no',
    'PrintLastLog no',
    'Subsystem sftp internal-sftp',
    '',
  ].join('\n')
}

/**
 * Starts argv detached inside the node's network namespace and in a UTS namespace of its own
 * whose hostname is `hostname`, so `hostname` over ssh reports this node's name. nsenter --net
 * (not `ip netns exec`) keeps the machine's mount namespace: a mount made over ssh on the node
 * is then the same mount the lab and the tests see, and `down` can undo it.
 */
function spawnInNode(node: LabNode, hostname: string, argv: string[], logFile: string): number {
  const nsenter = findBinary('nsenter') ?? 'nsenter'
  const unshare = findBinary('unshare') ?? 'unshare'
  const out = openSync(logFile, 'a')
  try {
    const child = spawn(
      nsenter,
      [
        `--net=${netnsPath(labNetns[node])}`,
        '--',
        unshare,
        '--uts',
        '--',
        '/bin/sh',
        '-c',
        'printf %s "$1" > /proc/sys/kernel/hostname && shift && exec "$@"',
        'sh',
        hostname,
        ...argv,
      ],
      {detached: true, stdio: ['ignore', out, out]},
    )
    child.on('error', () => {})
    child.unref()
    if (!child.pid) throw new HaError(`lab: could not start ${argv[0]} on ${node} (spawn failed)`)
    return child.pid
  } finally {
    closeSync(out)
  }
}

async function tail(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '')
  return text.trim().split('\n').slice(-5).join(' / ')
}

async function waitListening(node: LabNode, what: string, pid: number, port: number, log: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (!(await pidAlive(pid))) {
      throw new HaError(`lab: ${what} on ${node} (namespace ${labNetns[node]}) exited at start: ${await tail(log)}`, {
        actions: [`read ${log}`],
      })
    }

    if (await listening(pid, port)) return
    await sleep(50)
  }

  throw new HaError(`lab: ${what} on ${node} (namespace ${labNetns[node]}) not listening on port ${port} after ${timeoutMs / 1000}s`, {
    actions: [`read ${log}`],
  })
}

async function nodeHostname(root: string, node: LabNode): Promise<string> {
  const name = (await readFile(join(root, 'etc/hostname'), 'utf8').catch(() => '')).trim()
  // A restored or damaged hostname file must not become shell input or an invalid name.
  return /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(name) ? name : `lab-${node}`
}

export async function startSshd(labDir: string, node: LabNode): Promise<number> {
  const paths = nodePaths(labDir, node)
  await mkdir(paths.runDir, {recursive: true})
  await mkdir(paths.logDir, {recursive: true})
  // sshd's privilege-separation directory is compiled in; Debian creates it only via systemd.
  await mkdir('/run/sshd', {mode: 0o755, recursive: true})
  await writeFile(paths.sshdConfig, sshdConfig(labDir, node))
  const hostname = await nodeHostname(paths.root, node)
  const pid = spawnInNode(node, hostname, ['/usr/sbin/sshd', '-f', paths.sshdConfig, '-D', '-E', paths.sshdLog], paths.sshdLog)
  // sshd writes the same file, but only once it listens; written here, status never misses it.
  await writeFile(paths.sshdPid, `${pid}\n`)
  await waitListening(node, 'sshd', pid, 22, paths.sshdLog, 5000)
  return pid
}

export async function stopSshd(labDir: string, node: LabNode): Promise<void> {
  const pid = await readPid(nodePaths(labDir, node).sshdPid)
  if (pid && (await belongsToLab(pid, labDir))) await killAll([pid])
}

/** Guards against killing a recycled pid: the lab's processes carry the lab dir in their argv. */
async function belongsToLab(pid: number, labDir: string): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
  return cmdline.includes(labDir)
}

/** The service runs only where the controller could really serve: it holds the IP and the data. */
export async function startServiceIfReady(labDir: string, node: LabNode): Promise<number | undefined> {
  const paths = nodePaths(labDir, node)
  const holds = (await nodeAddresses(node)).includes(labServiceIp)
  if (!holds || !(await isMounted(paths.dataDir))) return undefined
  const hostname = await nodeHostname(paths.root, node)
  const argv = [...nodeEntryArgv('service'), '--data-dir', paths.dataDir, '--listen', addressOnly(labServiceIp), '--port', String(labServicePort)]
  const pid = spawnInNode(node, hostname, argv, paths.serviceLog)
  await writeFile(paths.servicePid, `${pid}\n`)
  await waitListening(node, 'the service', pid, labServicePort, paths.serviceLog, 10_000)
  return pid
}

/**
 * Like ifup on a real network: a gratuitous ARP so neighbours drop the MAC of the address's
 * previous holder. Not waited for — iputils arping lingers a full second after its one packet —
 * and it ends by itself (-c 1 -w 1).
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

export async function serviceRunning(labDir: string, node: LabNode): Promise<number | undefined> {
  const pid = await readPid(nodePaths(labDir, node).servicePid)
  return pid && (await pidAlive(pid)) && (await belongsToLab(pid, labDir)) ? pid : undefined
}

export async function stopService(labDir: string, node: LabNode): Promise<boolean> {
  const pid = await serviceRunning(labDir, node)
  if (pid) await killAll([pid])
  await rm(nodePaths(labDir, node).servicePid, {force: true})
  return pid !== undefined
}

export async function bootNode(labDir: string, node: LabNode): Promise<{boot_id: string}> {
  const netns = labNetns[node]
  const paths = nodePaths(labDir, node)
  if (!(await netnsExists(netns))) {
    throw new HaError(`lab: namespace ${netns} does not exist; the lab is not up`, {actions: ['run ha lab up']})
  }

  await run(['ip', '-n', netns, 'link', 'set', 'lo', 'up'])
  await run(['ip', '-n', netns, 'link', 'set', labInterface, 'up'])
  const wanted = [labAddresses[node], ...(await persistentAddresses(paths.root))]
  for (const cidr of [...new Set(wanted)]) {
    await run(['ip', '-n', netns, 'addr', 'replace', cidr, 'dev', labInterface])
    if (cidr !== labAddresses[node]) announce(node, addressOnly(cidr))
  }

  const bootId = randomUUID()
  const bootIdFile = join(paths.root, 'proc/sys/kernel/random/boot_id')
  await mkdir(dirname(bootIdFile), {recursive: true})
  await writeFile(bootIdFile, `${bootId}\n`)
  await startSshd(labDir, node)
  await startServiceIfReady(labDir, node)
  return {boot_id: bootId}
}

/** Everything running in the node dies and its addresses go (a real reboot keeps no runtime state). */
export async function shutdownNode(labDir: string, node: LabNode): Promise<number> {
  const netns = labNetns[node]
  const paths = nodePaths(labDir, node)
  const pids = await netnsPids(netns)
  for (const file of [paths.sshdPid, paths.servicePid]) {
    const pid = await readPid(file)
    if (pid && (await belongsToLab(pid, labDir))) pids.push(pid)
  }

  const killed = await killAll(pids)
  if (await netnsExists(netns)) {
    await run(['ip', '-n', netns, 'addr', 'flush', 'dev', labInterface], {okCodes: [1]})
  }

  await rm(paths.sshdPid, {force: true})
  await rm(paths.servicePid, {force: true})
  return killed
}

export async function rebootNode(labDir: string, node: LabNode, downSeconds: number): Promise<{boot_id: string}> {
  if (!(await netnsExists(labNetns[node]))) {
    throw new HaError(`lab: cannot reboot ${node}: namespace ${labNetns[node]} does not exist; the lab is not up`, {actions: ['run ha lab up']})
  }

  await shutdownNode(labDir, node)
  await sleep(Math.max(0, downSeconds) * 1000)
  return bootNode(labDir, node)
}
