import assert from 'node:assert/strict'
import {readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {runInNode} from '../../src/lab/container.js'
import {addressOnly, labDataDir, labDown, labInterface, labName, type LabNode, labProductVersion, labServiceIp, labSetVersion, labVersionFile, nodePaths} from '../../src/lab/lab.js'
import {ha} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'

/**
 * Issue 17, item 2: ha's OCF resource agent, the installed script (/usr/lib/ocf/resource.d/ha/
 * controller, as the package ships it) on a node of the cluster lab, judged as Pacemaker judges
 * it: by ocf-tester (resource-agents) and by the exit codes of each action. The storage and the
 * service IP are brought up on the node as the group's Filesystem and IPaddr2 would, since the
 * agent runs after them. Its own cluster lab, always taken down.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping', 'pacemaker', 'ocf-tester'])
const labDir = `/tmp/ha-lab-${labName()}-agent-${process.pid}`
const agent = '/usr/lib/ocf/resource.d/ha/controller'
// The machine's env may name files the node does not have (NODE_EXTRA_CA_CERTS): Pacemaker's own env is clean.
const clean = ['env', '-u', 'NODE_EXTRA_CA_CERTS']

async function inNode(node: LabNode, argv: string[], timeoutMs = 120_000) {
  return runInNode(labDir, node, [...clean, ...argv], {okCodes: Array.from({length: 255}, (_, i) => i + 1), timeoutMs})
}

const action = (node: LabNode, name: string, env: string[] = []) => inNode(node, [...env, 'OCF_RESKEY_config=/etc/ha/ha.yaml', agent, name])

/** What the group's Filesystem and IPaddr2 resources do before the controller starts, and undo after it stops. */
async function bringUp(node: LabNode): Promise<void> {
  const device = /device: (\S+)/.exec(readFileSync(join(labDir, 'ha.yaml'), 'utf8'))![1]
  const r = await inNode(node, ['sh', '-c', `mount -t ext4 ${device} ${labDataDir} && ip addr add ${labServiceIp} dev ${labInterface}`])
  assert.equal(r.code, 0, r.stderr)
}

async function takeDown(node: LabNode): Promise<void> {
  await inNode(node, ['sh', '-c', `umount ${labDataDir}; ip addr del ${labServiceIp} dev ${labInterface}`])
}

async function serviceRuns(node: LabNode): Promise<boolean> {
  return (await inNode(node, ['/etc/init.d/xvm', 'status'])).code === 0
}

describe('ocf:ha:controller on a lab node (ha lab up --cluster)', {skip}, () => {
  before(() => {
    const r = ha(['lab', 'up', '--cluster', '--lab-dir', labDir, '--json'], {timeoutMs: 120_000})
    assert.equal(r.status, 0, r.stdout + r.stderr)
  })
  after(async () => {
    await labDown({labDir}).catch(() => {})
    rmSync(labDir, {force: true, recursive: true})
  })

  it('passes ocf-tester: the installed agent, the real ha behind it, start/stop/monitor twice over', async () => {
    // Nothing of the service at boot under a cluster: no storage, no service IP, no product.
    for (const node of ['primary', 'secondary'] as const) {
      assert.equal((await action(node, 'monitor')).code, 7, `${node}: a probe on a node that runs nothing says stopped`)
    }

    await bringUp('primary')
    try {
      const r = await inNode('primary', ['ocf-tester', '-n', 'ha-controller', '-o', 'config=/etc/ha/ha.yaml', agent], 300_000)
      assert.equal(r.code, 0, r.stdout + r.stderr)
      assert.match(r.stdout, /passed all tests/)
      // Start noted the primary active on the storage; each stop left a backup for the other node.
      const epoch = JSON.parse((await inNode('primary', ['cat', `${labDataDir}/.ha/epoch.json`])).stdout) as {active: string; epoch: number}
      assert.deepEqual([epoch.active, epoch.epoch], ['primary', 1], 'restarts in place do not move the epoch')
      const backups = await inNode('primary', ['sh', '-c', `ls ${labDataDir}/.ha/backups | grep -c 'tar.gz$'`])
      assert.ok(Number(backups.stdout) >= 2, backups.stdout)
      // Deeper monitors while it runs: it answers (10), the data directory takes a write (20).
      assert.equal((await action('primary', 'start')).code, 0)
      for (const level of ['0', '10', '20']) assert.equal((await action('primary', 'monitor', [`OCF_CHECK_LEVEL=${level}`])).code, 0, `level ${level}`)
      // The product dies behind the agent's back: level 0 says stopped; level 10 on a running
      // service that does not answer says failed.
      await inNode('primary', ['sh', '-c', 'kill -STOP "$(cat /run/xvm.pid)"'])
      const hung = await action('primary', 'monitor', ['OCF_CHECK_LEVEL=10'])
      await inNode('primary', ['sh', '-c', 'kill -CONT "$(cat /run/xvm.pid)"'])
      assert.equal(hung.code, 1, hung.stderr)
      assert.match(hung.stderr, /runs but does not answer/)
      assert.equal((await action('primary', 'stop')).code, 0)
      assert.equal(await serviceRuns('primary'), false)
    } finally {
      await takeDown('primary')
    }
  })

  it('start on the other node restores the saved state there and moves the epoch once; the stop before it made the backup it restores', async () => {
    await bringUp('secondary')
    try {
      const r = await action('secondary', 'start')
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stderr, /restore-service: ctl-b \(secondary\)\$ ha restore --yes --json --node secondary/)
      assert.match(r.stderr, /epoch 2, active secondary/)
      assert.equal(await serviceRuns('secondary'), true)
      const answer = await inNode('secondary', [process.execPath, '-e', `fetch('http://${addressOnly(labServiceIp)}:8080/').then((r) => r.text()).then((t) => process.stdout.write(t))`])
      assert.match(answer.stdout, /"hostname":"ctl-b"/)
      // The node keeps its own identity (service mode): its name and host keys are its own.
      assert.equal(readFileSync(join(nodePaths(labDir, 'secondary').root, 'etc/hostname'), 'utf8').trim(), 'ctl-b')
      assert.equal((await action('secondary', 'stop')).code, 0)
    } finally {
      await takeDown('secondary')
    }
  })

  it('a node that saw a newer epoch than the storage holds, or whose product version differs from the other node\'s, fails start with 5 (banned) and never starts the service', async () => {
    const nodeEpoch = join(nodePaths(labDir, 'primary').root, 'var/lib/ha/epoch.json')
    const saved = readFileSync(nodeEpoch, 'utf8')
    await bringUp('primary')
    try {
      writeFileSync(nodeEpoch, JSON.stringify({...JSON.parse(saved), epoch: 9}))
      const stale = await action('primary', 'start')
      assert.equal(stale.code, 5, stale.stderr)
      assert.match(stale.stderr, /holds epoch 2, but ctl-a has already seen epoch 9 .*not the storage ha expects/)
      assert.equal(await serviceRuns('primary'), false)
      writeFileSync(nodeEpoch, saved)

      await labSetVersion('secondary', '2.1.0.9999', {labDir})
      const mismatch = await action('primary', 'start')
      assert.equal(mismatch.code, 5, mismatch.stderr)
      assert.match(mismatch.stderr, new RegExp(`product version ${labProductVersion.replaceAll('.', '\\.')} on ctl-a, 2\\.1\\.0\\.9999 on ctl-b`))
      assert.equal(await serviceRuns('primary'), false)
    } finally {
      await labSetVersion('secondary', labProductVersion, {labDir})
      await takeDown('primary')
    }

    // validate-all: a product missing on the node is "not installed" (5).
    const version = join(nodePaths(labDir, 'secondary').root, labVersionFile)
    const text = readFileSync(version)
    rmSync(version)
    try {
      assert.equal((await action('secondary', 'validate-all')).code, 5)
    } finally {
      writeFileSync(version, text)
    }

    assert.equal((await action('secondary', 'validate-all')).code, 0)
  })
})
