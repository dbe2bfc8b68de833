import {posix} from 'node:path'

import type {Config} from '../config/schema.js'
import {HaError} from '../core/errors.js'
import {describeArgv, type FileStat, type Host, HostCommandError, parseStatLine} from '../hosts/host.js'
import {arpingUnlessHeldScript, interpretArping, type WireResult} from '../net/arping.js'
import {type BootConfigDriver, type BootFile, bootFilesArgv, filesHold, type ListedFile, parseBootFiles, type ServiceIp} from '../drivers/boot-config/index.js'
import {type DeviceRule, type StorageBootEntry, storageDriver} from '../drivers/storage/index.js'

/**
 * What the steps look at before and after they act (pre- and postconditions). Observations are
 * not actions: they change nothing, so they are not in the plan.
 *
 * Each is read from the host once and remembered until anything acts (the runner calls
 * forgetObservations() after every action and before every step): a step's run does not read
 * again what its postcondition just read, and its postcondition after the run reuses what the
 * run read after its last action. Still every fact comes from the host, after the last change.
 * `prefetch` reads several in one exec (one round trip, src/hosts/batch.ts).
 */
interface Observation<T> {
  key: string
  argv(host: Host): string[]
  parse(host: Host, result: {code: number; stderr: Buffer; stdout: Buffer}): T
}

const remembered = new Map<Host, Map<string, Promise<unknown>>>()
/** Only inside a run whose every action forgets (the runner); elsewhere each look asks the host. */
let remembering = false

/**
 * Everything observed is stale: something acted, or a new step starts. An edit by ha itself
 * (path) changes that one file and nothing else. From the first call on, observations are
 * remembered, until stopRemembering().
 */
export function forgetObservations(path?: string): void {
  remembering = true
  if (path === undefined) remembered.clear()
  else {
    for (const m of remembered.values()) {
      m.delete(`file:${path}`)
      m.delete(`boot-files:${posix.dirname(path)}`)
    }
  }
}

export function stopRemembering(): void {
  remembering = false
  remembered.clear()
}

function memo(host: Host): Map<string, Promise<unknown>> {
  let m = remembered.get(host)
  if (!m) remembered.set(host, (m = new Map()))
  return m
}

function keep<T>(host: Host, key: string, value: Promise<T>): Promise<T> {
  if (!remembering) return value
  const m = memo(host)
  m.set(key, value)
  // A failed observation is not remembered: the next look asks the host again.
  value.catch(() => {
    if (m.get(key) === value) m.delete(key)
  })
  return value
}

async function observe<T>(host: Host, o: Observation<T>): Promise<T> {
  const known = memo(host).get(o.key) as Promise<T> | undefined
  if (known) return known
  return keep(host, o.key, host.run(o.argv(host)).then((r) => o.parse(host, r)))
}

/** Reads the observations not yet known in one exec on the host. */
export async function prefetch(host: Host, observations: Array<Observation<unknown>>): Promise<void> {
  if (!remembering) return
  const m = memo(host)
  const missing = observations.filter((o, i) => !m.has(o.key) && observations.findIndex((x) => x.key === o.key) === i)
  if (missing.length === 0) return
  if (missing.length === 1) {
    await observe(host, missing[0]).catch(() => {})
    return
  }

  const batch = host.probe(missing.map((o) => ({argv: o.argv(host), id: o.key})))
  for (const [i, o] of missing.entries()) keep(host, o.key, batch.then((b) => o.parse(host, b.results[i])))
  // Errors surface where the step asks for the fact, with its own message.
  await batch.catch(() => {})
}

function checked(host: Host, argv: string[], r: {code: number; stderr: Buffer}): void {
  if (r.code !== 0) throw new HostCommandError(host, argv, `exited with status ${r.code}`, r.stderr)
}

const ipArgv = ['ip', '-j', '-4', 'addr', 'show']
export const addressesSeen: Observation<string[]> = {
  argv: () => ipArgv,
  key: 'addresses',
  parse(host, r) {
    checked(host, ipArgv, r)
    const links = JSON.parse(r.stdout.toString('utf8')) as Array<{addr_info?: Array<{family?: string; local?: string}>}>
    return links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === 'inet' && a.local).map((a) => a.local as string))
  },
}

