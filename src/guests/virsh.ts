import type {Config, GuestConfig, NodeName} from '../config/schema.js'

/**
 * The libvirt driver's words: the exact virsh argvs ha runs on a node (so `ha failover --plan`
 * lists them) and readers of what virsh prints. Nothing here runs anything; guest-view.ts reads a
 * node through its Host, the steps act through ctx.act.
 */

export const defaultLibvirtUri = 'qemu:///system'

/** What virsh on the node itself connects to. */
export function libvirtUriOf(config: Pick<Config, 'nodes'>, node: NodeName): string {
  return config.nodes[node].libvirt?.uri ?? defaultLibvirtUri
}

/** How the other node's libvirtd reaches this node's as a live migration's destination; undefined: none configured. */
export function migrationUriOf(config: Pick<Config, 'nodes'>, node: NodeName): string | undefined {
  return config.nodes[node].libvirt?.migration_uri
}

const virsh = (uri: string, ...args: string[]) => ['virsh', '-c', uri, ...args]

/** Reads (observations, not in the plan). */
export const virshRead = {
  dominfo: (uri: string, name: string) => virsh(uri, 'dominfo', name),
  domstate: (uri: string, name: string) => virsh(uri, 'domstate', name),
  dumpxml: (uri: string, name: string) => virsh(uri, 'dumpxml', '--inactive', name),
  /** The job running now (a migration in flight): "Job type: Unbounded"; "None" when idle. */
  jobInfo: (uri: string, name: string) => virsh(uri, 'domjobinfo', name),
  /** The last completed job: a migration's time and downtime (kept for the admin's own look after ha's). */
  jobInfoCompleted: (uri: string, name: string) => virsh(uri, 'domjobinfo', '--completed', '--keep-completed', name),
  /** Free memory per NUMA cell and its total, as libvirt reports it. */
  freecell: (uri: string) => virsh(uri, 'freecell', '--all'),
  /** Free huge pages per cell and size. */
  freepages: (uri: string) => virsh(uri, 'freepages', '--all'),
  list: (uri: string) => virsh(uri, 'list', '--all'),
}

/** Actions (planned, run through ctx.act). */
export const virshAct = {
  autostartOff: (uri: string, name: string) => virsh(uri, 'autostart', '--disable', name),
  /** From a file on the node (the XML dumped on the source, kept in the journal, written there). */
  define: (uri: string, file: string) => virsh(uri, 'define', file),
  destroy: (uri: string, name: string) => virsh(uri, 'destroy', name),
  /**
   * Live, the definition made persistent on the target; the source keeps its (now shut off)
   * definition, as every node of the pair has each guest defined. --copy-storage-all when the
   * disks are copied, not shared.
   */
  migrate: (uri: string, guest: Pick<GuestConfig, 'disks' | 'name'>, destination: string) => virsh(uri, 'migrate', '--live', '--persistent', ...(guest.disks === 'copy' ? ['--copy-storage-all'] : []), guest.name, destination),
  shutdown: (uri: string, guest: Pick<GuestConfig, 'name' | 'shutdown'>) => virsh(uri, 'shutdown', '--mode', guest.shutdown.mode, guest.name),
  start: (uri: string, name: string) => virsh(uri, 'start', name),
}

/** A domain's state as virsh prints it: running, idle, paused, in shutdown, shut off, crashed, pmsuspended. */
export type DomainState = string

export interface ListedDomain {
  id: null | number
  name: string
  state: DomainState
}

/** `virsh list --all`: " Id   Name   State", a rule, then one line per domain ("-" for the id of one not running). */
export function parseDomainList(text: string): ListedDomain[] {
  return text
    .split('\n')
    .map((line) => line.trim().match(/^(\d+|-)\s+(\S+)\s+(\S.*)$/))
    .filter((m): m is RegExpMatchArray => m !== null)
    .map((m) => ({id: m[1] === '-' ? null : Number(m[1]), name: m[2], state: m[3].trim()}))
}

/** "Key:   value" lines (dominfo, domjobinfo) into a map. */
function fields(text: string): Map<string, string> {
  const map = new Map<string, string>()
  for (const line of text.split('\n')) {
    const m = /^([^:]+):\s*(.*)$/.exec(line.trim())
    if (m) map.set(m[1].trim(), m[2].trim())
  }

  return map
}

function kib(value: string | undefined): number | undefined {
  const m = /^(\d+)\s*KiB$/.exec(value ?? '')
  return m ? Number(m[1]) : undefined
}

export interface DomainInfo {
  state: DomainState
  maxMemoryKiB?: number
  persistent: boolean
  autostart: boolean
}

export function parseDomInfo(text: string): DomainInfo {
  const f = fields(text)
  return {autostart: f.get('Autostart') === 'enable', maxMemoryKiB: kib(f.get('Max memory')), persistent: f.get('Persistent') === 'yes', state: f.get('State') ?? 'unknown'}
}

export interface JobInfo {
  /** None (idle), Unbounded (running now), Completed, Failed, Cancelled. */
  type: string
  operation?: string
  elapsedMs?: number
  downtimeMs?: number
}

