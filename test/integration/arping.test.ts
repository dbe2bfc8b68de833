import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {after, before, describe, test} from 'node:test'

import {arpingUnlessHeldScript, interpretArping} from '../../src/net/arping.js'
import {missingPrerequisite} from '../helpers/prereq.js'

/**
 * Debian's iputils arping in -D mode, for real, between two network namespaces this test makes
 * (a veth pair, addresses from 198.18.0.0/15 only): what "free", "held", "cannot probe" look like.
 */
const skip = missingPrerequisite(['root', 'netns', 'arping'])
const a = `ha-arp-a-${process.pid}`
const b = `ha-arp-b-${process.pid}`
const ip = (...args: string[]) => execFileSync('ip', args, {stdio: ['ignore', 'pipe', 'pipe']}).toString()

function probeFrom(ns: string, address: string, iface: string) {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'sh', '-c', arpingUnlessHeldScript, 'ha-arping', address, iface], {encoding: 'utf8', timeout: 10_000})
  return interpretArping(r.status ?? -1, r.stdout, r.stderr)
}

describe('arping -D between two namespaces', {skip}, () => {
  let macA = ''
  before(() => {
    ip('netns', 'add', a)
    ip('netns', 'add', b)
    ip('link', 'add', `hav${process.pid % 100_000}`, 'netns', a, 'type', 'veth', 'peer', 'name', `hbv${process.pid % 100_000}`, 'netns', b)
    ip('-n', a, 'link', 'set', `hav${process.pid % 100_000}`, 'name', 'eth0')
    ip('-n', b, 'link', 'set', `hbv${process.pid % 100_000}`, 'name', 'eth0')
    for (const ns of [a, b]) ip('-n', ns, 'link', 'set', 'eth0', 'up')
    ip('-n', a, 'addr', 'add', '198.18.9.2/24', 'dev', 'eth0')
    ip('-n', b, 'addr', 'add', '198.18.9.3/24', 'dev', 'eth0')
    ip('-n', a, 'addr', 'add', '198.18.9.100/24', 'dev', 'eth0')
    macA = /link\/ether (\S+)/.exec(ip('-n', a, '-o', 'link', 'show', 'eth0'))![1]
  })
  after(() => {
    for (const ns of [a, b]) spawnSync('ip', ['netns', 'del', ns])
  })

  test('an address held by the peer answers, with the peer\'s MAC (exit 1 in -D mode)', () => {
    assert.deepEqual(probeFrom(b, '198.18.9.100', 'eth0'), {macs: [macA], state: 'answered'})
  })

  test('a free address is silence (exit 0, "Received 0 response(s)")', () => {
    assert.deepEqual(probeFrom(b, '198.18.9.150', 'eth0'), {state: 'silent'})
  })

  test('on the node holding the address the wire probe is skipped, not misread as "free"', () => {
    assert.deepEqual(probeFrom(a, '198.18.9.100', 'eth0'), {state: 'skipped_held_here'})
  })

  test('a missing interface, a down loopback and a non-ARPable loopback are errors, never "free"', () => {
    const missing = probeFrom(b, '198.18.9.150', 'nosuch0')
    assert.equal(missing.state, 'error')
    assert.match(missing.state === 'error' ? missing.message : '', /nosuch0 not available/)
    const down = probeFrom(b, '198.18.9.150', 'lo')
    assert.equal(down.state, 'error')
    ip('-n', b, 'link', 'set', 'lo', 'up')
    // iputils exits 0 here ("not ARPable"): the one case where its status alone would lie.
    const noArp = probeFrom(b, '198.18.9.150', 'lo')
    assert.deepEqual(noArp, {exit_code: 0, message: 'Interface "lo" is not ARPable', state: 'error'})
  })
})
