import assert from 'node:assert/strict'
import {existsSync, readFileSync, rmSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {runInNode} from '../../src/lab/container.js'
import {type ClusterView, labBoot, labDown, labHalt, labName, labNetns, type LabNode, labNodes, labStatus, nodePaths} from '../../src/lab/lab.js'
import {isPoweredOn, nodeProcesses} from '../../src/lab/power.js'
import {ha} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {within} from '../helpers/within.js'

/**
 * Issue 17, item 5: the lab runs a real two-node cluster (ha lab up --cluster), judged from the
 * machine's side: what each node's pacemaker says, which processes run where, boot ids, and the
 * fencing history. Its own lab directory and lab (the name is HA_LAB_NAME's), always taken down.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping', 'pacemaker'])
const labDir = `/tmp/ha-lab-${labName()}-cluster-${process.pid}`
const names = {primary: 'ctl-a', secondary: 'ctl-b'} as const

/** Both nodes online, quorate, one DC, as seen from `from`. */
const formed = (view: ClusterView | null | undefined) =>
  view !== null && view !== undefined && !view.error && view.quorate && view.dc !== null && view.nodes.length === 2 && view.nodes.every((n) => n.online)

async function views(): Promise<Record<LabNode, ClusterView | null>> {
  const status = await labStatus({labDir})
  assert.ok(status.cluster, 'the lab reports a cluster')
  return status.cluster
}

/** Both nodes see the whole cluster; seconds until they do, or undefined. */
async function bothOnline(seconds: number): Promise<Record<LabNode, ClusterView | null> | undefined> {
  return within(seconds, async () => {
    const v = await views()
    return labNodes.every((node) => formed(v[node])) && v.primary?.dc === v.secondary?.dc ? v : undefined
  })
}

interface FenceEvent {
  action: string
  client: string
  completed: string
  status: string
  target: string
}

async function fencingHistory(from: LabNode): Promise<FenceEvent[]> {
  const r = await runInNode(labDir, from, ['stonith_admin', '--history', '*', '--verbose', '--output-as=xml'])
  return [...r.stdout.matchAll(/<fence_event\b[^>]*>/g)].map((m) => Object.fromEntries([...m[0].matchAll(/\s([\w-]+)="([^"]*)"/g)].map((a) => [a[1], a[2]])) as unknown as FenceEvent)
}

function bootId(node: LabNode): string {
  return readFileSync(nodePaths(labDir, node).bootId, 'utf8').trim()
}

async function clusterPids(node: LabNode): Promise<number[]> {
  return (await nodeProcesses(labDir, node)).filter((p) => /^\/usr\/sbin\/(corosync|pacemakerd)|^\/usr\/lib\/pacemaker\//.test(p.args)).map((p) => p.pid)
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))

describe('the cluster lab (ha lab up --cluster)', {skip}, () => {
  let upSeconds = 0
  let onlineSeconds = 0
  before(async () => {
    const started = Date.now()
    const r = ha(['lab', 'up', '--cluster', '--lab-dir', labDir, '--json'], {timeoutMs: 120_000})
    assert.equal(r.status, 0, r.stdout + r.stderr)
    upSeconds = (Date.now() - started) / 1000
    assert.ok(await bothOnline(60), `the two nodes did not form a quorate cluster within 60 s of up: ${JSON.stringify(await views())}`)
    onlineSeconds = (Date.now() - started) / 1000
    console.log(`# ha lab up --cluster: ${upSeconds.toFixed(1)} s; both nodes online and quorate, seen from each: ${onlineSeconds.toFixed(1)} s after the start of up`)
  })
  after(async () => {
    await labDown({labDir}).catch(() => {})
    rmSync(labDir, {force: true, recursive: true})
  })

  it('forms a quorate two-node cluster that crm_verify accepts, with fencing on through fence_ha_lab', async () => {
    assert.ok(onlineSeconds < 60, `${onlineSeconds} s`)
    for (const node of labNodes) {
      const verify = await runInNode(labDir, node, ['crm_verify', '-L', '-V'], {okCodes: [1, 2, 3, 4]})
      assert.equal(verify.code, 0, `crm_verify -L on ${node}: ${verify.stdout}${verify.stderr}`)
      assert.equal((verify.stdout + verify.stderr).trim(), '', 'no warnings either')
      const mon = await runInNode(labDir, node, ['crm_mon', '--output-as=xml'])
      assert.match(mon.stdout, /<cluster_options [^>]*stonith-enabled="true"/)
      assert.match(mon.stdout, /<stack type="corosync"\/>/)
      const registered = await runInNode(labDir, node, ['stonith_admin', '--list-registered'])
      assert.match(registered.stdout, /^fence-lab$/m, `the fencer on ${node} has the lab's device`)
      const list = await runInNode(labDir, node, ['stonith_admin', '--list', names.secondary])
      assert.match(list.stdout, /^fence-lab$/m, `fence-lab can fence ${names.secondary}`)
    }

    const resources = await runInNode(labDir, 'primary', ['cibadmin', '--query', '--scope', 'resources'])
    assert.match(resources.stdout, /<primitive id="fence-lab" class="stonith" type="fence_ha_lab">/)
    // The status command an admin runs shows the same.
    const status = ha(['lab', 'status', '--lab-dir', labDir, '--json'])
    assert.equal(status.status, 0, status.stdout)
    const cluster = (status.json?.result as {cluster: Record<LabNode, ClusterView>}).cluster
    for (const node of labNodes) assert.ok(formed(cluster[node]), JSON.stringify(cluster[node]))
  })

  it('runs corosync and pacemaker inside each node (its own processes and root), under the node\'s hacluster', async () => {
    for (const node of labNodes) {
      const ps = await nodeProcesses(labDir, node)
      assert.equal(ps.filter((p) => p.args.startsWith('/usr/sbin/corosync')).length, 1, `${node}: ${ps.map((p) => p.args).join(' | ')}`)
      assert.equal(ps.filter((p) => p.args.startsWith('/usr/sbin/pacemakerd')).length, 1)
      for (const daemon of ['pacemaker-based', 'pacemaker-fenced', 'pacemaker-controld']) assert.ok(ps.some((p) => p.args.includes(daemon)), `${node}: ${daemon}`)
      const users = await runInNode(labDir, node, ['ps', '-o', 'user=', '-C', 'pacemaker-based'])
      assert.equal(users.stdout.trim(), 'hacluster')
    }
  })

  it('stonith_admin --reboot from the primary power-cycles the secondary through the lab\'s BMC; it rejoins', async () => {
    const before = bootId('secondary')
    const pids = await clusterPids('secondary')
    assert.ok(pids.length >= 3, String(pids))
    const started = Date.now()
    const r = await runInNode(labDir, 'primary', ['stonith_admin', '--reboot', names.secondary, '--timeout', '60'], {timeoutMs: 70_000})
    assert.equal(r.code, 0, r.stderr)
    const fencedMs = Date.now() - started
    assert.deepEqual(pids.filter(alive), [], 'every cluster daemon of the old boot is gone')
    assert.ok(await within(30, async () => ((await isPoweredOn(labDir, 'secondary')) && bootId('secondary') !== before ? true : undefined)), 'powered on again with a new boot id')
    const history = await fencingHistory('primary')
    assert.ok(history.some((e) => e.action === 'reboot' && e.target === names.secondary && e.status === 'success' && e.client.startsWith('stonith_admin')), JSON.stringify(history))
    const rejoinStarted = Date.now()
    assert.ok(await bothOnline(60), `the secondary did not rejoin within 60 s: ${JSON.stringify(await views())}`)
    console.log(`# stonith_admin --reboot: ${fencedMs} ms; the secondary online again ${((Date.now() - rejoinStarted) / 1000).toFixed(1)} s later`)
  })

  it('stonith_admin --fence powers the secondary off, and it stays off until booted', async () => {
    const r = await runInNode(labDir, 'primary', ['stonith_admin', '--fence', names.secondary, '--timeout', '60'], {timeoutMs: 70_000})
    assert.equal(r.code, 0, r.stderr)
    assert.equal(await isPoweredOn(labDir, 'secondary'), false)
    assert.deepEqual(await nodeProcesses(labDir, 'secondary'), [])
    try {
      // The DC marks it offline and clean once it has taken the fencing's result in.
      const clean = async () => {
        const view = (await views()).primary
        return view && view.quorate && view.nodes.some((n) => n.name === names.secondary && !n.online && !n.unclean) ? view : undefined
      }

      assert.ok(await within(30, clean), `the survivor: quorate, the fenced node offline and clean: ${JSON.stringify((await views()).primary)}`)
      await sleep(2000)
      assert.equal(await isPoweredOn(labDir, 'secondary'), false, 'still off')
    } finally {
      await labBoot('secondary', {labDir})
    }

    assert.ok(await bothOnline(60), `the secondary did not rejoin within 60 s of its boot: ${JSON.stringify(await views())}`)
  })

  it('/sbin/reboot inside a node stops its pacemaker and corosync first: it leaves the cluster cleanly, is not fenced, and rejoins', async () => {
    const before = bootId('secondary')
    const known = (await fencingHistory('primary')).length
    const r = await runInNode(labDir, 'secondary', ['/sbin/reboot'])
    assert.equal(r.code, 0, r.stderr)
    assert.ok(await within(90, async () => (existsSync(nodePaths(labDir, 'secondary').bootId) && bootId('secondary') !== before ? true : undefined)), 'the secondary did not reboot')
    assert.ok(await bothOnline(60), `the secondary did not rejoin within 60 s: ${JSON.stringify(await views())}`)
    assert.equal((await fencingHistory('primary')).length, known, 'a clean shutdown is not fenced')
    const log = readFileSync(`${nodePaths(labDir, 'secondary').root}/var/log/pacemaker/pacemaker.log`, 'utf8')
    assert.match(log, /Shutdown complete/, 'pacemakerd stopped cleanly')
  })

  for (const [victim, survivor] of [['secondary', 'primary'], ['primary', 'secondary']] as const) {
    it(`ha lab halt ${victim}: the survivor fences it through fence_ha_lab (a reboot, so it comes back and rejoins)`, async () => {
      const before = bootId(victim)
      const known = (await fencingHistory(survivor)).length
      const halted = Date.now()
      await labHalt(victim, {labDir})
      const event = await within(60, async () => {
        const history = await fencingHistory(survivor)
        // Pending first, then done: the first one done.
        return history.length > known ? history.find((e) => e.target === names[victim] && e.client.startsWith('pacemaker-controld') && e.status !== 'pending') : undefined
      })
      const fencedMs = Date.now() - halted
      assert.ok(event, `no fencing of ${names[victim]} by the cluster within 60 s of its halt: ${JSON.stringify(await fencingHistory(survivor))}`)
      assert.deepEqual([event.action, event.status], ['reboot', 'success'])
      assert.ok(fencedMs < 30_000, `halt to fenced: ${fencedMs} ms`)
      assert.ok(await within(30, async () => ((await isPoweredOn(labDir, victim)) && bootId(victim) !== before ? true : undefined)), 'the fence powered the halted node on again')
      assert.ok(await bothOnline(60), `the fenced node did not rejoin within 60 s: ${JSON.stringify(await views())}`)
      console.log(`# ha lab halt ${victim} -> fenced by ${names[survivor]} (seen in its fencing history): ${fencedMs} ms`)
    })
  }

  it('ha cluster setup --apply on a node: crm_verify -L accepts the live CIB, Pacemaker starts the group on one node (storage, service IP, service), and a second --apply changes nothing', async () => {
    // The lab's own ha.yaml on both nodes (service mode, Pacemaker, fence_ha_lab; ocf:ha:controller
    // installed): before the setup nothing of the service runs anywhere; the cluster is to start it.
    const idle = await labStatus({labDir})
    for (const node of labNodes) {
      const n = idle.nodes[node]
      assert.deepEqual([n.data_dir_mounted, n.holds_service_ip, n.service_running], [false, false, false], `${node} runs nothing of the service yet`)
    }

    // The machine's env may name files the node does not have (NODE_EXTRA_CA_CERTS).
    const setup = ['env', '-u', 'NODE_EXTRA_CA_CERTS', '/usr/local/sbin/ha', 'cluster', 'setup', '--apply']
    const started = Date.now()
    const first = await runInNode(labDir, 'primary', [...setup, '--json'], {okCodes: [1, 2], timeoutMs: 120_000})
    assert.equal(first.code, 0, first.stdout + first.stderr)
    assert.equal(first.stderr, '')
    const applied = JSON.parse(first.stdout).result.applied as {changes: string[]; epoch_after: number; epoch_before: number; verified_live: boolean}
    assert.ok(applied.changes.includes('created ha-service'), JSON.stringify(applied))
    assert.equal(applied.verified_live, true)
    assert.ok(applied.epoch_after > applied.epoch_before)
    for (const node of labNodes) {
      const verify = await runInNode(labDir, node, ['crm_verify', '-L', '-V'], {okCodes: [1, 2, 3, 4, 78]})
      assert.equal(verify.code, 0, `crm_verify -L on ${node}: ${verify.stdout}${verify.stderr}`)
    }

    // The other node's copy of the CIB has it once the DC has passed the change on (a moment under load).
    const membersOn = async () => {
      const resources = (await runInNode(labDir, 'secondary', ['cibadmin', '--query', '--scope', 'resources'])).stdout
      const group = /<group id="ha-service">[\s\S]*?<\/group>/.exec(resources)?.[0] ?? ''
      const found = [...group.matchAll(/<primitive id="([^"]+)" class="([^"]+)" provider="([^"]+)" type="([^"]+)"/g)].map((m) => `${m[1]} ${m[2]}:${m[3]}:${m[4]}`)
      return found.length > 0 ? found : undefined
    }

    const members = (await within(15, membersOn)) ?? []
    assert.deepEqual(members, ['ha-service-storage ocf:heartbeat:Filesystem', 'ha-service-ip1 ocf:heartbeat:IPaddr2', 'ha-controller ocf:ha:controller'])
    const param = async (rsc: string, name: string) => (await runInNode(labDir, 'secondary', ['crm_resource', '--resource', rsc, '--get-parameter', name, '--quiet'])).stdout.trim()
    assert.equal(await param('ha-service-storage', 'directory'), '/var/opt/sun/xvm')
    assert.equal(await param('ha-service-ip1', 'ip'), '198.18.0.100')
    assert.equal(await param('ha-controller', 'config'), '/etc/ha/ha.yaml')
    assert.match((await runInNode(labDir, 'secondary', ['cibadmin', '--query', '--scope', 'resources'])).stdout, /<primitive id="fence-lab" class="stonith" type="fence_ha_lab">/)

    // Pacemaker runs what was set up: all three members on one node, which has the storage mounted,
    // the service IP and the service running (the controller's start ends once it answers); the
    // other node has none of them; nothing failed.
    const locate = async (rsc: string) => (await runInNode(labDir, 'secondary', ['crm_resource', '--resource', rsc, '--locate', '--quiet'], {okCodes: [1, 6, 105]})).stdout.trim()
    const holds = (status: Awaited<ReturnType<typeof labStatus>>, n: LabNode) => [status.nodes[n].data_dir_mounted, status.nodes[n].holds_service_ip, status.nodes[n].service_running]
    const where = await within(120, async () => {
      const at = await Promise.all(members.map((m) => locate(m.split(' ')[0])))
      const node = labNodes.find((n) => names[n] === at[0])
      if (!node || !at.every((name) => name === at[0])) return undefined
      return holds(await labStatus({labDir}), node).every(Boolean) ? node : undefined
    })
    const mon = (await runInNode(labDir, 'primary', ['crm_mon', '-1', '-r', '--failcounts'], {okCodes: [102, 107, 108]})).stdout
    assert.ok(where, `the group did not start on one node within 120 s of the setup:\n${mon}`)
    console.log(`# ha cluster setup --apply -> the group started on ${names[where]}, the service running: ${((Date.now() - started) / 1000).toFixed(1)} s`)
    assert.doesNotMatch(mon, /Failed Resource Actions/, mon)
    assert.deepEqual(holds(await labStatus({labDir}), labNodes.find((n) => n !== where)!), [false, false, false], 'nothing of it on the other node')

    const second = await runInNode(labDir, 'secondary', [...setup, '--json'], {okCodes: [1, 2], timeoutMs: 120_000})
    assert.equal(second.code, 0, second.stdout + second.stderr)
    const again = JSON.parse(second.stdout).result.applied as {changes: string[]; epoch_after: number; epoch_before: number; verified_live: boolean}
    assert.deepEqual(again.changes, [], 'the second run changes nothing')
    assert.equal(again.verified_live, true)
    assert.equal(again.epoch_before, again.epoch_after)
    const human = await runInNode(labDir, 'primary', setup, {okCodes: [1, 2], timeoutMs: 120_000})
    assert.match(human.stdout, /already holds this configuration: nothing changed/)
  })

  it('ha lab down leaves no corosync or pacemaker process and none of the lab\'s namespaces', async () => {
    const pids = [...(await clusterPids('primary')), ...(await clusterPids('secondary'))]
    assert.ok(pids.length >= 6, String(pids))
    const r = ha(['lab', 'down', '--lab-dir', labDir, '--json'])
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.deepEqual(pids.filter(alive), [])
    const left = Object.values(labNetns).filter((netns) => existsSync(`/run/netns/${netns}`))
    assert.deepEqual(left, [])
    assert.equal((await labStatus({labDir})).up, false)
  })
})
