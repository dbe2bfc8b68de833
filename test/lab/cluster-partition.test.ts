import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {after, before, describe, it} from 'node:test'

import {labName, labNetns, type LabNode, nodePaths} from '../../src/lab/lab.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {clusterLab, clusterNames, otherNode} from './cluster-helpers.js'

/**
 * Issue 17's proof, the split (a lab of its own: a node fenced in a split comes back into a
 * cluster whose later cases it could disturb): the service on a real two-node Pacemaker cluster
 * (the cluster lab), run by ha's resource agent, judged from outside: which MAC answers ARP for the service IP (sampled
 * every 100 ms), what a client of the service IP gets, crm_mon, the storage's epoch and a canary
 * file written before. Its own cluster lab, always taken down.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping', 'pacemaker'])
const labDir = `/tmp/ha-lab-${labName()}-split-${process.pid}`
const {arpSampler, assertCanary, assertOneMac, down, epoch, explained, holdsNothing, inNode, runsOn, serviceAnswer, up, within, writeCanary} = clusterLab(labDir)
describe('a split of the two-node Pacemaker cluster running ocf:ha:controller', {skip}, () => {
  before(up)
  after(down)

  it('a corosync partition: the node not running the service is fenced by the one that does (priority-fencing-delay); never two nodes answer for the service IP', () =>
    explained(async () => {
      const active = (await runsOn('secondary', 1)) ? 'secondary' : 'primary'
      const victim = otherNode(active)
      const before = await epoch(active)
      await writeCanary(active)
      // Both fully in the cluster first, and settled: each node's own view has both online under one
      // DC for 10 s on end (a node lost while it is still joining is not fenced: it ran nothing).
      const settled = async (): Promise<true | undefined> => {
        const views = await Promise.all((['primary', 'secondary'] as const).map(async (n) => (await inNode(n, ['crm_mon', '-1'])).stdout))
        const dc = views.map((v) => /Current DC: (\S+)/.exec(v)?.[1])
        return views.every((v) => v.includes('Online: [ ctl-a ctl-b ]')) && dc[0] !== undefined && dc[0] === dc[1] ? true : undefined
      }

      assert.ok(await steadyFor(10, 90, settled), 'both nodes settled in one cluster')
      const activeBoot = bootId(active)
      const cutAt = Date.now()
      const sampler = arpSampler()
      let samples: Array<{at: number; macs: string[]}> = []
      try {
        // The two nodes cut apart, each still on the admin side's network: isolated bridge ports.
        await partition(true)
        // The fencer keeps one entry per target: this one is newer than the cut (seconds in its stamp).
        const event = await within(60, async () => (await fenceEvents(active)).find((e) => e.target === clusterNames[victim] && e.status === 'success' && e.completed >= Math.floor(cutAt / 1000) * 1000))
        const views = event ? '' : (await Promise.all((['primary', 'secondary'] as const).map(async (n) => `${n}: ${(await inNode(n, ['crm_mon', '-1'])).stdout}${(await inNode(n, ['corosync-quorumtool', '-s'])).stdout}`))).join('\n')
        assert.ok(event, `${clusterNames[active]} fenced ${clusterNames[victim]}: ${JSON.stringify(await fenceEvents(active))}\n${views}`)
      } finally {
        await partition(false)
        samples = await sampler.stop()
      }

      assert.ok(await within(90, async () => ((await inNode(active, ['crm_mon', '-1'])).stdout.includes('Online: [ ctl-a ctl-b ]') ? true : undefined)), 'the fenced node rejoined')
      // The split is over and stays over: for 40 s after the rejoin nobody is fenced again.
      const rejoinedAt = Date.now()
      const again = await within(40, async () => (await fenceEvents(victim)).find((e) => e.completed >= Math.floor(rejoinedAt / 1000) * 1000 - 1000), 2000)
      assert.equal(again, undefined, `a node was fenced after the split healed: ${JSON.stringify(again)}`)
      assert.equal(bootId(active), activeBoot, `${active}, which ran the service, was never fenced: the same boot`)
      assert.ok(await runsOn(active, 1), 'the service never left the node that ran it')
      assert.equal((await serviceAnswer())?.hostname, clusterNames[active])
      await assertCanary(active)
      assert.deepEqual(await epoch(active), before, 'the epoch did not move: the service never moved')
      assert.deepEqual(await holdsNothing(victim), [])
      await assertOneMac(samples, active)
    }))

})

/** Has `probe` held for `seconds` on end (probed every second), within `deadline` seconds? */
async function steadyFor(seconds: number, deadline: number, probe: () => Promise<true | undefined>): Promise<boolean> {
  let since: number | undefined
  const steady = await within(deadline, async () => {
    if (!(await probe())) {
      since = undefined
      return undefined
    }

    since ??= Date.now()
    return Date.now() - since >= seconds * 1000 ? true : undefined
  }, 1000)
  return steady === true
}

const bootId = (node: LabNode) => readFileSync(nodePaths(labDir, node).bootId, 'utf8').trim()

/** Corosync's traffic between the nodes cut (true) or restored: the bridge ports of both nodes isolated from each other. */
async function partition(on: boolean): Promise<void> {
  for (const port of ['veth-primary', 'veth-secondary']) {
    const r = spawnSync('ip', ['netns', 'exec', labNetns.admin, 'bridge', 'link', 'set', 'dev', port, 'isolated', on ? 'on' : 'off'], {encoding: 'utf8'})
    assert.equal(r.status, 0, r.stderr)
  }
}

/** The fencing history as a node's fencer has it, newest first. */
async function fenceEvents(node: LabNode): Promise<Array<{completed: number; status: string; target: string}>> {
  const r = await inNode(node, ['stonith_admin', '--history', '*', '--output-as=xml'])
  const attr = (tag: string, name: string) => new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1] ?? ''
  return [...r.stdout.matchAll(/<fence_event\b[^>]*>/g)].map((m) => ({completed: Date.parse(attr(m[0], 'completed').replace(' ', 'T')), status: attr(m[0], 'status'), target: attr(m[0], 'target')}))
}
