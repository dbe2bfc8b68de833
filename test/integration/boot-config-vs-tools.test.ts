import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, test} from 'node:test'

import {addition, type BootConfigDriver, bootConfigDrivers, type BootFile, removals} from '../../src/drivers/boot-config/index.js'
import {bootTools} from '../helpers/boot-tools.js'
import {tempDir} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {seededRandom} from '../helpers/seeded-random.js'

/**
 * Differential tests of the boot configuration drivers: the address set each system brings up at
 * boot, as its own tool reads the file, must be what ha intended after ha's edit, and the other
 * interfaces' sets stay as they were. The oracles are the systems' own readers, never a parser of
 * ours: NetworkManager's keyfile reader and writer (`nmcli --offline connection modify`, which
 * reads a keyfile on stdin and prints the normalised one), netplan's generator (`generate
 * --root-dir`: the systemd-networkd .network files it renders, whose Address= lines are the
 * truth), and for ifcfg bash itself (`set -a; . FILE; env`: the variables the initscripts see,
 * read with their rule for IPADDR, IPADDR0, IPADDR1, …).
 *
 * Inputs are generated from a seed (other interfaces, comments, existing addresses, several
 * address keys, odd spacing and quoting). A failure prints the seed; HA_BOOT_SEED=N replays it,
 * HA_BOOT_ROUNDS=N sets how many files each case tries.
 */
const seed = Number(process.env.HA_BOOT_SEED ?? Math.floor(Math.random() * 2 ** 31))
const rounds = Number(process.env.HA_BOOT_ROUNDS ?? 20)
const skip = missingPrerequisite(['boot-tools'])

type Rng = () => number
const pick = <T>(r: Rng, list: readonly T[]): T => list[Math.floor(r() * list.length)]
const chance = (r: Rng, p = 0.5) => r() < p
const sorted = (list: string[]) => [...list].sort()

/** Distinct addresses: 10.x.y.z for the nodes' own, 198.18.1.n for service IPs. */
function addressMaker(r: Rng): (service?: boolean) => string {
  const used = new Set<string>()
  return (service = false) => {
    for (;;) {
      const a = service ? `198.18.1.${10 + Math.floor(r() * 200)}` : `10.${Math.floor(r() * 250)}.${Math.floor(r() * 250)}.${1 + Math.floor(r() * 250)}`
      if (!used.has(a)) {
        used.add(a)
        return a
      }
    }
  }
}

interface Case {
  /** The files as generated; the target interface's file is among them. */
  files: BootFile[]
  /** Service IPs to add (not in the files). */
  ips: Array<{address: string; interface: string}>
  /** A service IP already in the target file, as an admin would have written it (to be removed). */
  present: {address: string; interface: string}
  /** The refusal the removal must meet, where the generator made a file whose edit would break it. */
  refusal?: RegExp
}

/** Each system's truth: the addresses it brings up at boot, by interface. */
type Oracle = (files: BootFile[], dir: string) => Map<string, string[]>

/**
 * One file set through ha: every service IP added, then removed, and the one already there
 * removed; after each, the tool's address sets are compared with what ha intended.
 */
function differential(driver: BootConfigDriver, made: Case, oracle: Oracle, dir: string, where: string): void {
  const before = oracle(made.files, join(dir, 'before'))
  const target = 'eth0'
  const apply = (files: BootFile[], edits: BootFile[]) => files.map((f) => edits.find((e) => e.path === f.path) ?? f)
  let now = made.files
  for (const ip of made.ips) {
    const edit = addition(driver, now, ip)
    assert.ok(edit, `${where}: ha made no edit for ${ip.address}`)
    now = apply(now, [edit])
  }

  const added = oracle(now, join(dir, 'added'))
  const intended = sorted([...(before.get(target) ?? []), ...made.ips.map((ip) => ip.address)])
  assert.deepEqual(sorted(added.get(target) ?? []), intended, `${where}: after adding, the tool brings up other addresses on ${target} than ha intended`)
  for (const [iface, list] of before) if (iface !== target) assert.deepEqual(added.get(iface), list, `${where}: ${iface} changed`)
  for (const f of made.files) if (!now.some((n) => n.path === f.path && n.text === f.text) && f.path !== driver.fileFor(made.files, made.ips[0]).path) assert.fail(`${where}: ${f.path} was edited`)

  for (const ip of made.ips) now = apply(now, removals(driver, now, ip.address))
  assert.deepEqual(now, made.files, `${where}: adding then removing did not give back the very bytes`)

  if (made.refusal) {
    assert.throws(() => removals(driver, made.files, made.present.address), made.refusal, `${where}: ha should have refused`)
    return
  }

  const gone = apply(made.files, removals(driver, made.files, made.present.address))
  const after = oracle(gone, join(dir, 'removed'))
  const left = (before.get(target) ?? []).filter((a) => a.split('/')[0] !== made.present.address.split('/')[0])
  assert.ok((before.get(target) ?? []).includes(made.present.address), `${where}: the generated file does not bring ${made.present.address} up (a bad generator)`)
  assert.deepEqual(sorted(after.get(target) ?? []), sorted(left), `${where}: after removing ${made.present.address}, the tool brings up other addresses than ha intended`)
  for (const [iface, list] of before) if (iface !== target) assert.deepEqual(after.get(iface), list, `${where}: ${iface} changed`)
}

