import assert from 'node:assert/strict'
import {test} from 'node:test'

import {parseIpAddr, parseIpLink} from '../../src/net/ip-addr.js'

// Recorded from iproute2 6.1 (Debian 12), including a secondary address and a labelled alias.
const addr = String.raw`1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host \       valid_lft forever preferred_lft forever
2: eth0    inet 198.18.0.2/24 scope global eth0\       valid_lft forever preferred_lft forever
2: eth0    inet 198.18.0.100/24 scope global secondary eth0\       valid_lft forever preferred_lft forever
2: eth0    inet 198.18.0.101/32 scope global eth0:svc\       valid_lft forever preferred_lft forever
2: eth0    inet6 fe80::587b:11ff:fe1d:c197/64 scope link \       valid_lft forever preferred_lft forever
7: br-ha    inet 198.18.0.1/24 brd 198.18.0.255 scope global br-ha\       valid_lft forever preferred_lft forever
`

test('parses ip -o addr: every address with its interface, prefix and label', () => {
  const parsed = parseIpAddr(addr)
  assert.deepEqual(
    parsed.map((a) => `${a.index} ${a.interface} ${a.family} ${a.address}/${a.prefix} ${a.label}`),
    [
      '1 lo inet 127.0.0.1/8 lo',
      '1 lo inet6 ::1/128 lo',
      '2 eth0 inet 198.18.0.2/24 eth0',
      '2 eth0 inet 198.18.0.100/24 eth0',
      '2 eth0 inet 198.18.0.101/32 eth0:svc',
      '2 eth0 inet6 fe80::587b:11ff:fe1d:c197/64 eth0',
      '7 br-ha inet 198.18.0.1/24 br-ha',
    ],
  )
})

test('ignores what is not an address line; a prefix of an address is not the address', () => {
  assert.deepEqual(parseIpAddr('garbage\n\nRTNETLINK answers: Operation not permitted\n'), [])
  const parsed = parseIpAddr('2: eth0    inet 198.18.0.100/24 scope global eth0\\\n')
  assert.equal(parsed.some((a) => a.address === '198.18.0.10'), false)
})

test('parses ip -o link: names without @peer, MACs lowercased, UP flag', () => {
  const link = String.raw`1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
2: eth0@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\    link/ether 5A:7B:11:1D:C1:97 brd ff:ff:ff:ff:ff:ff link-netns ha-lab-secondary
3: eth1: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN mode DEFAULT group default qlen 1000\    link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff`
  assert.deepEqual(parseIpLink(link), [
    {index: 1, interface: 'lo', mac: undefined, up: true},
    {index: 2, interface: 'eth0', mac: '5a:7b:11:1d:c1:97', up: true},
    {index: 3, interface: 'eth1', mac: '02:00:00:00:00:01', up: false},
  ])
})
