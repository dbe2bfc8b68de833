import {bareAddress as bare, type BootConfigDriver} from './driver.js'

/**
 * Debian's ifupdown: /etc/network/interfaces, edited as text, everything else kept. A service IP
 * goes in as an alias stanza (eth0:N) and leaves with its stanza and its auto line.
 */
export const interfacesPath = '/etc/network/interfaces'

interface Stanza {
  start: number
  end: number
  iface: string
  addresses: string[]
}

const stanzaWords = new Set(['allow-auto', 'allow-hotplug', 'auto', 'iface', 'mapping', 'source', 'source-directory'])

function stanzas(lines: string[]): Stanza[] {
  const found: Stanza[] = []
  let current: Stanza | undefined
  for (const [i, raw] of lines.entries()) {
    const words = raw.replace(/#.*/, '').trim().split(/\s+/)
    if (stanzaWords.has(words[0])) {
      if (current) found.push(current)
      current = words[0] === 'iface' ? {addresses: [], end: i + 1, iface: words[1] ?? '', start: i} : undefined
      continue
    }

    if (current) {
      if (words[0] === 'address' && words[1]) current.addresses.push(words[1])
      if (words[0] !== '') current.end = i + 1
    }
  }

  if (current) found.push(current)
  return found
}

/** Every address of a static stanza, as written. */
export function bootAddresses(text: string): string[] {
  return stanzas(text.split('\n')).flatMap((s) => s.addresses)
}

/** Each address with the interface of its stanza (eth0 for an alias stanza eth0:1). */
function interfaceAddresses(text: string): Array<{address: string; interface: string}> {
  return stanzas(text.split('\n')).flatMap((s) => s.addresses.map((address) => ({address, interface: s.iface.split(':')[0]})))
}

export function bootHolds(text: string, address: string): boolean {
  return bootAddresses(text).some((a) => bare(a) === bare(address))
}

/** The file without the stanzas that configure `address`, and without their `auto` lines. */
export function withoutAddress(text: string, address: string): string {
  const lines = text.split('\n')
  const drop = stanzas(lines).filter((s) => s.addresses.some((a) => bare(a) === bare(address)))
  const names = new Set(drop.map((s) => s.iface))
  return lines
    .filter((line, i) => {
      if (drop.some((s) => i >= s.start && i < s.end)) return false
      const words = line.replace(/#.*/, '').trim().split(/\s+/)
      if ((words[0] === 'auto' || words[0] === 'allow-hotplug') && words.length === 2 && names.has(words[1])) return false
      return true
    })
    .join('\n')
}

/** The file with an alias stanza for `address` on `iface` (eth0:N, the first N free), unless one is there. */
export function withAddress(text: string, iface: string, address: string): string {
  if (bootHolds(text, address)) return text
  const used = new Set(stanzas(text.split('\n')).map((s) => s.iface))
  let n = 0
  while (used.has(`${iface}:${n}`)) n++
  const base = text === '' || text.endsWith('\n') ? text : `${text}\n`
  return `${base}auto ${iface}:${n}\niface ${iface}:${n} inet static\n    address ${address}\n`
}

/**
 * The file is /etc/network/interfaces alone (what ifupdown reads first; a service IP in
 * interfaces.d is not looked for). A missing file is an empty one: the alias stanza creates it.
 */
export const ifupdown: BootConfigDriver = {
  adding: (ip) => `add ${ip.address} on ${ip.interface}`,
  addresses: (file) => interfaceAddresses(file.text),
  dir: '/etc/network',
  fileFor: (files) => files.find((f) => f.path === interfacesPath) ?? {path: interfacesPath, text: ''},
  glob: 'interfaces',
  matches: (name) => name === 'interfaces',
  name: 'ifupdown',
  placeFor: () => interfacesPath,
  removing: (ip) => `remove the stanza with address ${ip.address}`,
  withAddress: (file, ip) => withAddress(file.text, ip.interface, ip.address),
  withoutAddress: (file, address) => withoutAddress(file.text, address),
}
