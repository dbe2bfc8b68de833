import type {Config} from '../config/schema.js'
import {HaError} from '../errors.js'
import {describeArgv, type Host} from '../hosts/host.js'
import {arpingUnlessHeldScript, interpretArping, type WireResult} from '../net/arping.js'
import {attachmentProbeArgv, deviceProbeArgv, interpretAttachment} from '../storage/attachment.js'
import {bootHolds, fstabMounts, fstabPath, interfacesPath} from '../failover/boot-config.js'

/**
 * What the steps look at before and after they act (pre- and postconditions). Observations are
 * not actions: they change nothing, so they are not in the plan.
 */

/** The node's IPv4 addresses, from `ip -j addr` (the JSON form, so nothing is guessed from columns). */
export async function heldAddresses(host: Host): Promise<string[]> {
  const r = await host.runChecked(['ip', '-j', '-4', 'addr', 'show'])
  const links = JSON.parse(r.stdout.toString('utf8')) as Array<{addr_info?: Array<{family?: string; local?: string}>}>
  return links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === 'inet' && a.local).map((a) => a.local as string))
}

export const bareAddress = (cidr: string) => cidr.split('/')[0]

export async function holdsAddress(host: Host, cidr: string): Promise<boolean> {
  return (await heldAddresses(host)).includes(bareAddress(cidr))
}

/** Reads a host file, '' when it does not exist. */
export async function readText(host: Host, path: string): Promise<string> {
  const st = await host.stat(path)
  if (!st) return ''
  if (st.type !== 'file') throw new HaError(`${host.name}: ${path} is a ${st.type}, not a file; ha edits only regular files`, {actions: [`look at ${path} on ${host.name}`]})
  return (await host.readFile(path)).toString('utf8')
}

export async function bootConfigHolds(host: Host, cidr: string): Promise<boolean> {
  return bootHolds(await readText(host, interfacesPath), cidr)
}

export async function fstabHasStorage(host: Host, config: Config): Promise<boolean> {
  return fstabMounts(await readText(host, fstabPath), config.data_dir)
}

/** Is the shared storage attached to this host (data_dir mounted, or the pool imported)? */
export async function storageAttached(host: Host, config: Config): Promise<boolean> {
  const r = await host.run(attachmentProbeArgv(config, host.path(config.data_dir)))
  const a = interpretAttachment(config, r.code, r.stdout.toString(), r.stderr.toString())
  if ('error' in a) throw new HaError(`${host.name}: cannot tell whether the storage is attached: ${a.error}`)
  return a.held
}

/** For kind mount with storage.device: is what is mounted at data_dir that device? */
export async function storageIsTheDevice(host: Host, config: Config): Promise<{ok: boolean; source: string}> {
  if (config.storage.kind !== 'mount' || !config.storage.device) return {ok: true, source: ''}
  const r = await host.runChecked(deviceProbeArgv(config.storage.device, host.path(config.data_dir)))
  const [want, have] = r.stdout.toString().split('\n')
  return {ok: want !== '' && want === have, source: have}
}

/** LSB: 0 running, 3 stopped (1 and 2: dead with a pid or lock file left, still not running). */
export async function serviceState(host: Host, config: Config): Promise<'running' | 'stopped'> {
  const argv = config.services.status!
  const r = await host.run(argv)
  if (r.code === 0) return 'running'
  if (r.code >= 1 && r.code <= 3) return 'stopped'
  throw new HaError(`${host.name}: \`${describeArgv(argv)}\` exited ${r.code}, which is not an LSB status (0 running, 3 stopped)`, {
    actions: ['fix services.status in the config: it must follow LSB exit codes'],
  })
}

/** arping -D for one service IP from this host (skipped where the host holds it itself). */
export function arpingArgvFor(cidr: string, iface: string): string[] {
  return ['sh', '-c', arpingUnlessHeldScript, 'ha-arping', bareAddress(cidr), iface]
}

export async function wire(host: Host, cidr: string, iface: string): Promise<WireResult> {
  const r = await host.run(arpingArgvFor(cidr, iface), {timeoutMs: 15_000})
  return interpretArping(r.code, r.stdout.toString(), r.stderr.toString())
}

export async function bootId(host: Host): Promise<string> {
  return (await host.readFile('/proc/sys/kernel/random/boot_id')).toString().trim()
}
