import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {spawnSync} from 'node:child_process'
import {rmSync} from 'node:fs'
import {after, before, describe, it} from 'node:test'

import {runInNode} from '../../src/lab/container.js'
import {labDown, labName, labNetns, type LabNode} from '../../src/lab/lab.js'
import {ha} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {clusterLab, clusterNames} from './cluster-helpers.js'

/**
 * Issue 17's proof, the split (a lab of its own: a node fenced in a split comes back into a
 * cluster whose later cases it could disturb): the service on a real two-node Pacemaker cluster (the cluster lab), run by
 * ha's resource agent, judged from outside: which MAC answers ARP for the service IP (sampled
 * every 100 ms), what a client of the service IP gets, crm_mon, the storage's epoch and a canary
 * file written before. Its own cluster lab, always taken down.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping', 'pacemaker'])
const labDir = `/tmp/ha-lab-${labName()}-split-${process.pid}`
const {arpSampler, epoch, holdsNothing, inNode, macs, runsOn, serviceAnswer, within} = clusterLab(labDir)
const other = (node: LabNode): LabNode => (node === 'primary' ? 'secondary' : 'primary')

/** The configuration the tests run on is exactly what ha cluster setup --apply makes of the lab's ha.yaml. */
async function applySetup(): Promise<void> {
  const r = await inNode('primary', ['ha', 'cluster', 'setup', '--apply'])
  assert.equal(r.code, 0, r.stdout + r.stderr)
  const verify = await inNode('secondary', ['crm_verify', '-L'])
  assert.equal(verify.code, 0, verify.stdout + verify.stderr)
}

let canary = ''
async function writeCanary(node: LabNode): Promise<void> {
  canary = randomBytes(16).toString('hex')
  const r = await inNode(node, ['sh', '-c', `echo ${canary} > /var/opt/sun/xvm/service/canary.txt && sync`])
  assert.equal(r.code, 0, r.stderr)
}

async function assertCanary(node: LabNode): Promise<void> {
  assert.equal((await inNode(node, ['cat', '/var/opt/sun/xvm/service/canary.txt'])).stdout.trim(), canary, `the canary written before is intact on ${node}`)
}

/** No ARP sample heard two MACs for the service IP; the last ones heard only `node`'s. */
async function assertOneMac(samples: Array<{at: number; macs: string[]}>, node: LabNode): Promise<void> {
  const both = samples.filter((s) => s.macs.length > 1)
  assert.deepEqual(both, [], 'two nodes answered ARP for the service IP at once')
  const mac = (await macs())[node].toLowerCase()
  assert.deepEqual(samples.at(-1)?.macs, [mac], `the last sample: ${node}'s MAC`)
  assert.ok(samples.length > 20, `${samples.length} samples`)
}

describe('a split of the two-node Pacemaker cluster running ocf:ha:controller', {skip}, () => {
  before(async () => {
    const r = ha(['lab', 'up', '--cluster', '--lab-dir', labDir, '--json'], {timeoutMs: 120_000})
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.ok(await within(60, async () => ((await inNode('primary', ['crm_mon', '-1'])).stdout.includes('Online: [ ctl-a ctl-b ]') ? true : undefined)), 'the cluster formed')
    await applySetup()
    assert.ok(await runsOn('primary', 60), 'the service starts on the primary')
    // What the hourly ha backup from cron has done by the time a node dies: the saved state on the storage.
    const backup = await inNode('primary', ['ha', 'backup', '--quiet'])
    assert.equal(backup.code, 0, backup.stderr)
    await writeCanary('primary')
    // The sampler hears two answers when there are two: a neighbour claims the service IP for a moment.
    const sampler = arpSampler()
    await runInNode(labDir, 'secondary', ['ip', 'addr', 'add', '198.18.0.100/24', 'dev', 'eth0'])
    await new Promise((r) => setTimeout(r, 1500))
    await runInNode(labDir, 'secondary', ['ip', 'addr', 'del', '198.18.0.100/24', 'dev', 'eth0'])
    const heard = await sampler.stop()
    assert.ok(heard.some((sample) => sample.macs.length === 2), `the sampler heard both MACs: ${JSON.stringify(heard.slice(-5))}`)
  })
  after(async () => {
    await labDown({labDir}).catch(() => {})
    rmSync(labDir, {force: true, recursive: true})
  })

  it('a corosync partition: the node not running the service is fenced by the one that does (priority-fencing-delay); never two nodes answer for the service IP', () =>
    explained(async () => {
      const active = (await runsOn('secondary', 1)) ? 'secondary' : 'primary'
      const victim = other(active)
      const before = await epoch(active)
      await writeCanary(active)
      // Both fully in the cluster first, and settled: each node's own view has both online under one
      // DC for 10 s on end (a node lost while it is still joining is not fenced: it ran nothing).
      const settled = async (): Promise<true | undefined> => {
        const views = await Promise.all((['primary', 'secondary'] as const).map(async (n) => (await inNode(n, ['crm_mon', '-1'])).stdout))
        const dc = views.map((v) => /Current DC: (\S+)/.exec(v)?.[1])
        return views.every((v) => v.includes('Online: [ ctl-a ctl-b ]')) && dc[0] !== undefined && dc[0] === dc[1] ? true : undefined
      }

      let since = 0
      assert.ok(await within(90, async () => ((await settled()) ? (since ||= Date.now()) && Date.now() - since >= 10_000 || undefined : (since = 0) || undefined), 1000), 'both nodes settled in one cluster')
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
      assert.ok(await runsOn(active, 1), 'the service never left the node that ran it')
      assert.equal((await serviceAnswer())?.hostname, clusterNames[active])
      await assertCanary(active)
      assert.deepEqual(await epoch(active), before, 'the epoch did not move: the service never moved')
      assert.deepEqual(await holdsNothing(victim), [])
      await assertOneMac(samples, active)
    }))

})

/**
 * A failed case says what each node's Pacemaker saw (memberships lost, fencings, starts and stops
 * and their reasons): the lab and its logs are gone by the time anyone reads a CI log.
 */
async function explained(work: () => Promise<void>): Promise<void> {
  try {
    await work()
  } catch (error) {
    const seen: string[] = []
    for (const node of ['primary', 'secondary'] as const) {
      const pattern = 'state is now lost|will be fenced|Requesting fencing|returned 0 \\||Result of (start|stop) operation|exit-reason'
      const r = await inNode(node, ['sh', '-c', `grep -E '${pattern}' /var/log/pacemaker/pacemaker.log | grep -v cib_perform | tail -n 30`]).catch((e: Error) => ({stdout: `(${e.message})`}))
      seen.push(`--- ${node}'s pacemaker.log:\n${r.stdout}`)
    }

    if (error instanceof Error) error.message += `\n${seen.join('\n')}`
    throw error
  }
}

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
