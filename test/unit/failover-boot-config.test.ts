import assert from 'node:assert/strict'
import {test} from 'node:test'

import {parseConfig} from '../../src/config/load.js'
import {bootAddresses, withAddress, withoutAddress} from '../../src/drivers/boot-config/ifupdown.js'
import {fstabMounts, fstabWith, fstabWithout} from '../../src/drivers/storage/fstab.js'

const interfaces = `# the lab's
auto lo
iface lo inet loopback

auto eth0:0
iface eth0:0 inet static
    address 198.18.0.100/24
    # keep me

allow-hotplug eth1
iface eth1 inet dhcp
`

test('a service IP leaves /etc/network/interfaces with its stanza and auto line, everything else kept', () => {
  const out = withoutAddress(interfaces, '198.18.0.100/24')
  assert.deepEqual(bootAddresses(out), [])
  assert.match(out, /auto lo\niface lo inet loopback/)
  assert.match(out, /allow-hotplug eth1\niface eth1 inet dhcp/)
  assert.doesNotMatch(out, /eth0:0/)
  assert.equal(withoutAddress(out, '198.18.0.100/24'), out, 'idempotent')
})

test('a service IP goes in as an alias stanza on the first free label, once', () => {
  const out = withAddress('auto eth0:0\niface eth0:0 inet static\n    address 198.18.0.7/24\n', 'eth0', '198.18.0.100/24')
  assert.match(out, /auto eth0:1\niface eth0:1 inet static\n {4}address 198\.18\.0\.100\/24\n$/)
  assert.equal(withAddress(out, 'eth0', '198.18.0.100/24'), out)
  assert.deepEqual(bootAddresses(out), ['198.18.0.7/24', '198.18.0.100/24'])
})

test('the storage line leaves and enters /etc/fstab by its mount point', () => {
  const fstab = 'proc /proc proc defaults 0 0\n/dev/loop0 /var/opt/sun/xvm/ ext4 defaults 0 0\n'
  assert.ok(fstabMounts(fstab, '/var/opt/sun/xvm'))
  const without = fstabWithout(fstab, '/var/opt/sun/xvm')
  assert.equal(without, 'proc /proc proc defaults 0 0\n')
  assert.equal(fstabWith(without, '/dev/loop0', '/var/opt/sun/xvm', 'ext4'), 'proc /proc proc defaults 0 0\n/dev/loop0 /var/opt/sun/xvm ext4 defaults 0 0\n')
})

test('failover config errors name the file, the line and the field', () => {
  const base = 'data_dir: /d\nnodes:\n  primary: {hostname: a}\n  secondary: {hostname: b}\n'
  assert.throws(() => parseConfig(`${base}failover:\n  verify:\n    status: 200\n`, '/etc/ha/ha.yaml'), /\/etc\/ha\/ha\.yaml:6: failover\.verify: set exactly one of http or argv/)
  assert.throws(() => parseConfig(`${base}services:\n  stop: /etc/init.d/xvm stop\n`, '/etc/ha/ha.yaml'), /\/etc\/ha\/ha\.yaml:6: services\.stop: must be array, not string/)
  assert.throws(() => parseConfig(`${base}failover:\n  reboot_timeout: soon\n`, 'x.yaml'), /x\.yaml:6: failover\.reboot_timeout: "soon" is not a duration/)
  const ok = parseConfig(`${base}storage: {kind: manual}\nfailover: {verify: {http: 'http://198.18.1.10:8080/'}}\n`, 'x.yaml')
  assert.equal(ok.failover.verify?.status, 200)
  assert.equal(ok.failover.reboot, true)
})
