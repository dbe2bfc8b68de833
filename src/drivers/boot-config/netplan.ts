import {isDeepStrictEqual} from 'node:util'

import {type Document, isMap, isScalar, isSeq, type Node, parseDocument, type Scalar, type YAMLMap, type YAMLSeq} from 'yaml'

import {bareAddress, type BootAddress, type BootConfigDriver, BootConfigRefusal, type BootFile} from './driver.js'

/**
 * Ubuntu's netplan: /etc/netplan/*.yaml, network.<type>.<id>.addresses (ethernets, bonds,
 * bridges, vlans), which `netplan generate` renders for systemd-networkd or NetworkManager. The
 * definition of a service IP's interface must be in exactly one file. The file is edited as text at
 * the positions the YAML parser gives, never re-serialised, so comments, quoting, order and spacing
 * stay as they were: an address goes in as a new `- ADDRESS` line after the last one of a block
 * list, as `, ADDRESS` before the `]` of a flow list, or as an `addresses: [ADDRESS]` line; it
 * leaves the same way, so adding then removing gives back the very bytes. Every edit is checked
 * by parsing the result: anything but that one address changed, and ha refuses.
 *
 * A file cloud-init writes (50-cloud-init.yaml) is refused: cloud-init writes it again at boot.
 */
const dir = '/etc/netplan'
const place = `${dir}/*.yaml`
const types = ['ethernets', 'bonds', 'bridges', 'vlans']
const quad = /\d{1,3}(?:\.\d{1,3}){3}/g

interface Definition {
  type: string
  id: string
  /** The interface it configures: set-name, match.name, else its id (none when it matches by other means). */
  iface?: string
  node: YAMLMap
}

function load(file: BootFile): Document {
  const doc = parseDocument(file.text, {merge: true})
  if (doc.errors.length > 0) {
    throw new BootConfigRefusal(file.path, `is not YAML netplan reads (${doc.errors[0].message.split('\n')[0]})`, [`fix it (netplan generate says where), then run ha again`])
  }

  return doc
}

function scalarText(node: unknown): string | undefined {
  return isScalar(node) && (typeof node.value === 'string' || typeof node.value === 'number') ? String(node.value) : undefined
}

function definitions(doc: Document): Definition[] {
  const found: Definition[] = []
  for (const type of types) {
    const group = doc.getIn(['network', type], true)
    if (!isMap(group)) continue
    for (const pair of group.items) {
      const id = scalarText(pair.key)
      if (id === undefined || !isMap(pair.value)) continue
      const node = pair.value
      const match = node.get('match', true)
      const setName = scalarText(node.get('set-name', true))
      const matchName = isMap(match) ? scalarText(match.get('name', true)) : undefined
      found.push({id, iface: setName ?? (match === undefined ? id : matchName), node, type})
    }
  }

  return found
}

/** The address an item of an addresses list gives: "ADDR/PREFIX", or the key of {ADDR/PREFIX: {options}}. */
function itemAddress(item: unknown): string | undefined {
  if (isMap(item) && item.items.length === 1) return scalarText(item.items[0].key)
  return scalarText(item)
}

function addressList(def: Definition): YAMLSeq | undefined {
  const list = def.node.get('addresses', true)
  return isSeq(list) ? list : undefined
}

/** The addresses as netplan reads the file: aliases and merge keys resolved (from the parsed values, not the nodes). */
function addresses(file: BootFile): BootAddress[] {
  let js: unknown
  try {
    js = load(file).toJS({maxAliasCount: 1000})
  } catch {
    // A file netplan cannot read brings nothing up; an edit of it is refused where one is asked.
    return (file.text.match(quad) ?? []).map((address) => ({address, interface: '', unread: true}))
  }

  const found: BootAddress[] = []
  const network = (js as {network?: Record<string, unknown>} | null)?.network
  for (const type of types) {
    const group = network?.[type]
    if (!group || typeof group !== 'object') continue
    for (const [id, def] of Object.entries(group as Record<string, unknown>)) {
      if (!def || typeof def !== 'object') continue
      const d = def as {addresses?: unknown; match?: {name?: unknown}; 'set-name'?: unknown}
      const name = d['set-name'] ?? (d.match === undefined ? id : d.match?.name)
      const iface = typeof name === 'string' ? name : id
      for (const item of Array.isArray(d.addresses) ? d.addresses : []) {
        const keys = item && typeof item === 'object' ? Object.keys(item) : []
        const address = typeof item === 'string' ? item : keys.length === 1 ? keys[0] : undefined
        if (address !== undefined) found.push({address, interface: iface})
        else for (const a of JSON.stringify(item ?? null).match(quad) ?? []) found.push({address: a, interface: iface, unread: true})
      }
    }
  }

  return found
}

