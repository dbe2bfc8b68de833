import type {Config, NodeName} from '../config/schema.js'
import type {Host, Probe, ProbeResult} from '../hosts/host.js'
import {hugepageSizeKiB, type ListedDomain, libvirtUriOf, parseDomainList, parseDomInfo, parseFreecell, parseFreeHugepages, parseHugetlbfsFree, usesHugepages, virshRead} from './virsh.js'

/** Where QEMU takes huge pages from: libvirt's default hugetlbfs mount. */
export const hugetlbfsMount = '/dev/hugepages'

/** One configured guest as one node's libvirtd knows it. */
export interface GuestOnNode {
  name: string
  /** virsh's state, or 'absent' (not defined there). */
  state: string
  memoryKiB?: number
  hugepages: boolean
  /** The huge page size its definition names, in KiB (undefined: the host's default). */
  hugepageKiB?: number
  autostart: boolean
  /** The inactive definition (dumpxml --inactive), when defined there. */
  xml?: string
}

/** What one node's libvirtd says about the configured guests and its free memory. */
export interface NodeGuests {
  node: NodeName
  guests: Record<string, GuestOnNode>
  /** Every domain the node has, clustered or not. */
  domains: ListedDomain[]
  freeKiB?: number
  /** Free 2 MiB huge pages, in KiB; undefined when neither virsh freepages nor the hugetlbfs answered (not known). */
  freeHugepagesKiB?: number
  /** Why libvirtd could not be read (then nothing else here is known). */
  error?: string
}

/** A guest that runs (or is on its way to running) there: what a second copy elsewhere must never meet. */
export function isActive(state: string): boolean {
  return state !== 'absent' && state !== 'shut off' && state !== 'crashed'
}

/** What one node is asked about its guests (ids guests:...), in a batch of their own or with ha check's. */
export function nodeGuestProbes(config: Config, node: NodeName): Probe[] {
  const uri = libvirtUriOf(config, node)
  return [
    {argv: virshRead.list(uri), id: 'guests:list'},
    {argv: virshRead.freecell(uri), id: 'guests:freecell'},
    {argv: virshRead.freepages(uri), id: 'guests:freepages'},
    // The hugetlbfs QEMU maps its huge pages from (libvirt's default mount): its size= may hold fewer than the pool.
    {argv: ['stat', '-f', '-c', '%a %S', hugetlbfsMount], id: 'guests:hugetlbfs'},
    ...config.guests.flatMap((g) => [
      {argv: virshRead.dominfo(uri, g.name), id: `guests:dominfo:${g.name}`},
      {argv: virshRead.dumpxml(uri, g.name), id: `guests:dumpxml:${g.name}`},
    ]),
  ]
}

/** The answers to nodeGuestProbes, read. */
export function nodeGuestsFrom(config: Config, node: NodeName, results: Map<string, Pick<ProbeResult, 'code' | 'stderr' | 'stdout'>>): NodeGuests {
  const uri = libvirtUriOf(config, node)
  const list = results.get('guests:list')
  if (!list || list.code !== 0) {
    const why = !list ? 'not asked' : list.code === 127 ? 'virsh is not installed' : list.stderr.toString().trim().split('\n')[0] || `virsh list exited ${list.code}`
    return {domains: [], error: `${why} (virsh -c ${uri})`, guests: {}, node}
  }

  const domains = parseDomainList(list.stdout.toString())
  const guests: Record<string, GuestOnNode> = {}
  for (const g of config.guests) {
    const listed = domains.find((d) => d.name === g.name)
    const info = results.get(`guests:dominfo:${g.name}`)
    const xml = results.get(`guests:dumpxml:${g.name}`)
    const parsed = info?.code === 0 ? parseDomInfo(info.stdout.toString()) : undefined
    const text = xml?.code === 0 ? xml.stdout.toString() : undefined
    guests[g.name] = {autostart: parsed?.autostart ?? false, hugepageKiB: text ? hugepageSizeKiB(text) : undefined, hugepages: text ? usesHugepages(text) : false, memoryKiB: parsed?.maxMemoryKiB, name: g.name, state: listed?.state ?? 'absent', xml: text}
  }

  const freecell = results.get('guests:freecell')
  const freepages = results.get('guests:freepages')
  const hugetlbfs = results.get('guests:hugetlbfs')
  // Either one unread is not "none free": the other decides alone, or, neither read, it is not known.
  const pool = freepages?.code === 0 ? parseFreeHugepages(freepages.stdout.toString()) : undefined
  const mounted = hugetlbfs?.code === 0 ? parseHugetlbfsFree(hugetlbfs.stdout.toString()) : undefined
  return {
    domains,
    freeHugepagesKiB: mounted === undefined ? pool : pool === undefined ? mounted : Math.min(pool, mounted),
    freeKiB: freecell?.code === 0 ? parseFreecell(freecell.stdout.toString()) : undefined,
    guests,
    node,
  }
}

/** One round trip: the domain list, free memory and huge pages, and each configured guest's dominfo and definition. */
export async function readNodeGuests(host: Host, config: Config, node: NodeName, signal?: AbortSignal): Promise<NodeGuests> {
  const batch = await host.probe(nodeGuestProbes(config, node), {signal})
  return nodeGuestsFrom(config, node, new Map(batch.results.map((r) => [r.id, r])))
}

/** One guest's state on a node (a domstate, for polling while it shuts down). */
export async function domainState(host: Host, uri: string, name: string, signal?: AbortSignal): Promise<string> {
  const r = await host.run(virshRead.domstate(uri, name), {signal})
  if (r.code === 0) return r.stdout.toString().trim()
  if (/failed to get domain|Domain not found/i.test(r.stderr.toString())) return 'absent'
  throw new Error(`virsh domstate ${name} on ${host.name}: ${r.stderr.toString().trim() || `exit ${r.code}`}`)
}
