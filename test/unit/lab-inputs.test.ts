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

describe('the guest lab\'s inputs', () => {
  it('a guest lab also needs libvirtd, virsh and QEMU, named with their packages', () => {
    const without = (...gone: string[]) => (name: string) => (gone.includes(name) ? undefined : `/usr/bin/${name}`)
    assert.doesNotThrow(() => requirePrerequisites(without('virsh'), 0), 'a lab without guests does not')
    assert.throws(
      () => requirePrerequisites(without('/usr/sbin/libvirtd', 'virsh', '/usr/bin/qemu-system-x86_64'), 0, false, true),
      (error: HaError) =>
        /\/usr\/sbin\/libvirtd \(package libvirt-daemon\), virsh \(package libvirt-clients\), .*\/usr\/bin\/qemu-system-x86_64 \(package qemu-system-x86\)/.test(error.message) &&
        /^apt-get install libvirt-daemon libvirt-clients .*qemu-system-x86$/.test(error.actions[0]),
    )
  })
})

describe('the cluster lab\'s inputs', () => {
  it('a cluster lab also needs corosync and pacemaker\'s tools, named with their packages', () => {
    const without = (...gone: string[]) => (name: string) => (gone.includes(name) ? undefined : `/usr/bin/${name}`)
    assert.doesNotThrow(() => requirePrerequisites(without('pacemakerd'), 0), 'a lab without a cluster does not')
    assert.throws(
      () => requirePrerequisites(without('pacemakerd', 'crm_mon'), 0, true),
      (error: HaError) => /pacemakerd \(package pacemaker\), crm_mon \(package pacemaker-cli-utils\)/.test(error.message) && error.actions[0] === 'apt-get install pacemaker pacemaker-cli-utils',
    )
  })

  it('reads crm_mon\'s XML: DC, quorum, each node online or unclean, the fencing history', async () => {
    const {parseCrmMon} = await import('../../src/lab/cluster.js')
    const xml = `<pacemaker-result api-version="2.25" request="crm_mon --output-as=xml">
  <summary><stack type="corosync"/><current_dc present="true" version="2.1.5" name="ctl-a" id="1" with_quorum="true" mixed_version="false"/></summary>
  <nodes>
    <node name="ctl-a" id="1" online="true" standby="false" unclean="false" type="member"/>
    <node name="ctl-b" id="2" online="false" standby="false" unclean="true" type="member"/>
  </nodes>
  <node_history><node name="ctl-a"/></node_history>
  <fence_history>
    <fence_event action="reboot" target="ctl-b" client="pacemaker-controld.132" origin="ctl-a" status="success" extended-status="x" delegate="ctl-a" completed="2026-12-07 15:34:55Z"/>
  </fence_history>
</pacemaker-result>`
    assert.deepEqual(parseCrmMon(xml), {
      dc: 'ctl-a',
      fencing: [{action: 'reboot', completed: '2026-12-07 15:34:55Z', delegate: 'ctl-a', origin: 'ctl-a', status: 'success', target: 'ctl-b'}],
      nodes: [
        {name: 'ctl-a', online: true, unclean: false},
        {name: 'ctl-b', online: false, unclean: true},
      ],
      quorate: true,
    })
    const noDc = parseCrmMon('<pacemaker-result><summary><current_dc present="false" with_quorum="false"/></summary><nodes></nodes></pacemaker-result>')
    assert.deepEqual([noDc.dc, noDc.quorate, noDc.nodes], [null, false, []])
    // A fragment or a garbled document is refused (clusterView reports it as the node's error), never read as a view.
    assert.throws(() => parseCrmMon('<summary><current_dc present="false" with_quorum="false"/></summary><nodes></nodes>'), /not XML: more after the root element/)
  })

  it('fence_ha_lab answers metadata, list and validate-all by itself, and refuses a node it does not know', async () => {
    const {spawnSync} = await import('node:child_process')
    const {fenceAgentScript} = await import('../../src/lab/bmc.js')
    const dir = await mkdtemp(join(tmpdir(), 'ha-fence-agent-'))
    try {
      const agent = join(dir, 'fence_ha_lab')
      await writeFile(agent, fenceAgentScript(process.execPath), {mode: 0o755})
      const call = (args: string[], input = '') => spawnSync(agent, args, {encoding: 'utf8', input})
      const meta = call(['-o', 'metadata'])
      assert.equal(meta.status, 0)
      assert.match(meta.stdout, /<resource-agent name="fence_ha_lab"/)
      for (const action of ['on', 'off', 'reboot', 'status', 'list', 'monitor', 'metadata']) assert.match(meta.stdout, new RegExp(`<action name="${action}"`))
      // Pacemaker's way: key=value lines on stdin.
      assert.equal(call([], 'action=list\n').stdout, 'ctl-a\nctl-b\n')
      assert.equal(call([], 'action=validate-all\nport=ctl-b\n').status, 0)
      const unknown = call([], 'action=off\nport=ctl-z\n')
      assert.equal(unknown.status, 1)
      assert.match(unknown.stderr, /no such node: ctl-z/)
      // No BMC outside a lab node: a failure, never a success.
      const nobmc = call(['-o', 'off', '-n', 'ctl-b'])
      assert.equal(nobmc.status, 1)
      assert.match(nobmc.stderr, /cannot reach the BMC/)
    } finally {
      await rm(dir, {force: true, recursive: true})
    }
  })
})
