import assert from 'node:assert/strict'
import {randomUUID} from 'node:crypto'
import {existsSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {runInNode} from '../../src/lab/container.js'
import {guestDomainXml, heartbeats, serialLogPath} from '../../src/lab/guest-domain.js'
import {parseVirshList} from '../../src/lab/guests.js'
import {labDown, labHalt, labName, type LabNode, labNodes, nodePaths} from '../../src/lab/lab.js'
import {ha} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {clusterLab, clusterNames, otherNode} from './cluster-helpers.js'

/**
 * Issue 18 under Pacemaker: the guests move with the group that ocf:ha:controller runs, by restart
 * (shut down in the group's stop, started in its start), judged from outside: both nodes' virsh
 * list sampled during each move, the guest's own heartbeat on its serial port (each node's
 * /var/log), crm_mon. Its own lab with both a cluster and a libvirtd per node (ha lab up --cluster
 * --guests), the lab's heartbeat guest defined on both nodes, always taken down.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping', 'pacemaker', 'libvirt'])
const labDir = `/tmp/ha-lab-${labName()}-pcmk-guests-${process.pid}`
const {applySetup, explained, inNode, runningOn, runsOn, within} = clusterLab(labDir)
const guest = 'heartbeat1'

const stateOn = async (node: LabNode): Promise<string> => {
  const r = await runInNode(labDir, node, ['virsh', '-c', 'qemu:///system', 'list', '--all'], {timeoutMs: 20_000})
  return parseVirshList(r.stdout).find((d) => d.name === guest)?.state ?? 'absent'
}

const beats = (node: LabNode): number[] => {
  const file = join(nodePaths(labDir, node).root, serialLogPath(guest))
  return existsSync(file) ? heartbeats(readFileSync(file, 'latin1')) : []
}

/** Until the guest runs on `node` and its heartbeat there has gone past `past` (the count before), or undefined. */
const beatsOn = (node: LabNode, past: number, seconds: number) => within(seconds, async () => ((await stateOn(node)) === 'running' && beats(node).length > past + 2 ? true : undefined), 500)

/** Both nodes' state of the guest, sampled until stopped (a node that is off reads 'unreadable'). */
function sampler() {
  const samples: Array<Record<LabNode, string>> = []
  let running = true
  const loop = (async () => {
    while (running) {
      const [secondary, primary] = [await stateOn('secondary').catch(() => 'unreadable'), await stateOn('primary').catch(() => 'unreadable')]
      samples.push({primary, secondary})
    }
  })()
  return async () => {
    running = false
    await loop
    return samples
  }
}

const bothRunning = (samples: Array<Record<LabNode, string>>) => samples.filter((s) => s.primary === 'running' && s.secondary === 'running')

describe('the guests move with the group under Pacemaker (ha lab up --cluster --guests)', {skip}, () => {
  before(async () => {
    const r = ha(['lab', 'up', '--cluster', '--guests', '--lab-dir', labDir, '--json'], {timeoutMs: 180_000})
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.ok(await within(60, async () => ((await inNode('primary', ['crm_mon', '-1'])).stdout.includes('Online: [ ctl-a ctl-b ]') ? true : undefined)), 'the cluster formed')
    // As an admin keeps a clustered guest: one definition, one UUID, on both nodes.
    const xml = guestDomainXml(guest).replace('  <name>', `  <uuid>${randomUUID()}</uuid>\n  <name>`)
    for (const node of labNodes) {
      writeFileSync(join(nodePaths(labDir, node).root, 'root', `${guest}.xml`), xml)
      const d = await inNode(node, ['virsh', '-c', 'qemu:///system', 'define', `/root/${guest}.xml`])
      assert.equal(d.code, 0, d.stderr)
    }

    await applySetup()
  })
  after(async () => {
    await labDown({labDir}).catch(() => {})
    rmSync(labDir, {force: true, recursive: true})
  })

  it('the group\'s start runs the guest where the service runs, and nowhere else', () =>
    explained(async () => {
      assert.ok(await runsOn('primary', 90), 'the service starts on the primary')
      assert.ok(await beatsOn('primary', 0, 60), `the agent started ${guest} on the primary: ${await stateOn('primary')}`)
      assert.equal(await stateOn('secondary'), 'shut off')
      const autostart = await inNode('primary', ['virsh', '-c', 'qemu:///system', 'dominfo', guest])
      assert.match(autostart.stdout, /Autostart:\s+disable/, 'a clustered guest never starts by itself at a boot')
    }))

  it('ha failover moves the group: the guest shut down on the node it leaves, then started on the other, never running on both', () =>
    explained(async () => {
      const from = (await runningOn())![0]
      const to = otherNode(from)
      const before = beats(to).length
      const stop = sampler()
      // From a node, as an admin logged in there would run it (the node's /etc/ha/ha.yaml).
      const failover = inNode(from, ['ha', 'failover', '--yes', '--json'], 300_000)
      let samples: Array<Record<LabNode, string>> = []
      let r: Awaited<typeof failover>
      try {
        r = await failover
        assert.ok(await beatsOn(to, before, 60), `${guest} beats on ${to}: ${await stateOn(to)}`)
      } finally {
        samples = await stop()
      }

      assert.equal(r.code, 0, r.stdout + r.stderr)
      assert.ok(await runsOn(to, 1), 'the service runs on the other node')
      assert.equal(await stateOn(from), 'shut off', `${guest} is shut off on ${from}`)
      assert.deepEqual(bothRunning(samples), [], 'the guest ran on both nodes at once')
      assert.ok(samples.length > 5, `${samples.length} samples`)
      console.log(`# ${clusterNames[from]} -> ${clusterNames[to]}: ${samples.length} samples of both nodes' virsh list, none running on both`)
    }))

  it('the node running the guest dies: the survivor fences it and starts the guest; back, the node runs no copy', () =>
    explained(async () => {
      const dead = (await runningOn())![0]
      const survivor = otherNode(dead)
      const before = beats(survivor).length
      const stop = sampler()
      let samples: Array<Record<LabNode, string>> = []
      try {
        await labHalt(dead, {labDir})
        assert.ok(await runsOn(survivor, 60), 'the survivor runs the service')
        assert.ok(await beatsOn(survivor, before, 60), `${guest} beats on ${survivor}: ${await stateOn(survivor)}`)
      } finally {
        samples = await stop()
      }

      assert.deepEqual(bothRunning(samples), [], 'the guest ran on both nodes at once')
      // The lab's fence agent reboots the node it fences (fence_ha_lab, as a BMC's power cycle does).
      assert.ok(await within(90, async () => ((await inNode(survivor, ['crm_mon', '-1'])).stdout.includes('Online: [ ctl-a ctl-b ]') ? true : undefined)), 'the fenced node came back and rejoined the cluster')
      assert.equal(await stateOn(dead), 'shut off', 'the node that came back runs no copy of the guest')
      assert.equal(await stateOn(survivor), 'running')
    }))
})
