import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {parse, stringify} from 'yaml'

import {runInNode} from '../../src/lab/container.js'
import {labDown, labName, labNetns, type LabNode, labNodes, labPaths, labServiceStop} from '../../src/lab/lab.js'
import {ha, haBin, type HaRun} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {within as waitUntil} from '../helpers/within.js'

/**
 * Issue 17, item 4, against the cluster lab (ha lab up --cluster): ha status and ha check show
 * what Pacemaker says beside ha's own view, and ha failover under cluster.manager: pacemaker is a
 * switchover through the cluster, judged from outside: crm_mon and cibadmin in the nodes, the
 * service IP in each node's own address list, the exit code.
 *
 * STAND-IN: the paths that need no product (a failed action, the refusals, Ctrl-C during a move
 * that can never finish) run on a group of stock agents named as the config says: ha-service =
 * ocf:heartbeat:Dummy for the storage, ocf:heartbeat:IPaddr2 for the real service IP,
 * ocf:heartbeat:Dummy as ha-controller. The service is verified on the wire by the service IP
 * answering ARP from the admin side; ha's epoch is not compared (only ocf:ha:controller moves it),
 * which ha check and the switchover say. The switchover with ha's own agent and the lab's real
 * group is test/lab/cluster-switchover.test.ts.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping', 'pacemaker'])
const labDir = `/tmp/ha-lab-${labName()}-cluster-view-${process.pid}`
const names: Record<LabNode, string> = {primary: 'ctl-a', secondary: 'ctl-b'}
const config = join(labDir, 'ha-cluster.yaml')
const fromAdmin = {prefix: ['ip', 'netns', 'exec', labNetns.admin], timeoutMs: 120_000}
const serviceIp = '198.18.0.100'

const standIn = `<group id="ha-service">
  <primitive id="ha-storage" class="ocf" provider="heartbeat" type="Dummy"><operations><op id="ha-storage-monitor" name="monitor" interval="10s"/></operations></primitive>
  <primitive id="ha-ip-0" class="ocf" provider="heartbeat" type="IPaddr2">
    <instance_attributes id="ha-ip-0-ia"><nvpair id="ha-ip-0-ip" name="ip" value="${serviceIp}"/><nvpair id="ha-ip-0-mask" name="cidr_netmask" value="24"/><nvpair id="ha-ip-0-nic" name="nic" value="eth0"/></instance_attributes>
    <operations><op id="ha-ip-0-monitor" name="monitor" interval="10s"/></operations>
  </primitive>
  <primitive id="ha-controller" class="ocf" provider="heartbeat" type="Dummy"><operations><op id="ha-controller-monitor" name="monitor" interval="5s"/></operations></primitive>
</group>`

async function inNode(node: LabNode, argv: string[]): Promise<string> {
  const r = await runInNode(labDir, node, argv, {okCodes: [1, 2, 6, 7, 102, 105], timeoutMs: 30_000})
  return r.stdout
}

const members = ['ha-storage', 'ha-ip-0', 'ha-controller']

/** Where each member of the group runs, as Pacemaker itself answers (crm_resource --locate), from the primary. */
async function locate(id: string): Promise<string[]> {
  return [...(await inNode('primary', ['crm_resource', '--locate', '--resource', id])).matchAll(/is running on: (\S+)/g)].map((m) => m[1])
}

/** The node running every member of the group, waited for (a cleanup or a move settles first); [] when it does not settle in 30 s. */
async function located(): Promise<string[]> {
  const found = await within(30, async () => {
    const where = await Promise.all(members.map(locate))
    return where.every((w) => w.length === 1 && w[0] === where[0][0]) ? where[0] : undefined
  })
  return found ?? []
}

const constraints = () => inNode('primary', ['cibadmin', '--query', '--scope', 'constraints'])
/** The nodes whose own address list holds the service IP. */
const holders = async () => (await Promise.all(labNodes.map(async (n) => ((await inNode(n, ['ip', '-o', 'addr', 'show', 'eth0'])).includes(`inet ${serviceIp}/`) ? n : undefined)))).filter(Boolean)

const within = <T>(seconds: number, probe: () => Promise<T | undefined>) => waitUntil(seconds, probe, {everyMs: 500})
const other = (n: LabNode): LabNode => (n === 'primary' ? 'secondary' : 'primary')
const nodeOf = (name: string) => labNodes.find((n) => names[n] === name)!
/** ha from the admin side; under --json a failover's step event lines come first, then the envelope (json). */
function run(...args: string[]): HaRun & {events: Array<Record<string, unknown>>} {
  const r = ha([...args, '--config', config], fromAdmin)
  const lines = r.stdout.split('\n')
  const isEvent = (l: string) => l.startsWith('{"type":"step"')
  let json = r.json
  try {
    json ??= JSON.parse(lines.filter((l) => !isEvent(l)).join('\n'))
  } catch {}

  return {...r, events: lines.filter(isEvent).map((l) => JSON.parse(l)), json}
}
const row = (r: HaRun, id: string) => (r.json!.result as {checks: Array<{id: string; status: string; summary: string}>}).checks.find((c) => c.id === id)

