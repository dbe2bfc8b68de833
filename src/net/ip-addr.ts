/**
 * `ip -o addr` and `ip -o link` as data. One line per address: "2: eth0    inet 198.18.0.100/24
 * brd ... scope global secondary eth0\       valid_lft ...". The service IP check and, later,
 * the failover's release/take steps read these, so they decide from the same parse.
 */
export interface IpAddress {
  index: number
  interface: string
  family: 'inet' | 'inet6'
  address: string
  prefix: number
  /** The label ("eth0:1") when the address has one, else the interface name. */
  label: string
}

const addrLine = /^(\d+):\s+(\S+)\s+(inet6?)\s+([0-9a-fA-F.:]+)\/(\d{1,3})\b(.*)$/

export function parseIpAddr(text: string): IpAddress[] {
  const result: IpAddress[] = []
  for (const raw of text.split('\n')) {
    const line = raw.split('\\')[0].trimEnd()
    const match = addrLine.exec(line)
    if (!match) continue
    const [, index, name, family, address, prefix, rest] = match
    // The label, when present, is the last word before the backslash that ends the address part.
    const words = rest.trim().split(/\s+/)
    const last = words.at(-1) ?? ''
    const label = family === 'inet' && (last === name || last.startsWith(`${name}:`)) ? last : name
    result.push({address, family: family as 'inet' | 'inet6', index: Number(index), interface: name.replace(/@.*$/, ''), label, prefix: Number(prefix)})
  }

  return result
}

export interface IpLink {
  index: number
  interface: string
  mac?: string
  up: boolean
}

export function parseIpLink(text: string): IpLink[] {
  const result: IpLink[] = []
  for (const line of text.split('\n')) {
    const match = /^(\d+):\s+([^:\s]+):\s+<([^>]*)>(.*)$/.exec(line)
    if (!match) continue
    const mac = /link\/ether\s+([0-9a-fA-F:]{17})/.exec(match[4])?.[1]?.toLowerCase()
    result.push({index: Number(match[1]), interface: match[2].replace(/@.*$/, ''), mac, up: match[3].split(',').includes('UP')})
  }

  return result
}

/** "198.18.1.10/24" → "198.18.1.10". */
export function addressOnly(cidr: string): string {
  return cidr.split('/')[0]
}
