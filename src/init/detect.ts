import {execFile} from 'node:child_process'
import {access, readFile, stat} from 'node:fs/promises'
import {hostname} from 'node:os'
import {promisify} from 'node:util'

import {type BootConfigKind, bootConfigDrivers, type BootFile, bootFilesArgv, parseBootFiles} from '../drivers/boot-config/index.js'

/**
 * What `ha init` can see on this machine and proposes as answers: each is only a default, shown
 * in the question and replaced by the matching flag. Nothing here is trusted for anything but
 * a proposal; the answers are validated by the config schema like a hand-written file.
 */
export interface Detected {
  /** IPv4 addresses on interfaces that are up, global scope, with their interface. */
  addresses: Array<{address: string; interface: string; prefix: number}>
  /** Each boot configuration system's files on this machine (src/drivers/boot-config), to tell which one it uses. */
  boot_files: Record<BootConfigKind, BootFile[]>
  /** Existing directories among the usual data directory places, mounted ones first. */
  data_dirs: string[]
  hostname: string
  identity_file?: string
  known_hosts: string
  /** The filesystem mounted at a path, from /proc/self/mounts. */
  mounts: Array<{device: string; fstype: string; target: string}>
  /** An init script that drives the product's services, when one is installed. */
  services_script?: string
  version_file?: string
}

/** Where the product keeps its data and version (seed 001: Ops Center 2.1). */
const dataDirCandidates = ['/var/opt/sun/xvm']
const versionFileCandidates = ['/n1gc-setup/.version.properties', '/var/opt/sun/xvm/.version.properties']
const servicesScriptCandidates = ['/etc/init.d/xvm']
const keyNames = ['ha_ed25519', 'id_ed25519', 'id_ecdsa', 'id_rsa']

export async function detect(home = process.env.HOME || '/root'): Promise<Detected> {
  const [addresses, mounts, boot_files] = await Promise.all([ipv4Addresses(), readMounts(), bootFilesOf((argv) => promisify(execFile)(argv[0], argv.slice(1), {maxBuffer: 64 * 1024 * 1024, timeout: 10_000}).then((r) => r.stdout))])
  const mounted = new Set(mounts.map((m) => m.target))
  const dirs = await existing(dataDirCandidates, (s) => s.isDirectory())
  const data_dirs = [...dirs.filter((d) => mounted.has(d)), ...dirs.filter((d) => !mounted.has(d))]
  const keys = await existing(keyNames.map((k) => `${home}/.ssh/${k}`), (s) => s.isFile())
  const [version_file] = await existing(versionFileCandidates, (s) => s.isFile())
  const [services_script] = await existing(servicesScriptCandidates, (s) => s.isFile())
  return {
    addresses,
    boot_files,
    data_dirs,
    hostname: hostname(),
    identity_file: keys[0],
    known_hosts: `${home}/.ssh/known_hosts`,
    mounts,
    services_script,
    version_file,
  }
}

/**
 * Every boot configuration system's files, listed by the script the failover reads them with,
 * run by `run` (here, or on the peer over ssh); a listing that fails is an empty one (nothing to
 * propose from it).
 */
export async function bootFilesOf(run: (argv: string[]) => Promise<string>, root = '/'): Promise<Record<BootConfigKind, BootFile[]>> {
  const found = {} as Record<BootConfigKind, BootFile[]>
  for (const driver of Object.values(bootConfigDrivers)) {
    const out = await run(bootFilesArgv(driver, `${root === '/' ? '' : root}${driver.dir}`)).catch(() => '')
    found[driver.name] = parseBootFiles(driver, out).filter((f) => !f.problem).map(({path, text}) => ({path, text}))
  }

  return found
}

/** `ip -j -4 addr show up scope global`: the addresses this node answers on, loopback aside. */
async function ipv4Addresses(): Promise<Detected['addresses']> {
  try {
    const {stdout} = await promisify(execFile)('ip', ['-j', '-4', 'addr', 'show', 'up', 'scope', 'global'], {timeout: 10_000})
    const links = JSON.parse(stdout) as Array<{addr_info?: Array<{family?: string; local?: string; prefixlen?: number}>; ifname?: string}>
    return links.flatMap((l) =>
      (l.addr_info ?? [])
        .filter((a) => a.family === 'inet' && a.local && typeof a.prefixlen === 'number' && l.ifname)
        .map((a) => ({address: a.local!, interface: l.ifname!, prefix: a.prefixlen!})),
    )
  } catch {
    // No iproute2, or output it cannot read: nothing to propose, the questions still work.
    return []
  }
}

async function readMounts(): Promise<Detected['mounts']> {
  const text = await readFile('/proc/self/mounts', 'utf8').catch(() => '')
  // Fields are octal-escaped (a space is \040).
  const unescape = (s: string) => s.replaceAll(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)))
  return text
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f.length >= 3)
    .map(([device, target, fstype]) => ({device: unescape(device), fstype, target: unescape(target)}))
}

async function existing(paths: string[], ok: (s: Awaited<ReturnType<typeof stat>>) => boolean): Promise<string[]> {
  const found = await Promise.all(
    paths.map(async (p) => {
      const s = await stat(p).catch(() => undefined)
      return s && ok(s) && (await access(p).then(() => true, () => false)) ? p : undefined
    }),
  )
  return found.filter((p): p is string => p !== undefined)
}

/** The mount whose target is exactly `dir` (the last one wins, as the kernel shows it). */
export function mountAt(detected: Detected, dir: string): Detected['mounts'][number] | undefined {
  return [...detected.mounts].reverse().find((m) => m.target === dir)
}
