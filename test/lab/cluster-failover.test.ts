import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {labHalt, labName, labNetns, type LabNode} from '../../src/lab/lab.js'
import {haBin} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {clusterLab, clusterNames, otherNode} from './cluster-helpers.js'

/**
 * Issue 17's proof: the service on a real two-node Pacemaker cluster (the cluster lab), run by
 * ha's resource agent, judged from outside: which MAC answers ARP for the service IP (sampled
 * every 100 ms), what a client of the service IP gets, crm_mon, the storage's epoch and a canary
 * file written before. Its own cluster lab, always taken down.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping', 'pacemaker'])
const labDir = `/tmp/ha-lab-${labName()}-pcmk-${process.pid}`
const {arpSampler, assertCanary, assertOneMac, down, epoch, explained, holdsNothing, inNode, runsOn, serviceAnswer, up, within, writeCanary} = clusterLab(labDir)
describe('the service on a two-node Pacemaker cluster, run by ocf:ha:controller', {skip}, () => {
  before(up)
  after(down)

  it('the product dies: restarted in place, then moved after migration-threshold (2) failures', () =>
    explained(async () => {
      const on: LabNode = 'primary'
      const kill = () => inNode(on, ['sh', '-c', 'kill -9 "$(cat /run/xvm.pid)"'])
      const failures = async () => /value=(\d+)/.exec((await inNode(on, ['crm_failcount', '--query', '-r', 'ha-controller', '-N', clusterNames[on]])).stdout)?.[1]
      const sampler = arpSampler()
      let samples: Array<{at: number; macs: string[]}> = []
      try {
        await kill()
        // Pacemaker's monitor (5 s) finds it stopped, and starts it again where it ran.
        const again = await within(30, async () => ((await failures()) === '1' && (await serviceAnswer())?.hostname === clusterNames[on] ? true : undefined))
        assert.ok(again, `restarted in place, one failure counted (${await failures()})`)
        await kill()
        assert.ok(await runsOn(otherNode(on), 60), 'moved to the other node after the second failure')
        assert.ok(await within(15, async () => ((await serviceAnswer())?.hostname === clusterNames[otherNode(on)] ? true : undefined)), 'answers from the other node')
      } finally {
        samples = await sampler.stop()
      }

      try {
        await assertOneMac(samples, otherNode(on))
        await assertCanary(otherNode(on))
        assert.deepEqual(await holdsNothing(on), [])
        assert.deepEqual((await epoch(otherNode(on))).active, otherNode(on))
        // ha status, from the admin side, names the failed actions crm_mon has.
        const status = spawnSync('ip', ['netns', 'exec', labNetns.admin, process.execPath, haBin, 'status', '--json', '--config', join(labDir, 'ha.yaml')], {encoding: 'utf8', timeout: 60_000})
        const failures = (JSON.parse(status.stdout).result.cluster?.failures ?? []) as Array<{node: string; op: string; resource: string}>
        assert.ok(failures.some((f) => f.resource === 'ha-controller' && f.op === 'monitor' && f.node === clusterNames[on]), `ha status names the failed monitor on ${clusterNames[on]}: ${status.stdout}`)
      } finally {
        // The admin's part after the cause is fixed: the failures forgotten, the node eligible again.
        await inNode(on, ['crm_resource', '--cleanup', '--resource', 'ha-service'])
      }
    }))

  it('the active node dies (ha lab halt): the survivor fences it and serves within 15 s; the fenced node comes back a clean standby', () =>
    explained(async () => {
      const active = (await runsOn('secondary', 1)) ? 'secondary' : 'primary'
      const survivor = otherNode(active)
      const before = await epoch(active)
      await writeCanary(active)
      const sampler = arpSampler()
      const halted = Date.now()
      await labHalt(active, {labDir}).catch(async (error) => {
        await sampler.stop()
        throw error
      })
      const answered = await within(60, async () => ((await serviceAnswer())?.hostname === clusterNames[survivor] ? Date.now() : undefined), 100)
      const samples = await sampler.stop()
      assert.ok(answered, 'the survivor serves')
      const seconds = (answered - halted) / 1000
      console.log(`# ha lab halt ${active} -> the service answers on ${survivor}: ${seconds.toFixed(1)} s`)
      assert.ok(seconds < 15, `${seconds} s from the halt to the service answering on the survivor`)
      await assertCanary(survivor)
      assert.deepEqual([(await epoch(survivor)).active, (await epoch(survivor)).epoch], [survivor, before.epoch + 1], 'the epoch moved forward once')
      // The fence was a reboot: the node is back, in the cluster, and runs none of the service.
      assert.ok(await within(60, async () => ((await inNode(survivor, ['crm_mon', '-1'])).stdout.includes('Online: [ ctl-a ctl-b ]') ? true : undefined)), 'the fenced node rejoined')
      for (let i = 0; i < 10; i++) {
        assert.deepEqual(await holdsNothing(active), [], `${active} after its fencing`)
        await new Promise((r) => setTimeout(r, 500))
      }

      assert.ok(await runsOn(survivor, 1), 'the service stays on the survivor')
      await assertOneMac(samples, survivor)
    }))

})