function runRounds(name: string, driver: BootConfigDriver, generate: (r: Rng, withPresent: boolean) => BootFile[], oracle: Oracle, t: {diagnostic(m: string): void}, dir: string): void {
  t.diagnostic(`seed ${seed} (HA_BOOT_SEED=${seed} replays it), ${rounds} rounds; tools: ${bootTools.versions()}`)
  for (let round = 0; round < rounds; round++) {
    const r = seededRandom(seed + round * 7919)
    const newAddress = addressMaker(r)
    const ips = Array.from({length: 1 + Math.floor(r() * 2)}, () => ({address: `${newAddress(true)}/24`, interface: 'eth0'}))
    const present = {address: `${newAddress(true)}/24`, interface: 'eth0'}
    presentAddress = present.address
    makeAddress = newAddress
    expectedRefusal = undefined
    const files = generate(r, true)
    const refusal = expectedRefusal
    const where = `${name}: seed ${seed}, round ${round} (HA_BOOT_SEED=${seed} replays it)\n${files.map((f) => `--- ${f.path}\n${f.text}`).join('\n')}`
    try {
      differential(driver, {files, ips, present, refusal}, oracle, join(dir, String(round)), where)
    } catch (error) {
      if (error instanceof assert.AssertionError || !(error instanceof Error)) throw error
      throw new Error(`${where}\n${error.message}`, {cause: error})
    }
  }
}

// What the generators put in the target interface's file: the service IP already there, and the node's own.
let presentAddress = ''
let makeAddress: (service?: boolean) => string = () => ''
let expectedRefusal: RegExp | undefined

const nmDir = '/etc/NetworkManager/system-connections'

function keyfile(r: Rng, iface: string, id: string, present?: string): string {
  const eq = () => pick(r, ['=', '=', ' = ', '= '])
  const comment = () => (chance(r, 0.3) ? `# ${pick(r, ['site', 'do not edit by hand', 'ticket 4711'])}\n` : '')
  const numbers = [1, 2, 3, 4, 5, 6, 7, 8, 9].sort(() => r() - 0.5)
  const lines: string[] = []
  const own = Math.floor(r() * 4)
  for (let i = 0; i < own; i++) {
    const key = pick(r, ['address', 'address', 'addresses'])
    const gateway = i === 0 && chance(r, 0.4) ? `,10.0.0.1` : ''
    lines.push(`${comment()}${key}${numbers[i]}${eq()}${makeAddress()}/${pick(r, [8, 16, 24, 28])}${gateway}`)
  }

  if (present) lines.splice(Math.floor(r() * (lines.length + 1)), 0, `address${numbers[own]}${eq()}${present}`)
  if (chance(r)) lines.push(`dns${eq()}10.0.0.53;`)
  // auto (DHCP) takes static addresses beside it; manual needs one.
  const method = own + (present ? 1 : 0) > 0 && chance(r, 0.75) ? 'manual' : 'auto'
  lines.push(`method${eq()}${method}`)
  // NetworkManager does not activate a manual connection without an address: ha must not leave one so.
  if (present && own === 0 && method === 'manual') expectedRefusal = /the connection's only address and its \[ipv4\] method is manual/
  const uuid = `5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e${String(10 + Math.floor(r() * 89))}`
  const tail = chance(r) ? '\n[ipv6]\naddr-gen-mode=default\nmethod=auto\n' : '\n[ipv6]\nmethod=ignore\n'
  return `${comment()}[connection]\nid${eq()}${id}\nuuid=${uuid}\ntype=ethernet\n${comment()}interface-name${eq()}${iface}\n\n[ethernet]\n${chance(r) ? 'mtu=1500\n' : ''}\n[ipv4]\n${lines.join('\n')}\n${tail}${chance(r) ? '\n[proxy]\n' : ''}`
}