function refuseGenerated(file: BootFile): void {
  if (/(^|\/)50-cloud-init\.yaml$/.test(file.path) || /generated from information provided by the\s*#?\s*datasource|cloud-init/i.test(file.text.slice(0, 1000))) {
    throw new BootConfigRefusal(file.path, 'is written by cloud-init, which writes it again at boot: an edit by ha would not last', [
      'stop cloud-init from writing the network configuration (network: {config: disabled} in /etc/cloud/cloud.cfg.d/99-disable-network-config.cfg)',
      `move its content to a file of your own in ${dir} (e.g. 60-site.yaml) and remove it, then run ha again`,
    ])
  }
}

function fileFor(files: BootFile[], ip: {interface: string}): BootFile {
  const mine = files.filter((file) => {
    try {
      return definitions(load(file)).some((d) => d.iface === ip.interface)
    } catch {
      return false
    }
  })
  if (mine.length === 1) return mine[0]
  if (mine.length === 0) {
    throw new BootConfigRefusal(place, `no file defines ${ip.interface} (network.ethernets.${ip.interface}, or a bond, bridge or vlan of that name)`, [
      `define ${ip.interface} in one file of ${dir} (network: {ethernets: {${ip.interface}: {addresses: [...]}}}), then run ha again`,
    ])
  }

  throw new BootConfigRefusal(place, `${mine.map((f) => f.path).join(' and ')} all define ${ip.interface}: netplan merges them, and ha cannot tell where the address belongs`, [
    `keep ${ip.interface}'s definition in one file, then run ha again`,
  ])
}

const lineStart = (text: string, at: number) => text.lastIndexOf('\n', at - 1) + 1
const lineEnd = (text: string, at: number) => {
  const nl = text.indexOf('\n', at)
  return nl === -1 ? text.length : nl + 1
}

/** The text with `ip` added to one definition's addresses, at the positions the parser gave. */
function spliceIn(text: string, def: Definition, address: string, path: string): string {
  if (def.node.flow) {
    throw new BootConfigRefusal(path, `${def.type}.${def.id} is written as a flow mapping ({...})`, [`write ${def.type}.${def.id} as a block mapping (one key per line), then run ha again`])
  }

  const list = def.node.get('addresses', true)
  if (list === undefined) {
    const first = def.node.items[0]?.key as Node | undefined
    if (!first?.range) throw new BootConfigRefusal(path, `${def.type}.${def.id} is empty`, [`give ${def.id} its settings, then run ha again`])
    const start = lineStart(text, first.range[0])
    const indent = text.slice(start, first.range[0])
    return `${text.slice(0, start)}${indent}addresses: [${address}]\n${text.slice(start)}`
  }

  if (!isSeq(list) || !list.range) throw new BootConfigRefusal(path, `${def.type}.${def.id}.addresses is not a list`, [`write it as a list of ADDRESS/PREFIX, then run ha again`])
  const items = list.items as Node[]
  if (list.flow) {
    const last = items.at(-1)
    if (!last?.range) return `${text.slice(0, list.range[0] + 1)}${address}${text.slice(list.range[0] + 1)}`
    return `${text.slice(0, last.range[1])}, ${address}${text.slice(last.range[1])}`
  }

  const last = items.at(-1)!
  const dash = text.lastIndexOf('-', last.range![0])
  const end = lineEnd(text, last.range![1])
  const newline = end === text.length && !text.endsWith('\n') ? '\n' : ''
  return `${text.slice(0, end)}${newline}${text.slice(lineStart(text, dash), dash)}- ${address}\n${text.slice(end)}`
}