describe('ha status, ha check and ha failover on the cluster lab (stand-in group of stock agents)', {skip}, () => {
  before(async () => {
    const up = ha(['lab', 'up', '--cluster', '--lab-dir', labDir, '--json'], {timeoutMs: 120_000})
    assert.equal(up.status, 0, up.stdout + up.stderr)
    const formed = await within(60, async () => {
      const mon = await inNode('primary', ['crm_mon', '--output-as=xml'])
      return /with_quorum="true"/.test(mon) && (mon.match(/online="true"/g) ?? []).length === 2 ? true : undefined
    })
    assert.ok(formed, 'both nodes online and quorate within 60 s')
    // Nothing of the service outside the cluster (the product, the service IP): the group starts from a clean slate.
    await labServiceStop('primary', {labDir})
    await inNode('primary', ['ip', 'addr', 'del', `${serviceIp}/24`, 'dev', 'eth0'])
    const created = await runInNode(labDir, 'primary', ['cibadmin', '--create', '-o', 'resources', '--xml-text', standIn])
    assert.equal(created.code, 0, created.stderr)
    assert.ok(await within(30, async () => ((await located()).length === 1 ? true : undefined)), 'the stand-in group starts')
    const base = parse(readFileSync(labPaths(labDir).config, 'utf8')) as Record<string, Record<string, unknown>>
    const bridge = /^\d+:\s+(\S+)\s+inet 198\.18\.0\.1\//m.exec(spawnSync('ip', ['-n', labNetns.admin, '-o', 'addr', 'show'], {encoding: 'utf8'}).stdout)![1]
    base.failover = {...base.failover, mode: 'service', verify: {argv: ['arping', '-q', '-c', '1', '-w', '2', '-I', bridge, serviceIp]}}
    base.cluster = {fencing: [{agent: 'fence_ha_lab', id: 'fence-lab'}], manager: 'pacemaker'}
    writeFileSync(config, stringify(base))
  })
  after(async () => {
    await labDown({labDir}).catch(() => {})
    rmSync(labDir, {force: true, recursive: true})
  })

  it('ha status shows the cluster beside ha\'s view: nodes, quorum, where the group and the controller run', async () => {
    const where = await located()
    const r = run('status', '--json')
    assert.equal(r.status, 0, r.stdout + r.stderr)
    const cluster = (r.json!.result as {cluster: {controller: {running_on: string[]}; group: {node: string; running_on: string[]}; nodes: Array<{name: string; online: boolean}>; quorate: boolean}}).cluster
    assert.equal(cluster.quorate, true)
    assert.deepEqual(cluster.nodes.map((n) => [n.name, n.online]), [['ctl-a', true], ['ctl-b', true]])
    assert.deepEqual(cluster.group.running_on, where, 'the group where crm_resource --locate says')
    assert.equal(cluster.group.node, nodeOf(where[0]))
    assert.deepEqual(cluster.controller.running_on, where)
    const text = run('status')
    assert.match(text.stdout, new RegExp(`Cluster: +Pacemaker, as primary sees it: quorate, DC ctl-[ab]; ctl-a \\(primary\\) online; ctl-b \\(secondary\\) online`))
    assert.match(text.stdout, new RegExp(`ha-service started on ${where[0]} \\(ha-storage Started ${where[0]}, ha-ip-0 Started ${where[0]}, ha-controller Started ${where[0]}\\)`))
  })

  it('ha check judges the cluster: quorum, nodes, the controller once, failed actions (warn), fencing, and says ha\'s epoch is not compared', async () => {
    let r = run('check', '--json')
    for (const id of ['cluster_quorum', 'cluster_nodes', 'cluster_controller', 'cluster_failures', 'cluster_fencing']) assert.equal(row(r, id)?.status, 'pass', `${id}: ${JSON.stringify(row(r, id))}`)
    assert.match(row(r, 'cluster_fencing')!.summary, /stonith-enabled, devices: fence-lab/)
    assert.equal(row(r, 'cluster_agrees')?.status, 'warn')
    assert.match(row(r, 'cluster_agrees')!.summary, /not compared: ha-controller is ocf:heartbeat:Dummy, not ocf:ha:controller/)
    // The controller's monitor fails once (its state file gone): Pacemaker restarts it in place and keeps the failure.
    const [where] = await located()
    await inNode(nodeOf(where), ['rm', '-f', '/run/resource-agents/Dummy-ha-controller.state'])
    assert.ok(await within(20, async () => ((await inNode('primary', ['crm_mon', '--output-as=xml'])).includes('<failure ') ? true : undefined)), 'crm_mon shows the failure')
    r = run('check', '--json')
    assert.equal(row(r, 'cluster_failures')?.status, 'warn')
    assert.match(row(r, 'cluster_failures')!.summary, new RegExp(`ha-controller monitor on ${where}: rc 7 not running \\(No process state file found\\)`))
    const text = run('status')
    assert.match(text.stdout, new RegExp(`failed: ha-controller monitor on ${where}: rc 7 not running`))
    await inNode('primary', ['crm_resource', '--cleanup', '--resource', 'ha-service'])
    assert.ok(await within(20, async () => ((await inNode('primary', ['crm_mon', '--output-as=xml'])).includes('<failure ') ? undefined : true)), 'the failure is forgotten')
  })

  it('ha failover switches the group over through Pacemaker and back: the group and the IP on the other node, no move constraint left', async () => {
    for (let round = 0; round < 2; round++) {
      const [where] = await located()
      const from = nodeOf(where)
      const to = other(from)
      const r = run('failover', '--yes', '--json')
      assert.equal(r.status, 0, r.stdout + r.stderr)
      const result = r.json!.result as {cleared: boolean; from: string; steps: Array<{id: string; status: string}>; to: string; verify: {ha_view: string; service: string}; wall_ms: number}
      assert.deepEqual([result.from, result.to], [from, to])
      assert.deepEqual(result.steps.map((s) => `${s.id} ${s.status}`), ['preflight done', 'move done', 'wait done', 'verify done', 'clear done'])
      assert.deepEqual(r.events.map((e) => `${e.step} ${e.event}`), ['preflight started', 'preflight done', 'move started', 'move done', 'wait started', 'wait done', 'verify started', 'verify done', 'clear started', 'clear done'])
      assert.deepEqual(await located(), [names[to]], 'Pacemaker runs the group on the other node')
      assert.deepEqual(await holders(), [to], 'only the new node holds the service IP')
      assert.doesNotMatch(await constraints(), /cli-(prefer|ban)/, 'no move constraint left')
      assert.equal(result.verify.service, 'exit 0')
      assert.match(result.verify.ha_view, /^not compared/)
      console.log(`# switchover ${names[from]} -> ${names[to]} (stand-in group): ${result.wall_ms} ms`)
    }
  })

  it('refuses before anything moves: the target in standby, a move constraint left behind', async () => {
    const [where] = await located()
    const target = names[other(nodeOf(where))]
    await inNode('primary', ['crm_attribute', '--node', target, '--name', 'standby', '--update', 'on'])
    try {
      const r = run('failover', '--yes', '--json')
      assert.ok(r.json?.error, r.stdout + r.stderr)
      assert.equal(r.status, 1, r.stdout)
      assert.match(r.json!.error!.message, new RegExp(`^preflight: nothing was moved: ${target} is in standby: it may not run ha-service`))
      assert.ok(r.json!.error!.actions.includes(`crm_attribute --node ${target} --name standby --update off`))
      assert.deepEqual(await located(), [where])
      assert.doesNotMatch(await constraints(), /cli-(prefer|ban)/)
    } finally {
      await inNode('primary', ['crm_attribute', '--node', target, '--name', 'standby', '--update', 'off'])
    }

    // Someone's crm_resource --ban of the target: its constraint stays until cleared, and the move could not finish.
    await inNode('primary', ['crm_resource', '--ban', '--resource', 'ha-service', '--node', target])
    try {
      const r = run('failover', '--yes', '--json')
      assert.ok(r.json?.error, r.stdout + r.stderr)
      assert.equal(r.status, 1, r.stdout)
      assert.match(r.json!.error!.message, new RegExp(`a move constraint on ha-service is already there \\(cli-ban-ha-service-on-${target}\\)`))
      assert.ok(r.json!.error!.actions.includes('if no one else is moving it: crm_resource --clear --resource ha-service'))
      assert.match(await constraints(), /cli-ban-ha-service/, 'another admin\'s constraint is theirs to clear')
      assert.deepEqual(await located(), [where])
    } finally {
      await inNode('primary', ['crm_resource', '--clear', '--resource', 'ha-service'])
    }
  })

  it('Ctrl-C while the cluster cannot finish the move: the move constraint is removed anyway, exit 130', async () => {
    const [where] = await located()
    const target = names[other(nodeOf(where))]
    // A rule (not a plain node score, which the preflight names) keeps the controller off the target.
    const rule = `<rsc_location id="keep-off" rsc="ha-controller"><rule id="keep-off-rule" score="-INFINITY"><expression id="keep-off-expr" attribute="#uname" operation="eq" value="${target}"/></rule></rsc_location>`
    await runInNode(labDir, 'primary', ['cibadmin', '--create', '-o', 'constraints', '--xml-text', rule])
    try {
      const child = spawnSync('sh', ['-c', `ip netns exec ${labNetns.admin} ${process.execPath} ${haBin} failover --yes --config ${config} & pid=$!; sleep 6; kill -INT $pid; wait $pid`], {encoding: 'utf8', timeout: 60_000})
      assert.equal(child.status, 130, child.stdout + child.stderr)
      assert.match(child.stderr, /✗ wait \(\d+\.\ds\): interrupted/)
      assert.match(child.stderr, /✓ clear/)
      assert.match(child.stderr, /the move constraint was removed/)
      assert.doesNotMatch(await constraints(), /cli-(prefer|ban)/)
      assert.deepEqual(await located(), [where], 'the group stays where it ran')
    } finally {
      await inNode('primary', ['cibadmin', '--delete', '--xml-text', '<rsc_location id="keep-off"/>'])
    }
  })
})