// The stat line (as SshHost.stat prints it, the link itself for a symlink), then a regular file's bytes.
const fileScript = 'if [ -e "$1" ] || [ -L "$1" ]; then stat -c "%f %s %u %g %Y" -- "$1" || exit 1; if [ -f "$1" ] && [ ! -L "$1" ]; then exec cat -- "$1"; fi; else echo missing; fi'

/** A host file: its stat (undefined when missing) and, for a regular file, its text. */
export function fileSeen(path: string): Observation<{stat?: FileStat; text: string}> {
  return {
    argv: (host) => ['sh', '-c', fileScript, 'ha-read', host.path(path)],
    key: `file:${path}`,
    parse(host, r) {
      if (r.code !== 0) throw new HostCommandError(host, ['cat', '--', host.path(path)], `exited with status ${r.code}`, r.stderr)
      const out = r.stdout
      const nl = out.indexOf(0x0a)
      const stat = parseStatLine(out.subarray(0, nl === -1 ? out.length : nl).toString('utf8'))
      return {stat, text: stat?.type === 'file' ? out.subarray(nl + 1).toString('utf8') : ''}
    },
  }
}

export function attachmentSeen(config: Config): Observation<boolean> {
  const storage = storageDriver(config)
  return {
    argv: (host) => storage.probeArgv(host.path(config.data_dir)),
    key: 'attachment',
    parse(host, r) {
      const a = storage.interpret(r.code, r.stdout.toString(), r.stderr.toString())
      if ('error' in a) throw new HaError(`${host.name}: cannot tell whether the storage is attached: ${a.error}`)
      return a.held
    },
  }
}

export function serviceSeen(config: Config): Observation<'running' | 'stopped'> {
  const argv = config.services.status!
  return {
    argv: () => argv,
    key: 'service',
    parse(host, r) {
      if (r.code === 0) return 'running'
      if (r.code >= 1 && r.code <= 3) return 'stopped'
      throw new HaError(`${host.name}: \`${describeArgv(argv)}\` exited ${r.code}, which is not an LSB status (0 running, 3 stopped)`, {
        actions: ['fix services.status in the config: it must follow LSB exit codes'],
      })
    },
  }
}

/** Whether anything (a file, a folder, a link) is at the path: fileSeen's stat, from the batch when prefetched. */
export async function somethingAt(host: Host, path: string): Promise<boolean> {
  return (await observe(host, fileSeen(path))).stat !== undefined
}

/** The stat of a file as last observed since anything acted (no round trip), or 'unknown'. */
export async function observedStat(host: Host, path: string): Promise<FileStat | undefined | 'unknown'> {
  const known = memo(host).get(`file:${path}`) as Promise<{stat?: FileStat}> | undefined
  if (!known) return 'unknown'
  try {
    return (await known).stat
  } catch {
    return 'unknown'
  }
}

/** The node's IPv4 addresses, from `ip -j addr` (the JSON form, so nothing is guessed from columns). */
export async function heldAddresses(host: Host): Promise<string[]> {
  return observe(host, addressesSeen)
}

export const bareAddress = (cidr: string) => cidr.split('/')[0]

/** Gratuitous ARP for a service IP, as ifup does: neighbours drop the old holder's MAC at once. */
export const announceArgv = (ip: {address: string; interface: string}) => ['arping', '-q', '-U', '-c', '1', '-w', '1', '-I', ip.interface, '-s', bareAddress(ip.address), bareAddress(ip.address)]

export async function holdsAddress(host: Host, cidr: string): Promise<boolean> {
  return (await heldAddresses(host)).includes(bareAddress(cidr))
}

/** Reads a host file, '' when it does not exist. */
export async function readText(host: Host, path: string): Promise<string> {
  const {stat, text} = await observe(host, fileSeen(path))
  if (!stat) return ''
  if (stat.type !== 'file') throw new HaError(`${host.name}: ${path} is a ${stat.type}, not a file; ha edits only regular files`, {actions: [`look at ${path} on ${host.name}`]})
  return text
}

