import assert from 'node:assert/strict'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {HaError} from '../../src/core/errors.js'
import {requirePrerequisites} from '../../src/lab/lab.js'
import {labName, openLabDir, resolveLabDir} from '../../src/lab/layout.js'
import {persistentAddresses} from '../../src/lab/node.js'

describe('the lab boot\'s network config', () => {
  it('takes eth0 static addresses from interfaces and interfaces.d, and never one outside 198.18.0.0/15', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'ha-lab-ifaces-'))
    t.after(() => rm(root, {force: true, recursive: true}))
    await mkdir(join(root, 'etc/network/interfaces.d'), {recursive: true})
    await writeFile(
      join(root, 'etc/network/interfaces'),
      [
        'auto lo',
        'iface lo inet loopback',
        'auto eth0:0',
        'iface eth0:0 inet static',
        '    address 198.18.0.100/24   # the service IP',
        'iface eth0:1 inet static',
        '    address 192.0.2.10/24',
        'iface eth1 inet static',
        '    address 198.18.5.5/24',
        'iface eth0:2 inet dhcp',
        '    address 198.18.0.7/24',
        '',
      ].join('\n'),
    )
    await writeFile(join(root, 'etc/network/interfaces.d/extra'), 'iface eth0:3 inet static\n  address 198.19.1.1\n')
    assert.deepEqual(await persistentAddresses(root), ['198.18.0.100/24', '198.19.1.1/24'])
  })

  it('has no addresses when the node has no network config', async () => {
    assert.deepEqual(await persistentAddresses('/nonexistent-ha-lab-root'), [])
  })
})

describe('the lab directory', () => {
  it('comes from the option, then HA_LAB_DIR, then /var/lib/ha-lab', () => {
    assert.equal(resolveLabDir('/srv/lab/', {}), '/srv/lab')
    assert.equal(resolveLabDir(undefined, {HA_LAB_DIR: '/tmp/x/lab'}), '/tmp/x/lab')
    assert.equal(resolveLabDir(undefined, {}), '/var/lib/ha-lab')
  })

  it('refuses a relative path or one so close to / that wiping it would be a disaster', () => {
    assert.throws(() => resolveLabDir('lab', {}), /must be an absolute path/)
    assert.throws(() => resolveLabDir('/', {}), /too close to \//)
    assert.throws(() => resolveLabDir('/var', {}), /too close to \//)
  })
})

describe('the lab name', () => {
  it('is lab unless HA_LAB_NAME names another: short, lowercase, a letter first (it goes into namespace names)', () => {
    assert.equal(labName({}), 'lab')
    assert.equal(labName({HA_LAB_NAME: 'suite2'}), 'suite2')
    for (const bad of ['Lab', '2lab', 'lab-2', 'a/b', 'abcdefghi', ' lab']) assert.throws(() => labName({HA_LAB_NAME: bad}), /is not a lab name/, bad)
  })

  it('a lab directory is opened only under the name it was brought up with (an old state without one: lab)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ha-lab-name-'))
    try {
      assert.equal(openLabDir(dir, {HA_LAB_NAME: 'suite1'}), dir, 'no lab in it yet')
      await writeFile(join(dir, 'state.json'), JSON.stringify({name: 'suite1'}))
      assert.equal(openLabDir(dir, {HA_LAB_NAME: 'suite1'}), dir)
      assert.throws(() => openLabDir(dir, {}), (error: HaError) => /was brought up as lab "suite1" \(namespaces ha-suite1-\*\), and HA_LAB_NAME makes this one "lab"/.test(error.message) && error.actions[0] === 'run the command again with HA_LAB_NAME=suite1')
      await writeFile(join(dir, 'state.json'), JSON.stringify({loop_device: '/dev/loop0'}))
      assert.equal(openLabDir(dir, {}), dir)
      assert.throws(() => openLabDir(dir, {HA_LAB_NAME: 'suite1'}), (error: HaError) => error.actions[0] === 'unset HA_LAB_NAME, then run the command again')
    } finally {
      await rm(dir, {force: true, recursive: true})
    }
  })
})

describe('the lab\'s prerequisites', () => {
  it('names each missing binary and the package to install, before touching anything', () => {
    const without = (...gone: string[]) => (name: string) => (gone.includes(name) ? undefined : `/usr/bin/${name}`)
    assert.throws(
      () => requirePrerequisites(without('/usr/sbin/sshd', 'arping'), 0),
      (error: HaError) =>
        /\/usr\/sbin\/sshd \(package openssh-server\), arping \(package iputils-arping\)/.test(error.message) &&
        error.actions[0] === 'apt-get install openssh-server iputils-arping',
    )
    assert.doesNotThrow(() => requirePrerequisites(without(), 0))
  })

  it('needs root', () => {
    assert.throws(() => requirePrerequisites(() => '/bin/true', 1000), /the lab needs root/)
  })
})

describe('ha lab skew offsets', () => {
  it('reads seconds, minutes and hours ahead or behind, and 0', async () => {
    const {parseSkew} = await import('../../src/lab/faults.js')
    assert.equal(parseSkew('+10s'), 10)
    assert.equal(parseSkew('10'), 10)
    assert.equal(parseSkew('-2m'), -120)
    assert.equal(parseSkew('+1h'), 3600)
    assert.equal(parseSkew('0'), 0)
  })

  it('refuses anything else', async () => {
    const {parseSkew} = await import('../../src/lab/faults.js')
    for (const bad of ['soon', '+10x', '1.5s', '', '+', '--10s', '10s ago']) assert.equal(parseSkew(bad), undefined, bad)
  })
})
