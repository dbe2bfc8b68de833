import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {addition, type BootConfigDriver, BootConfigRefusal, type BootFile, bootConfigDrivers, dryRun, filesHold, removals} from '../../src/drivers/boot-config/index.js'

/**
 * The NetworkManager, ifcfg and netplan drivers on the files admins write: every byte but the
 * address kept, adding then removing gives the file back as it was, and each file ha cannot edit
 * safely refused with the node-side file named and nothing to write. What each system then brings
 * up at boot is proven against the systems' own tools in test/integration/boot-config-vs-tools.test.ts.
 */
const {ifcfg, netplan, networkmanager} = bootConfigDrivers
const ip = {address: '198.18.1.10/24', interface: 'eth0'}

/** Add then remove through the steps' own functions: the one file changed, then given back byte for byte. */
function roundTrip(driver: BootConfigDriver, files: BootFile[], target: string): string {
  const added = addition(driver, files, ip)
  assert.ok(added, 'an edit was made')
  assert.equal(added.path, target)
  const after = files.map((f) => (f.path === added.path ? added : f))
  assert.ok(filesHold(driver, after, ip.address, true))
  assert.equal(addition(driver, after, ip), undefined, 'adding again changes nothing')
  const removed = removals(driver, after, ip.address)
  assert.deepEqual(removed, [{path: target, text: files.find((f) => f.path === target)!.text}], 'removing gives back the very bytes')
  return added.text
}

/** The refusal names the file and changes nothing (it is thrown, there is no text to write). */
function refused(work: () => unknown, file: string | RegExp, why: RegExp): void {
  assert.throws(work, (error: unknown) => {
    assert.ok(error instanceof BootConfigRefusal, String(error))
    assert.match(error.message, typeof file === 'string' ? new RegExp(`^${file.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `) : file)
    assert.match(error.message, why)
    assert.match(error.message, /ha did not change it/)
    assert.ok(error.actions.length > 0, 'says what to do')
    return true
  })
}

const nmDir = '/etc/NetworkManager/system-connections'
const keyfile = (iface: string, ipv4: string) => `[connection]\nid=${iface}\nuuid=5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03\ntype=ethernet\ninterface-name=${iface}\n\n[ethernet]\n\n[ipv4]\n${ipv4}\n\n[ipv6]\nmethod=ignore\n`

describe('networkmanager keyfiles', () => {
  test('the connection whose interface-name is the service interface gets the next addressN=, the others are left alone', () => {
    const eth0 = {path: `${nmDir}/ens-main.nmconnection`, text: keyfile('eth0', '# the node\naddress1=198.18.1.2/24,198.18.1.1\naddress3 = 198.18.1.3/24\ndns=198.18.1.1;\nmethod=manual')}
    const eth1 = {path: `${nmDir}/Wired connection 1.nmconnection`, text: keyfile('eth1', 'method=auto')}
    const text = roundTrip(networkmanager, [eth1, eth0], eth0.path)
    assert.match(text, /address3 = 198\.18\.1\.3\/24\naddress4=198\.18\.1\.10\/24\ndns=/)
  })

  test('a connection without addresses gets address1= at the end of its [ipv4] group', () => {
    const eth0 = {path: `${nmDir}/eth0.nmconnection`, text: keyfile('eth0', 'method=auto')}
    assert.match(roundTrip(networkmanager, [eth0], eth0.path), /\[ipv4\]\nmethod=auto\naddress1=198\.18\.1\.10\/24\n\n\[ipv6\]/)
  })

  test('refused: no connection for the interface, two of them, an address form it does not read, a method without addresses, a manual connection left without one, a gateway on the address', () => {
    const other = {path: `${nmDir}/eth1.nmconnection`, text: keyfile('eth1', 'method=manual')}
    refused(() => addition(networkmanager, [other], ip), `${nmDir}/*.nmconnection`, /no connection has interface-name=eth0/)
    const a = {path: `${nmDir}/a.nmconnection`, text: keyfile('eth0', 'method=manual')}
    const b = {path: `${nmDir}/b.nmconnection`, text: keyfile('eth0', 'method=manual')}
    refused(() => addition(networkmanager, [a, b], ip), `${nmDir}/*.nmconnection`, /a\.nmconnection and .*b\.nmconnection all have interface-name=eth0/)
    const legacy = {path: `${nmDir}/eth0.nmconnection`, text: keyfile('eth0', 'addresses=198.18.1.2/24;198.18.1.10/24;\nmethod=manual')}
    refused(() => addition(networkmanager, [legacy], {...ip, address: '198.18.1.11/24'}), legacy.path, /not an address in a form ha reads/)
    refused(() => removals(networkmanager, [legacy], ip.address), legacy.path, /not an address in a form ha reads/)
    const trailing = {path: `${nmDir}/eth0.nmconnection`, text: keyfile('eth0', 'address1=198.18.1.10/24 \nmethod=manual')}
    refused(() => removals(networkmanager, [trailing], ip.address), trailing.path, /line 10 .*not an address in a form ha reads/)
    const disabled = {path: `${nmDir}/eth0.nmconnection`, text: keyfile('eth0', 'method=disabled')}
    refused(() => addition(networkmanager, [disabled], ip), disabled.path, /method=disabled takes no static address/)
    const only = {path: `${nmDir}/eth0.nmconnection`, text: keyfile('eth0', 'address1=198.18.1.10/24\nmethod=manual')}
    refused(() => removals(networkmanager, [only], ip.address), only.path, /only address and its \[ipv4\] method is manual/)
    const gateway = {path: `${nmDir}/eth0.nmconnection`, text: keyfile('eth0', 'address1=198.18.1.10/24,198.18.1.1\naddress2=198.18.1.2/24\nmethod=manual')}
    refused(() => removals(networkmanager, [gateway], ip.address), gateway.path, /carries the gateway 198\.18\.1\.1/)
  })
})