/** Every file of the boot configuration's directory on the host, with its stat (one exec). */
export function bootFilesSeen(boot: BootConfigDriver): Observation<ListedFile[]> {
  return {
    argv: (host) => bootFilesArgv(boot, host.path(boot.dir)),
    key: `boot-files:${boot.dir}`,
    parse(host, r) {
      checked(host, bootFilesArgv(boot, host.path(boot.dir)), r)
      return parseBootFiles(boot, r.stdout.toString('utf8'))
    },
  }
}

/**
 * The host's boot configuration files as the driver reads them. Each one's stat is remembered as
 * if read alone, so the runner's write of an edit keeps its mode and owner without asking again.
 * A file ha cannot read (a symlink, not a regular file) may configure anything: refused.
 */
export async function bootFiles(host: Host, boot: BootConfigDriver): Promise<BootFile[]> {
  const listed = await observe(host, bootFilesSeen(boot))
  const bad = listed.find((f) => f.problem)
  if (bad) {
    throw new HaError(`${host.name}: ${bad.path} ${bad.problem}; ha cannot tell which addresses it brings up at boot, and changed nothing`, {
      actions: [`make ${bad.path} on ${host.name} a regular file (or move it out of ${boot.dir}), then run ha again`],
    })
  }

  for (const f of listed) keep(host, `file:${f.path}`, Promise.resolve({stat: f.stat, text: f.text}))
  return listed.map(({path, text}) => ({path, text}))
}

/** May the host's network boot configuration bring the service IP up (surely: does it)? */
export async function bootConfigHolds(host: Host, boot: BootConfigDriver, ip: ServiceIp, surely = false): Promise<boolean> {
  return filesHold(boot, await bootFiles(host, boot), ip.address, surely)
}

/** Does the host's boot configuration attach the storage (its fstab line)? */
export async function storageAtBoot(host: Host, entry: StorageBootEntry): Promise<boolean> {
  return entry.holds(await readText(host, entry.path))
}

/** Is the shared storage attached to this host (data_dir mounted, or the pool imported)? */
export async function storageAttached(host: Host, config: Config): Promise<boolean> {
  return observe(host, attachmentSeen(config))
}

/** Where the storage names a device (mount's storage.device): is what is attached at data_dir that device? */
export async function storageIsTheDevice(host: Host, config: Config): Promise<{ok: boolean; source: string}> {
  const rule = storageDriver(config).device
  if (!rule) return {ok: true, source: ''}
  return observe(host, deviceSeen(config, rule))
}

export function deviceSeen(config: Config, rule: DeviceRule): Observation<{ok: boolean; source: string}> {
  const argv = (host: Host) => rule.probeArgv(host.path(config.data_dir))
  return {
    argv,
    key: 'device',
    parse(host, r) {
      checked(host, argv(host), r)
      const [want, have] = r.stdout.toString().split('\n')
      return {ok: want !== '' && want === have, source: have}
    },
  }
}

/** LSB: 0 running, 3 stopped (1 and 2: dead with a pid or lock file left, still not running). */
export async function serviceState(host: Host, config: Config): Promise<'running' | 'stopped'> {
  return observe(host, serviceSeen(config))
}

/** arping -D for one service IP from this host (skipped where the host holds it itself). */
export function arpingArgvFor(cidr: string, iface: string): string[] {
  return ['sh', '-c', arpingUnlessHeldScript, 'ha-arping', bareAddress(cidr), iface]
}

export async function wire(host: Host, cidr: string, iface: string): Promise<WireResult> {
  const r = await host.run(arpingArgvFor(cidr, iface), {timeoutMs: 15_000})
  return interpretArping(r.code, r.stdout.toString(), r.stderr.toString())
}

/**
 * arping -D for one service IP from this host even when it holds the address itself: a host does
 * not answer its own probe, so any answer is another host's (take-ips proves an address free with
 * this before the node takes, or keeps, it).
 */
export async function wireFrom(host: Host, cidr: string, iface: string): Promise<WireResult> {
  const r = await host.run(['arping', '-D', '-c', '2', '-w', '3', '-I', iface, bareAddress(cidr)], {timeoutMs: 15_000})
  return interpretArping(r.code, r.stdout.toString(), r.stderr.toString())
}

export async function bootId(host: Host): Promise<string> {
  return (await host.readFile('/proc/sys/kernel/random/boot_id')).toString().trim()
}
