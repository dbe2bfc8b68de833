import {existsSync} from 'node:fs'
import {readdir, readFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {fileURLToPath} from 'node:url'

import {HaError} from '../core/errors.js'
import {netnsPath, run} from './exec.js'
import {addressOnly, labInterface, labNetns, type LabNode} from './layout.js'

/**
 * Process, address and mount helpers the lab uses from the machine's side: finding the lab's
 * processes, killing them within a bound, reading a node's addresses and network config.
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
    const args = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0')
    if (!args.some((arg) => arg === labDir || arg.startsWith(`${labDir}/`))) continue
    const cmdline = args.join(' ')
    // Supervisors and each node's unshare; killing an unshare kills its node (--kill-child).
    if (/unshare|node-init|\/lab\/node-main\.[jt]s/.test(cmdline)) found.push(Number(entry))
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