const scripts = '/etc/sysconfig/network-scripts'

describe('ifcfg files', () => {
  test('IPADDRn/PREFIXn at the first free n from 1, after the last address line; other files left alone', () => {
    const eth0 = {path: `${scripts}/ifcfg-eth0`, text: 'TYPE=Ethernet\nDEVICE=eth0\nBOOTPROTO=none\n# the node\nIPADDR="198.18.1.2"\nNETMASK=255.255.255.0\nGATEWAY=198.18.1.1\nONBOOT=yes\n'}
    const lo = {path: `${scripts}/ifcfg-lo`, text: 'DEVICE=lo\nIPADDR=127.0.0.1\nNETMASK=255.0.0.0\n'}
    const text = roundTrip(ifcfg, [lo, eth0], eth0.path)
    assert.match(text, /NETMASK=255\.255\.255\.0\nIPADDR1=198\.18\.1\.10\nPREFIX1=24\nGATEWAY=/)
  })

  test('a file named for its connection, DEVICE naming the interface, is the one (NetworkManager names them so)', () => {
    const file = {path: `${scripts}/ifcfg-System_eth0`, text: 'DEVICE=eth0\nIPADDR0=198.18.1.2\nPREFIX0=24\nIPADDR1=198.18.1.3\nPREFIX1=24\n'}
    assert.match(roundTrip(ifcfg, [file], file.path), /PREFIX1=24\nIPADDR2=198\.18\.1\.10\nPREFIX2=24\n$/)
  })

  test('removing an address in the middle moves the later ones down a number, or initscripts would stop reading at the gap', () => {
    const text = 'DEVICE=eth0\nIPADDR=198.18.1.2\nPREFIX=24\nIPADDR1=198.18.1.3\nPREFIX1=24\nIPADDR2=198.18.1.10\nPREFIX2=24\nIPADDR3=198.18.1.4\nNETMASK3=255.255.255.0\n'
    const [edited] = removals(ifcfg, [{path: `${scripts}/ifcfg-eth0`, text}], ip.address)
    assert.equal(edited.text, 'DEVICE=eth0\nIPADDR=198.18.1.2\nPREFIX=24\nIPADDR1=198.18.1.3\nPREFIX1=24\nIPADDR2=198.18.1.4\nNETMASK2=255.255.255.0\n')
    assert.deepEqual(ifcfg.addresses(edited).map((a) => a.address), ['198.18.1.2/24', '198.18.1.3/24', '198.18.1.4/24'])
  })

  test('refused: no file for the interface, two files, a value it does not read, DHCP, a gateway on the address, an alias file', () => {
    refused(() => addition(ifcfg, [{path: `${scripts}/ifcfg-eth1`, text: 'DEVICE=eth1\n'}], ip), `${scripts}/ifcfg-*`, /no ifcfg file configures eth0/)
    refused(() => addition(ifcfg, [{path: `${scripts}/ifcfg-eth0`, text: ''}, {path: `${scripts}/ifcfg-x`, text: 'DEVICE=eth0\n'}], ip), `${scripts}/ifcfg-*`, /all configure eth0/)
    const variable = {path: `${scripts}/ifcfg-eth0`, text: 'DEVICE=eth0\nIPADDR1=$SERVICE_IP\n'}
    refused(() => addition(ifcfg, [variable], ip), variable.path, /line 2 \(IPADDR1=\$SERVICE_IP\) is not an address setting ha reads/)
    const twice = {path: `${scripts}/ifcfg-eth0`, text: 'DEVICE=eth0\nIPADDR1=198.18.1.10\nIPADDR1=198.18.1.11\n'}
    refused(() => removals(ifcfg, [twice], ip.address), twice.path, /not an address setting ha reads/)
    refused(() => addition(ifcfg, [{path: `${scripts}/ifcfg-eth0`, text: 'DEVICE=eth0\nBOOTPROTO=dhcp\n'}], ip), `${scripts}/ifcfg-eth0`, /BOOTPROTO=dhcp/)
    refused(() => removals(ifcfg, [{path: `${scripts}/ifcfg-eth0`, text: 'IPADDR1=198.18.1.10\nPREFIX1=24\nGATEWAY1=198.18.1.1\n'}], ip.address), `${scripts}/ifcfg-eth0`, /comes with GATEWAY1/)
    refused(() => removals(ifcfg, [{path: `${scripts}/ifcfg-eth0:1`, text: 'DEVICE=eth0:1\nIPADDR=198.18.1.10\nPREFIX=24\n'}], ip.address), `${scripts}/ifcfg-eth0:1`, /this alias file's own address/)
  })

  test('backups and editor leftovers are not read', () => {
    assert.ok(ifcfg.matches('ifcfg-eth0'))
    for (const name of ['ifcfg-eth0.bak', 'ifcfg-eth0~', 'ifcfg-eth0.rpmsave', 'ifup-eth', 'network-functions']) assert.ok(!ifcfg.matches(name), name)
  })
})

const np = '/etc/netplan'

describe('netplan files', () => {
  const block = `# written by the site
network:
  version: 2
  renderer: networkd
  ethernets:
    eth0:   # the service side
      dhcp4: false
      addresses:
        - 198.18.1.2/24    # the node's own
        - "198.18.1.3/24"
      routes:
        - {to: default, via: 198.18.1.1}
    eth1:
      dhcp4: true
`

  test('a block list gets a "- ADDRESS" line after its last item; comments, quotes, order and spacing kept', () => {
    const text = roundTrip(netplan, [{path: `${np}/01-site.yaml`, text: block}], `${np}/01-site.yaml`)
    assert.equal(text, block.replace('        - "198.18.1.3/24"\n', '        - "198.18.1.3/24"\n        - 198.18.1.10/24\n'))
  })

  test('a flow list gets ", ADDRESS" before its ]; a definition without addresses gets an addresses line', () => {
    const flow = 'network:\n  ethernets:\n    eth0: # x\n      addresses: [198.18.1.2/24,   198.18.1.3/24]  # two\n'
    assert.equal(roundTrip(netplan, [{path: `${np}/a.yaml`, text: flow}], `${np}/a.yaml`), flow.replace('198.18.1.3/24]', '198.18.1.3/24, 198.18.1.10/24]'))
    const none = 'network:\n  ethernets:\n    eth0:\n      dhcp4: true\n'
    assert.equal(roundTrip(netplan, [{path: `${np}/b.yaml`, text: none}], `${np}/b.yaml`), 'network:\n  ethernets:\n    eth0:\n      addresses: [198.18.1.10/24]\n      dhcp4: true\n')
    // An empty list gets the address in it; taking it out again leaves the list empty (the same to netplan).
    const empty = 'network:\n  ethernets:\n    eth0:\n      addresses: []\n'
    const filled = addition(netplan, [{path: `${np}/c.yaml`, text: empty}], ip)!
    assert.equal(filled.text, 'network:\n  ethernets:\n    eth0:\n      addresses: [198.18.1.10/24]\n')
    assert.deepEqual(removals(netplan, [filled], ip.address), [{path: `${np}/c.yaml`, text: empty}])
  })

  test('an anchored list shared by two definitions loses the address in both, as netplan reads it', () => {
    const anchored = 'network:\n  ethernets:\n    eth0:\n      addresses: &a\n        - 198.18.1.10/24\n        - 198.18.1.2/24\n    eth1:\n      addresses: *a\n'
    const [edited] = removals(netplan, [{path: `${np}/a.yaml`, text: anchored}], ip.address)
    assert.equal(edited.text, anchored.replace('        - 198.18.1.10/24\n', ''))
    assert.deepEqual(netplan.addresses(edited), [{address: '198.18.1.2/24', interface: 'eth0'}, {address: '198.18.1.2/24', interface: 'eth1'}])
  })

  test('the address leaves a bond, and every file that has it; the others stay as they were', () => {
    const bond = 'network:\n  bonds:\n    bond0:\n      interfaces: [eth0, eth1]\n      addresses:\n        - 198.18.1.10/24\n        - 198.18.1.2/24\n'
    const other = 'network:\n  ethernets:\n    eth9:\n      addresses: [10.9.0.2/16]\n'
    const edits = removals(netplan, [{path: `${np}/a.yaml`, text: bond}, {path: `${np}/b.yaml`, text: other}], ip.address)
    assert.deepEqual(edits, [{path: `${np}/a.yaml`, text: bond.replace('        - 198.18.1.10/24\n', '')}])
  })

  test('refused: a file cloud-init writes, the interface nowhere or in two files, a flow mapping, addresses that are no list, YAML it cannot read', () => {
    const cloud = '# This file is generated from information provided by the datasource.  Changes\n# to it will not persist across an instance reboot.\nnetwork:\n  ethernets:\n    eth0:\n      dhcp4: true\n  version: 2\n'
    refused(() => addition(netplan, [{path: `${np}/50-cloud-init.yaml`, text: cloud}], ip), `${np}/50-cloud-init.yaml`, /written by cloud-init/)
    refused(() => addition(netplan, [{path: `${np}/a.yaml`, text: 'network:\n  ethernets:\n    eth1: {}\n'}], ip), `${np}/*.yaml`, /no file defines eth0/)
    const eth0 = 'network:\n  ethernets:\n    eth0:\n      dhcp4: true\n'
    refused(() => addition(netplan, [{path: `${np}/a.yaml`, text: eth0}, {path: `${np}/b.yaml`, text: eth0}], ip), `${np}/*.yaml`, /a\.yaml and .*b\.yaml all define eth0: netplan merges them/)
    refused(() => addition(netplan, [{path: `${np}/a.yaml`, text: 'network:\n  ethernets:\n    eth0: {dhcp4: true}\n'}], ip), `${np}/a.yaml`, /flow mapping/)
    refused(() => addition(netplan, [{path: `${np}/a.yaml`, text: 'network:\n  ethernets:\n    eth0:\n      addresses: 198.18.1.2/24\n'}], ip), `${np}/a.yaml`, /addresses is not a list/)
    refused(() => netplan.withAddress({path: `${np}/a.yaml`, text: 'network: [\n'}, ip), `${np}/a.yaml`, /is not YAML netplan reads/)
  })
})

test('a dry run of every edit refuses before the first: the refusal of the second IP is thrown with nothing written', () => {
  const eth0 = {path: `${nmDir}/eth0.nmconnection`, text: keyfile('eth0', 'method=manual')}
  const ips = [ip, {address: '198.18.2.10/24', interface: 'eth1'}]
  refused(() => dryRun(networkmanager, [eth0], ips, 'add'), `${nmDir}/*.nmconnection`, /interface-name=eth1/)
  const end = dryRun(networkmanager, [eth0], [ip, {address: '198.18.1.11/24', interface: 'eth0'}], 'add')
  assert.match(end[0].text, /address1=198\.18\.1\.10\/24\naddress2=198\.18\.1\.11\/24\n/)
})