/** The text without one item of an addresses list. */
function spliceOut(text: string, list: YAMLSeq, index: number, def: YAMLMap): string {
  const items = list.items as Node[]
  const item = items[index]
  const [start, end] = item.range!
  if (!list.flow) {
    if (items.length === 1) return emptied(text, list, (def.items.find((p) => scalarText(p.key) === 'addresses')!.key as Node).range![1])
    const dash = text.lastIndexOf('-', start)
    return `${text.slice(0, lineStart(text, dash))}${text.slice(lineEnd(text, end))}`
  }

  if (items.length === 1) {
    // The one line ha writes for a definition without addresses goes as it came (where the
    // definition keeps other keys: an empty one would read as null).
    const from = lineStart(text, list.range![0])
    const to = lineEnd(text, list.range![1])
    if (def.items.length > 1 && /^\s*addresses: \[[^\],]*\]\n?$/.test(text.slice(from, to))) return text.slice(0, from) + text.slice(to)
    return text.slice(0, start) + text.slice(end)
  }

  if (index > 0) return text.slice(0, items[index - 1].range![1]) + text.slice(end)
  return text.slice(0, start) + text.slice(items[1].range![0])
}

/** A block list left empty: `addresses: []`, the key's line and its comment kept. */
function emptied(text: string, list: YAMLSeq, keyEnd: number): string {
  const items = list.items as Node[]
  const colon = text.indexOf(':', keyEnd)
  const keyLine = text.slice(colon + 1, lineEnd(text, colon))
  return `${text.slice(0, colon + 1)} []${keyLine}${text.slice(lineEnd(text, items.at(-1)!.range![1]))}`
}

/** The edit changed that one address and nothing else, as netplan will read the file. */
function checked(before: Document, after: string, path: string, change: (doc: Document) => void): string {
  const expected = before.clone()
  change(expected)
  const got = parseDocument(after, {merge: true})
  if (got.errors.length > 0 || !isDeepStrictEqual(got.toJS(), expected.toJS())) {
    throw new BootConfigRefusal(path, 'is written in a YAML form ha does not edit safely (its edit would have changed more than the address)', [
      'write the addresses as a plain list (addresses: [ADDRESS/PREFIX, ...] or one "- ADDRESS/PREFIX" per line), then run ha again',
    ])
  }

  return after
}

function withAddress(file: BootFile, ip: {address: string; interface: string}): string {
  const doc = load(file)
  const defs = definitions(doc).filter((d) => d.iface === ip.interface)
  if (defs.length === 0) fileFor([file], ip)
  if (defs.length > 1) {
    throw new BootConfigRefusal(file.path, `defines ${ip.interface} ${defs.length} times (${defs.map((d) => `${d.type}.${d.id}`).join(', ')})`, [`keep one definition of ${ip.interface}, then run ha again`])
  }

  const def = defs[0]
  if ((addressList(def)?.items ?? []).some((i) => itemAddress(i) !== undefined && bareAddress(itemAddress(i)!) === bareAddress(ip.address))) return file.text
  refuseGenerated(file)
  const after = spliceIn(file.text, def, ip.address, file.path)
  return checked(doc, after, file.path, (d) => {
    const list = d.getIn(['network', def.type, def.id, 'addresses'])
    if (isSeq(list)) list.add(ip.address)
    else d.setIn(['network', def.type, def.id, 'addresses'], [ip.address])
  })
}

function withoutAddress(file: BootFile, address: string): string {
  let doc = load(file)
  let text = file.text
  for (;;) {
    const hit = definitions(doc)
      .map((def) => ({def, index: (addressList(def)?.items ?? []).findIndex((i) => itemAddress(i) !== undefined && bareAddress(itemAddress(i)!) === bareAddress(address))}))
      .find((h) => h.index !== -1)
    if (!hit) break
    refuseGenerated(file)
    const list = addressList(hit.def)!
    const after = spliceOut(text, list, hit.index, hit.def.node)
    text = checked(doc, after, file.path, (d) => {
      const kept = d.getIn(['network', hit.def.type, hit.def.id, 'addresses']) as YAMLSeq<Scalar>
      kept.delete(hit.index)
      if (kept.items.length === 0 && parseDocument(after, {merge: true}).getIn(['network', hit.def.type, hit.def.id, 'addresses']) === undefined) d.deleteIn(['network', hit.def.type, hit.def.id, 'addresses'])
    })
    doc = parseDocument(text, {merge: true})
  }

  return text
}

export const netplan: BootConfigDriver = {
  adding: (ip) => `add ${ip.address} to the addresses of ${ip.interface} (network.ethernets.${ip.interface}, or its bond, bridge or vlan) in the one file that defines it`,
  addresses,
  dir,
  fileFor,
  glob: '*.yaml',
  matches: (name) => name.endsWith('.yaml') && !name.startsWith('.'),
  name: 'netplan',
  placeFor: () => place,
  removing: (ip) => `remove ${ip.address} from the addresses of every definition that has it`,
  withAddress,
  withoutAddress,
}
