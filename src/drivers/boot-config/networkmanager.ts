import {bareAddress, type BootAddress, type BootConfigDriver, BootConfigRefusal, type BootFile} from './driver.js'

/**
 * NetworkManager keyfiles: /etc/NetworkManager/system-connections/*.nmconnection, one connection
 * each. The connection for a service IP's interface is the one whose [connection] interface-name
 * is that interface (exactly one, or ha refuses); its static IPv4 addresses are the [ipv4] keys
 * address1=, address2=… (NetworkManager also reads address=, address0=, addresses=, addresses1=…,
 * each ADDRESS[/PREFIX][,GATEWAY]). A service IP goes in as the next addressN= line after the last
 * address line, and leaves with its line: adding then removing gives back the very bytes.
 *
 * A keyfile is GLib's key file format: [group] lines, key=value lines (spaces around = allowed),
 * # comments. ha reads only what it needs and leaves every other line as it is.
 */
const dir = '/etc/NetworkManager/system-connections'
const place = `${dir}/*.nmconnection`
const addressKey = /^address(es)?(\d*)$/
const addressValue = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?(?:,(\d{1,3}(?:\.\d{1,3}){3}))?$/

interface Entry {
  line: number
  group: string
  key: string
  value: string
}

interface Keyfile {
  lines: string[]
  entries: Entry[]
  /** The line of each [group] header, in order (a group may appear twice). */
  groups: Array<{line: number; name: string}>
}

function parse(text: string): Keyfile {
  const lines = text.split('\n')
  const entries: Entry[] = []
  const groups: Keyfile['groups'] = []
  let group = ''
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, '')
    const trimmed = line.trimStart()
    if (trimmed === '' || trimmed.startsWith('#')) continue
    const header = /^\[([^\]]*)\]\s*$/.exec(trimmed)
    if (header) {
      group = header[1]
      groups.push({line: i, name: group})
      continue
    }

    const eq = line.indexOf('=')
    if (eq === -1) continue
    // GLib drops the spaces around '=' and leading ones of the value; trailing ones stay in it.
    entries.push({group, key: line.slice(0, eq).trim(), line: i, value: line.slice(eq + 1).trimStart()})
  }

  return {entries, groups, lines}
}

const interfaceName = (k: Keyfile) => k.entries.filter((e) => e.group === 'connection' && e.key === 'interface-name').at(-1)?.value.trim()

interface AddressLine extends Entry {
  index: number
  /** The address as NetworkManager reads it (its default prefix is /24), when the line is in a form ha reads. */
  cidr?: string
  gateway?: string
}

function addressLines(k: Keyfile): AddressLine[] {
  const found = k.entries.filter((e) => e.group === 'ipv4' && addressKey.test(e.key))
  return found.map((e) => {
    const index = Number(addressKey.exec(e.key)![2] || '0')
    const m = addressValue.exec(e.value)
    const duplicate = found.filter((o) => o.key === e.key).length > 1
    if (!m || duplicate) return {...e, index}
    return {...e, cidr: `${m[1]}/${m[2] ?? '24'}`, gateway: m[3], index}
  })
}

/** Does this unreadable value mention the address (so it may bring it up)? */
const mentions = (value: string, address: string) => new RegExp(`(^|[^\\d.])${bareAddress(address).replaceAll('.', '\\.')}($|[^\\d.])`).test(value)

function addresses(file: BootFile): BootAddress[] {
  const k = parse(file.text)
  const iface = interfaceName(k) ?? ''
  return addressLines(k).flatMap((a): BootAddress[] => {
    if (a.cidr !== undefined) return [{address: a.cidr, interface: iface}]
    return (a.value.match(/\d{1,3}(?:\.\d{1,3}){3}/g) ?? []).map((address) => ({address, interface: iface, unread: true}))
  })
}

function fileFor(files: BootFile[], ip: {interface: string}): BootFile {
  const mine = files.filter((f) => interfaceName(parse(f.text)) === ip.interface)
  if (mine.length === 1) return mine[0]
  if (mine.length === 0) {
    throw new BootConfigRefusal(place, `no connection has interface-name=${ip.interface}, so ha cannot tell which one brings ${ip.interface} up at boot`, [
      `set interface-name=${ip.interface} in the [connection] group of the connection ${ip.interface} uses (nmcli connection modify <name> connection.interface-name ${ip.interface}), then run ha again`,
    ])
  }

  throw new BootConfigRefusal(place, `${mine.map((f) => f.path).join(' and ')} all have interface-name=${ip.interface}: ha cannot tell which one a boot activates`, [
    `keep one connection for ${ip.interface} (nmcli connection delete <name> for the others), then run ha again`,
  ])
}