export function parseJobInfo(text: string): JobInfo {
  const f = fields(text)
  const ms = (key: string) => {
    const m = /^(\d+)\s*ms$/.exec(f.get(key) ?? '')
    return m ? Number(m[1]) : undefined
  }

  return {downtimeMs: ms('Total downtime'), elapsedMs: ms('Time elapsed'), operation: f.get('Operation'), type: f.get('Job type') ?? 'None'}
}

/** `virsh freecell --all`: one line per cell, then "Total: N KiB". */
export function parseFreecell(text: string): number | undefined {
  const m = /^\s*Total:\s*(\d+)\s*KiB\s*$/m.exec(text)
  return m ? Number(m[1]) : undefined
}

/**
 * `virsh freepages --all`: per cell "2048KiB: N"; the free 2 MiB huge pages of all cells, in KiB.
 * Undefined when no cell lists that page size (not known: the host has none of that size, or
 * virsh printed something else), which is not the same as none free.
 */
export function parseFreeHugepages(text: string, pageKiB = 2048): number | undefined {
  let total: number | undefined
  for (const m of text.matchAll(/^\s*(\d+)KiB:\s*(\d+)\s*$/gm)) if (Number(m[1]) === pageKiB) total = (total ?? 0) + Number(m[2]) * pageKiB
  return total
}

/**
 * `stat -f -c '%a %S'` of the hugetlbfs QEMU takes huge pages from (/dev/hugepages): free pages
 * and the page size, in KiB free; undefined when it cannot be read. A hugetlbfs mounted with a
 * size= holds less than the kernel's pool that virsh freepages reports: the smaller one decides.
 */
export function parseHugetlbfsFree(text: string): number | undefined {
  const m = /^(\d+) (\d+)\s*$/.exec(text)
  return m ? (Number(m[1]) * Number(m[2])) / 1024 : undefined
}

/** A domain XML backed by huge pages (<memoryBacking><hugepages/>): it needs free huge pages, not free memory. */
export function usesHugepages(xml: string): boolean {
  return /<memoryBacking>[\s\S]*<hugepages\s*\/?>[\s\S]*<\/memoryBacking>/.test(xml)
}

/**
 * The huge page size a hugepage-backed definition asks for (<hugepages><page size='1' unit='G'/>),
 * in KiB; undefined when it names none (the host's default size) or is not hugepage-backed. A size
 * in a unit ha does not know is taken as one that is not 2 MiB (0), so it is not counted as such.
 */
export function hugepageSizeKiB(xml: string): number | undefined {
  if (!usesHugepages(xml)) return undefined
  const page = /<hugepages\s*>[\s\S]*?<page\s([^>]*)\/?>/.exec(xml)?.[1]
  const size = page ? /\bsize=['"](\d+)['"]/.exec(page)?.[1] : undefined
  if (size === undefined) return undefined
  const unit = (/\bunit=['"](\w+)['"]/.exec(page!)?.[1] ?? 'KiB').toLowerCase()
  return binaryKiB[unit] === undefined ? 0 : Number(size) * binaryKiB[unit]
}

const binaryKiB: Record<string, number> = {b: 1 / 1024, bytes: 1 / 1024, g: 1024 * 1024, gib: 1024 * 1024, k: 1, kib: 1, m: 1024, mib: 1024}

/** The largest definition ha keeps in its journal and hands to virsh define. */
export const maxDefinitionBytes = 1024 * 1024

/**
 * A definition read back (from the journal or a node) is held to what it must be before virsh
 * define gets it: a <domain> of this guest's name, of a bounded size. Returns why not, or undefined.
 */
export function definitionProblem(xml: unknown, name: string): string | undefined {
  if (typeof xml !== 'string') return 'is not text'
  if (Buffer.byteLength(xml) > maxDefinitionBytes) return `is larger than ${maxDefinitionBytes} bytes`
  if (!/^\s*<domain[\s>]/.test(xml)) return 'does not start with <domain>'
  const names = [...xml.matchAll(/<name>([^<]*)<\/name>/g)].map((m) => m[1].trim())
  if (names[0] !== name) return `names the domain ${names[0] ?? '(none)'}, not ${name}`
  return undefined
}

/** A definition's <memory> in KiB (its unit attribute honoured), for a guest defined nowhere reachable. */
export function definitionMemoryKiB(xml: string): number | undefined {
  const m = /<memory(?:\s+unit=['"](\w+)['"])?\s*>(\d+)<\/memory>/.exec(xml)
  if (!m) return undefined
  const unit = (m[1] ?? 'KiB').toLowerCase()
  return binaryKiB[unit] === undefined ? undefined : Math.ceil(Number(m[2]) * binaryKiB[unit])
}

/** A definition's <uuid>: the domain's identity to libvirt (one name with two UUIDs is two domains). */
export function domainUuid(xml: string): string | undefined {
  return /<uuid>\s*([0-9a-fA-F-]{32,36})\s*<\/uuid>/.exec(xml)?.[1].toLowerCase()
}
