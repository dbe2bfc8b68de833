import {bareAddress, type BootAddress, type BootConfigDriver, BootConfigRefusal, type BootFile} from './driver.js'

/**
 * RHEL's initscripts (and NetworkManager's ifcfg-rh plugin): /etc/sysconfig/network-scripts/
 * ifcfg-NAME, shell variable assignments, one interface each (DEVICE=, else NAME). Its IPv4
 * addresses are IPADDR, IPADDR0, IPADDR1, … with PREFIXn (or NETMASKn), read as initscripts read
 * them: IPADDR, IPADDR0 and IPADDR1 may be missing, from IPADDR2 on the first missing one ends the
 * list. A service IP goes in as IPADDRn/PREFIXn at the first free n from 1 (always read), after
 * the last address line, and leaves with its lines; when that would end the list early, the
 * addresses after it move down one number, so none is lost.
 *
 * Only plain assignments are read (NAME=value, "value" or 'value', an optional # comment after);
 * an address written any other way (a variable, a command) is refused, not guessed.
 */
const dir = '/etc/sysconfig/network-scripts'
const place = `${dir}/ifcfg-*`
const ignored = /(~|\.bak|\.old|\.orig|\.rpmnew|\.rpmorig|\.rpmsave|\.swp)$/
const assignment = /^\s*(?:export\s+)?([A-Za-z_]\w*)=(.*)$/
const plainValue = /^(?:([^\s"'`$\\;&|<>()#]*)|"([^"`$\\]*)"|'([^']*)')\s*(?:#.*)?$/
const indexedKey = /^(IPADDR|PREFIX|NETMASK|GATEWAY)(\d*)$/
const quad = /\d{1,3}(?:\.\d{1,3}){3}/g

interface Assignment {
  line: number
  key: string
  /** The value as the shell gives it, when the line is plain. */
  value?: string
}

interface Ifcfg {
  lines: string[]
  assignments: Assignment[]
  /** Lines ha does not read that mention an address (a variable or a command in an address key, say). */
  unread: Array<{line: number; text: string}>
}

function parse(text: string): Ifcfg {
  const lines = text.split('\n')
  const assignments: Assignment[] = []
  const unread: Ifcfg['unread'] = []
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, '')
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue
    const a = assignment.exec(line)
    const v = a ? plainValue.exec(a[2]) : null
    if (a && v) assignments.push({key: a[1], line: i, value: v[1] ?? v[2] ?? v[3]})
    else if (a && indexedKey.test(a[1])) unread.push({line: i, text: line})
    else if (a) assignments.push({key: a[1], line: i})
    else if (quad.test(line)) unread.push({line: i, text: line})
    quad.lastIndex = 0
  }

  return {assignments, lines, unread}
}

/** A key's value as the shell leaves it (the last assignment), undefined when unset or not plain. */
function valueOf(f: Ifcfg, key: string): string | undefined {
  const last = f.assignments.filter((a) => a.key === key).at(-1)
  return last?.value === '' ? undefined : last?.value
}

const suffixes = ['', ...Array.from({length: 256}, (_, n) => String(n))]

function prefixOf(f: Ifcfg, suffix: string): string | undefined {
  const prefix = valueOf(f, `PREFIX${suffix}`)
  if (prefix) return prefix
  const mask = valueOf(f, `NETMASK${suffix}`)
  if (!mask || !/^\d{1,3}(\.\d{1,3}){3}$/.test(mask)) return undefined
  const bits = mask.split('.').reduce((n, o) => n * 256 + Number(o), 0).toString(2)
  return /^1*0*$/.test(bits.padStart(32, '0')) ? String(bits.replaceAll('0', '').length) : undefined
}

/** The addresses initscripts bring up, in their order, with the suffix of each ('' for IPADDR). */
function indexed(f: Ifcfg): Array<{address: string; suffix: string}> {
  const found: Array<{address: string; suffix: string}> = []
  for (const suffix of suffixes) {
    const address = valueOf(f, `IPADDR${suffix}`)
    if (!address) {
      if (suffix !== '' && Number(suffix) >= 2) break
      continue
    }

    const prefix = prefixOf(f, suffix)
    found.push({address: prefix ? `${address}/${prefix}` : address, suffix})
  }

  return found
}

const fileName = (path: string) => path.slice(path.lastIndexOf('/') + 1)

/** The interface a file configures: DEVICE=, else the name after ifcfg- (eth0 for an alias file ifcfg-eth0:1). */
function interfaceOf(file: BootFile, f = parse(file.text)): string {
  return (valueOf(f, 'DEVICE') ?? fileName(file.path).slice('ifcfg-'.length)).split(':')[0]
}

function addresses(file: BootFile): BootAddress[] {
  const f = parse(file.text)
  const iface = interfaceOf(file, f)
  const read: BootAddress[] = indexed(f).map((a) => ({address: a.address, interface: iface}))
  const duplicated = new Set(f.assignments.filter((a, i, all) => indexedKey.test(a.key) && all.findIndex((b) => b.key === a.key) !== i).map((a) => a.key))
  const unread = [...f.unread.map((u) => u.text), ...f.assignments.filter((a) => duplicated.has(a.key)).map((a) => f.lines[a.line])]
  return [...read, ...unread.flatMap((text) => (text.match(quad) ?? []).map((address): BootAddress => ({address, interface: iface, unread: true})))]
}

function refuseUnread(file: BootFile, f: Ifcfg, address?: string): void {
  const duplicated = f.assignments.find((a, i, all) => indexedKey.test(a.key) && all.findIndex((b) => b.key === a.key) !== i)
  const bad = f.unread.find((u) => address === undefined || u.text.includes(bareAddress(address))) ?? (duplicated ? {line: duplicated.line, text: f.lines[duplicated.line]} : undefined)
  if (!bad) return
  throw new BootConfigRefusal(file.path, `line ${bad.line + 1} (${bad.text.trim()}) is not an address setting ha reads (a plain KEY=value, once per key)`, [
    'write the addresses as plain IPADDRn=ADDRESS and PREFIXn=LENGTH lines, each once, then run ha again',
  ])
}

function fileFor(files: BootFile[], ip: {interface: string}): BootFile {
  const mine = files.filter((file) => !fileName(file.path).includes(':') && interfaceOf(file) === ip.interface)
  if (mine.length === 1) return mine[0]
  if (mine.length === 0) {
    throw new BootConfigRefusal(place, `no ifcfg file configures ${ip.interface} (DEVICE=${ip.interface}, or the name ifcfg-${ip.interface})`, [
      `write ${dir}/ifcfg-${ip.interface} for it (DEVICE=${ip.interface}, ONBOOT=yes, BOOTPROTO=none, its own IPADDR and PREFIX), then run ha again`,
    ])
  }

  throw new BootConfigRefusal(place, `${mine.map((f) => f.path).join(' and ')} all configure ${ip.interface}: ha cannot tell which one a boot uses`, [`keep one ifcfg file for ${ip.interface}, then run ha again`])
}

function withAddress(file: BootFile, ip: {address: string; interface: string}): string {
  const f = parse(file.text)
  if (indexed(f).some((a) => bareAddress(a.address) === bareAddress(ip.address))) return file.text
  refuseUnread(file, f)
  const boot = (valueOf(f, 'BOOTPROTO') ?? 'none').toLowerCase()
  if (boot === 'dhcp' || boot === 'bootp') {
    throw new BootConfigRefusal(file.path, `BOOTPROTO=${boot}: initscripts bring up no IPADDRn on a DHCP interface`, [`set BOOTPROTO=none with the interface's own IPADDR and PREFIX, then run ha again`])
  }

  const used = new Set(f.assignments.flatMap((a) => indexedKey.exec(a.key)?.[2] ?? []))
  let n = 1
  while (used.has(String(n))) n++
  const [address, prefix] = ip.address.split('/')
  const last = f.assignments.filter((a) => /^(IPADDR|PREFIX|NETMASK)\d*$/.test(a.key)).at(-1)
  const out = [...f.lines]
  const lines = [`IPADDR${n}=${address}`, `PREFIX${n}=${prefix}`]
  if (last) out.splice(last.line + 1, 0, ...lines)
  else if (out.at(-1) === '') out.splice(-1, 0, ...lines)
  else out.push(...lines, '')
  return out.join('\n')
}

function withoutAddress(file: BootFile, address: string): string {
  const f = parse(file.text)
  refuseUnread(file, f, address)
  const list = indexed(f)
  const gone = list.filter((a) => bareAddress(a.address) === bareAddress(address))
  if (gone.length === 0) return file.text
  const keyed = (suffix: string) => f.assignments.filter((a) => indexedKey.exec(a.key)?.[2] === suffix && a.key !== `GATEWAY${suffix}`)
  for (const g of gone) {
    // GATEWAY (no number) is the interface's; GATEWAYn goes with IPADDRn.
    if (g.suffix !== '' && valueOf(f, `GATEWAY${g.suffix}`)) {
      throw new BootConfigRefusal(file.path, `IPADDR${g.suffix}=${bareAddress(address)} comes with GATEWAY${g.suffix}: removing the address would remove its gateway too`, [`move the gateway to GATEWAY=, then run ha again`])
    }

    if (g.suffix === '' && fileName(file.path).includes(':')) {
      throw new BootConfigRefusal(file.path, `${bareAddress(address)} is this alias file's own address`, [`remove ${file.path} by hand (ha edits files, it does not delete them), then run ha again`])
    }
  }

  const drop = new Set(gone.flatMap((g) => keyed(g.suffix).map((a) => a.line)))
  const renamed = new Map<number, string>()
  // Past IPADDR1 a gap ends the list: what follows the removed numbers moves down to close it.
  const removed = new Set(gone.map((g) => g.suffix))
  let shift = 0
  for (const a of list) {
    if (removed.has(a.suffix)) {
      if (a.suffix !== '' && Number(a.suffix) >= 2) shift++
      continue
    }

    if (shift === 0 || a.suffix === '' || Number(a.suffix) < 2) continue
    const to = String(Number(a.suffix) - shift)
    for (const line of f.assignments.filter((k) => indexedKey.exec(k.key)?.[2] === a.suffix).map((k) => k.line)) renamed.set(line, f.lines[line].replace(/^(\s*(?:export\s+)?[A-Z]+)\d+=/, `$1${to}=`))
  }

  return f.lines.flatMap((line, i) => (drop.has(i) ? [] : [renamed.get(i) ?? line])).join('\n')
}

export const ifcfg: BootConfigDriver = {
  adding: (ip) => `add IPADDR<n>=${bareAddress(ip.address)} and PREFIX<n>=${ip.address.split('/')[1]} (the first free n from 1) to the ifcfg file of ${ip.interface}`,
  addresses,
  dir,
  fileFor,
  glob: 'ifcfg-*',
  matches: (name) => name.startsWith('ifcfg-') && !ignored.test(name),
  name: 'ifcfg',
  placeFor: () => place,
  removing: (ip) => `remove IPADDR<n>=${bareAddress(ip.address)} with its PREFIX<n>/NETMASK<n> from every ifcfg file that has it (later numbers move down to close the gap)`,
  withAddress,
  withoutAddress,
}