/** The [ipv4] group ha may add a line to: there, once, with static addresses allowed. */
function ipv4Group(k: Keyfile, path: string): {end: number} {
  const groups = k.groups.filter((g) => g.name === 'ipv4')
  if (groups.length !== 1) {
    throw new BootConfigRefusal(path, groups.length === 0 ? 'the connection has no [ipv4] group' : 'the connection has the [ipv4] group twice', [
      `give it one [ipv4] group (nmcli connection modify <name> ipv4.method manual), then run ha again`,
    ])
  }

  const method = k.entries.filter((e) => e.group === 'ipv4' && e.key === 'method').at(-1)?.value ?? 'auto'
  if (method !== 'manual' && method !== 'auto') {
    throw new BootConfigRefusal(path, `[ipv4] method=${method} takes no static address`, ['set ipv4.method to manual (or auto) in the connection, then run ha again'])
  }

  const after = k.groups.find((g) => g.line > groups[0].line)
  return {end: after ? after.line : k.lines.length}
}

function refuseUnread(path: string, lines: AddressLine[]): void {
  const bad = lines.find((a) => a.cidr === undefined)
  if (bad) {
    throw new BootConfigRefusal(path, `line ${bad.line + 1} (${bad.key}=${bad.value}) is not an address in a form ha reads (ADDRESS/PREFIX[,GATEWAY], once per key)`, [
      `rewrite it as address<N>=ADDRESS/PREFIX (nmcli connection modify <name> ipv4.addresses ... writes it so), then run ha again`,
    ])
  }
}

function withAddress(file: BootFile, ip: {address: string; interface: string}): string {
  const k = parse(file.text)
  const lines = addressLines(k)
  if (lines.some((a) => a.cidr !== undefined && bareAddress(a.cidr) === bareAddress(ip.address))) return file.text
  const {end} = ipv4Group(k, file.path)
  refuseUnread(file.path, lines)
  const next = Math.max(0, ...lines.map((a) => a.index)) + 1
  // After the last address line, else after the group's last line that is not blank.
  let at = lines.length > 0 ? Math.max(...lines.map((a) => a.line)) + 1 : end
  if (lines.length === 0) while (at > 0 && k.lines[at - 1].trim() === '' && at - 1 > k.groups.find((g) => g.name === 'ipv4')!.line) at--
  const out = [...k.lines]
  out.splice(at, 0, `address${next}=${ip.address}`)
  return out.join('\n')
}

function withoutAddress(file: BootFile, address: string): string {
  const k = parse(file.text)
  const lines = addressLines(k)
  const unread = lines.find((a) => a.cidr === undefined && mentions(a.value, address))
  if (unread) refuseUnread(file.path, [unread])
  const drop = lines.filter((a) => a.cidr !== undefined && bareAddress(a.cidr) === bareAddress(address))
  const gateway = drop.find((a) => a.gateway)
  if (gateway) {
    throw new BootConfigRefusal(file.path, `line ${gateway.line + 1} (${gateway.key}=${gateway.value}) carries the gateway ${gateway.gateway}: removing the address would remove the gateway too`, [
      `move the gateway to its own key (gateway=${gateway.gateway} in [ipv4]), then run ha again`,
    ])
  }

  const method = k.entries.filter((e) => e.group === 'ipv4' && e.key === 'method').at(-1)?.value
  if (drop.length > 0 && drop.length === lines.length && method === 'manual') {
    throw new BootConfigRefusal(file.path, `${bareAddress(address)} is the connection's only address and its [ipv4] method is manual: NetworkManager would not activate it without one`, [
      `give the connection its own address as well (nmcli connection modify <name> +ipv4.addresses ADDRESS/PREFIX), then run ha again`,
    ])
  }

  const gone = new Set(drop.map((a) => a.line))
  return k.lines.filter((_, i) => !gone.has(i)).join('\n')
}

export const networkmanager: BootConfigDriver = {
  adding: (ip) => `add address<N>=${ip.address} (the next N) to the [ipv4] group of the connection whose interface-name is ${ip.interface}`,
  addresses,
  dir,
  fileFor,
  glob: '*.nmconnection',
  matches: (name) => name.endsWith('.nmconnection') && !name.startsWith('.'),
  name: 'networkmanager',
  placeFor: () => place,
  removing: (ip) => `remove the address<N>=${ip.address} line from every connection that has it`,
  withAddress,
  withoutAddress,
}