/** What NetworkManager reads: the keyfile through its own reader and writer, its [ipv4] addressN= lines. */
const nmOracle: Oracle = (files) => {
  const sets = new Map<string, string[]>()
  for (const f of files) {
    const id = /^id\s*=\s*(.*)$/m.exec(f.text)![1]
    const out = spawnSync(bootTools.nmcli, ['--offline', 'connection', 'modify', 'connection.id', id], {encoding: 'utf8', env: bootTools.env, input: f.text})
    assert.equal(out.status, 0, `nmcli --offline refused ${f.path}: ${out.stderr}\n${f.text}`)
    const iface = /^interface-name=(.*)$/m.exec(out.stdout)![1]
    const ipv4 = /^\[ipv4\]\n([^[]*)/m.exec(out.stdout)?.[1] ?? ''
    sets.set(iface, [...ipv4.matchAll(/^address\d+=([^,\n]+)/gm)].map((m) => m[1]))
  }

  return sets
}

const nmFiles = (r: Rng) => [
  {path: `${nmDir}/${pick(r, ['eth0', 'System eth0', 'Wired connection 1'])}.nmconnection`, text: keyfile(r, 'eth0', 'main link', presentAddress)},
  {path: `${nmDir}/eth1.nmconnection`, text: keyfile(r, 'eth1', 'eth1')},
]

const scripts = '/etc/sysconfig/network-scripts'

function ifcfgFile(r: Rng, iface: string, present?: string): string {
  const quote = (v: string) => pick(r, [v, `"${v}"`, `'${v}'`])
  const comment = () => (chance(r, 0.3) ? `# ${pick(r, ['Generated by the installer', 'site network'])}\n` : '')
  const style = pick(r, [['', '1', '2', '3'], ['0', '1', '2', '3']])
  const own = Math.floor(r() * 3) + (present ? 0 : 1)
  const values = Array.from({length: own}, () => makeAddress())
  if (present) values.splice(Math.floor(r() * (values.length + 1)), 0, present.split('/')[0])
  const lines = values.map((v, i) => {
    const suffix = style[i]
    const mask = chance(r) ? `PREFIX${suffix}=${quote('24')}` : `NETMASK${suffix}=${quote('255.255.255.0')}`
    return `${comment()}IPADDR${suffix}=${quote(v)}${chance(r, 0.2) ? '   # an address' : ''}\n${mask}`
  })
  const device = chance(r, 0.7) ? `DEVICE=${quote(iface)}\n` : ''
  return `${comment()}TYPE=Ethernet\n${device}BOOTPROTO=${quote(pick(r, ['none', 'static']))}\nONBOOT=yes\n${lines.join('\n')}\n${chance(r) ? 'GATEWAY=10.0.0.1\n' : ''}${chance(r) ? 'DNS1=10.0.0.53\n' : ''}`
}

/** What initscripts bring up: the variables bash sets from the file, IPADDR, IPADDR0, IPADDR1, … in their order (from IPADDR2 on, the first missing one ends the list). */
const ifcfgOracle: Oracle = (files, dir) => {
  mkdirSync(dir, {recursive: true})
  const sets = new Map<string, string[]>()
  for (const f of files) {
    const path = join(dir, f.path.split('/').at(-1)!)
    writeFileSync(path, f.text)
    const out = spawnSync('bash', ['-c', 'set -a; . "$1"; env -0', 'oracle', path], {encoding: 'utf8', env: {PATH: '/usr/bin:/bin'}})
    assert.equal(out.status, 0, `bash could not read ${f.path}: ${out.stderr}`)
    const env = new Map(out.stdout.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
    const list: string[] = []
    for (const suffix of ['', ...Array.from({length: 256}, (_, n) => String(n))]) {
      const address = env.get(`IPADDR${suffix}`)
      if (!address) {
        if (suffix !== '' && Number(suffix) >= 2) break
        continue
      }

      const mask = env.get(`NETMASK${suffix}`)
      const prefix = env.get(`PREFIX${suffix}`) ?? (mask ? String(mask.split('.').map((o) => Number(o).toString(2)).join('').replaceAll('0', '').length) : '')
      list.push(`${address}/${prefix}`)
    }

    sets.set(env.get('DEVICE') ?? f.path.split('ifcfg-')[1], list)
  }

  return sets
}

const ifcfgFiles = (r: Rng) => [
  {path: `${scripts}/ifcfg-${pick(r, ['eth0', 'eth0', 'System_eth0'])}`, text: ''},
  {path: `${scripts}/ifcfg-eth1`, text: ifcfgFile(r, 'eth1')},
].map((f, i) => (i === 0 ? {...f, text: ifcfgFile(r, 'eth0', presentAddress).replace(/^(?!.*DEVICE=)/s, f.path.endsWith('System_eth0') ? 'DEVICE=eth0\n' : '')} : f))

function netplanFile(r: Rng, present?: string): string {
  const ind = pick(r, ['  ', '    '])
  const quote = (v: string) => pick(r, [v, `"${v}"`, `'${v}'`])
  const comment = () => (chance(r, 0.3) ? `  # ${pick(r, ['primary', 'the service side'])}` : '')
  const list = (iface: string, values: string[]) => {
    if (values.length === 0 && chance(r)) return ''
    if (chance(r)) return `${ind.repeat(3)}addresses: [${values.map(quote).join(pick(r, [', ', ',', ',  ']))}]${comment()}\n`
    const under = pick(r, ['', ind])
    return `${ind.repeat(3)}addresses:${comment()}\n${values.map((v) => `${ind.repeat(3)}${under}- ${quote(v)}${comment()}\n`).join('')}`
  }

  const own = Array.from({length: Math.floor(r() * 3)}, () => `${makeAddress()}/${pick(r, [16, 24])}`)
  if (present) own.splice(Math.floor(r() * (own.length + 1)), 0, present)
  const eth0 = `${ind.repeat(2)}eth0:${comment()}\n${ind.repeat(3)}dhcp4: ${pick(r, ['false', 'no', 'true'])}\n${list('eth0', own)}`
  const eth1 = `${ind.repeat(2)}eth1:\n${list('eth1', [`${makeAddress()}/24`]) || `${ind.repeat(3)}dhcp4: true\n`}`
  const devices = chance(r) ? eth0 + eth1 : eth1 + eth0
  return `# ${pick(r, ['site network', 'written by hand'])}\nnetwork:\n${ind}version: 2\n${chance(r) ? `${ind}renderer: networkd\n` : ''}${ind}ethernets:\n${devices}`
}

/** What systemd-networkd would apply: netplan's generator renders the files, each .network's Address= lines. */
const netplanOracle: Oracle = (files, dir) => {
  mkdirSync(join(dir, 'etc/netplan'), {recursive: true})
  for (const f of files) writeFileSync(join(dir, f.path), f.text, {mode: 0o600})
  const out = spawnSync(bootTools.netplanGenerate, ['--root-dir', dir], {encoding: 'utf8', env: bootTools.env})
  assert.equal(out.status, 0, `netplan generate refused: ${out.stderr}\n${files.map((f) => f.text).join('\n---\n')}`)
  const sets = new Map<string, string[]>()
  const networkDir = join(dir, 'run/systemd/network')
  for (const name of readdirSync(networkDir).filter((n) => n.endsWith('.network'))) {
    const text = readFileSync(join(networkDir, name), 'utf8')
    sets.set(/^Name=(.*)$/m.exec(text)![1], [...text.matchAll(/^Address=(.*)$/gm)].map((m) => m[1]))
  }

  return sets
}

const netplanFiles = (r: Rng) => [
  {path: `/etc/netplan/${pick(r, ['01-netcfg', '60-site', '00-installer-config'])}.yaml`, text: netplanFile(r, presentAddress)},
  ...(chance(r) ? [{path: '/etc/netplan/90-extra.yaml', text: `network:\n  version: 2\n  ethernets:\n    eth2:\n      addresses: [${makeAddress()}/24]\n`}] : []),
]

describe('boot configuration: what each system brings up after ha\'s edit, as its own tool reads it', {skip}, () => {
  test('NetworkManager keyfiles, read by nmcli --offline (NetworkManager\'s own keyfile reader and writer)', (t) => {
    runRounds('networkmanager', bootConfigDrivers.networkmanager, nmFiles, nmOracle, t, tempDir(t))
  })

  test('ifcfg files, read by bash as initscripts source them', (t) => {
    runRounds('ifcfg', bootConfigDrivers.ifcfg, ifcfgFiles, ifcfgOracle, t, tempDir(t))
  })

  test('netplan files, rendered by netplan generate into systemd-networkd .network files', (t) => {
    runRounds('netplan', bootConfigDrivers.netplan, netplanFiles, netplanOracle, t, tempDir(t))
  })

  test('the oracles can fail: an address ha did not intend is seen by each tool', (t) => {
    const dir = tempDir(t)
    const eth0 = {path: `${nmDir}/eth0.nmconnection`, text: '[connection]\nid=x\nuuid=5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03\ntype=ethernet\ninterface-name=eth0\n\n[ipv4]\naddress7=198.18.1.99/24\nmethod=manual\n'}
    assert.deepEqual(nmOracle([eth0], dir).get('eth0'), ['198.18.1.99/24'])
    assert.deepEqual(ifcfgOracle([{path: `${scripts}/ifcfg-eth0`, text: 'IPADDR1="198.18.1.99"\nPREFIX1=24\nIPADDR3=10.0.0.1\nPREFIX3=8\n'}], join(dir, 'ifcfg')).get('eth0'), ['198.18.1.99/24'])
    assert.deepEqual(netplanOracle([{path: '/etc/netplan/a.yaml', text: 'network:\n  ethernets:\n    eth0:\n      addresses: ["198.18.1.99/24"]\n'}], join(dir, 'np')).get('eth0'), ['198.18.1.99/24'])
  })
})
