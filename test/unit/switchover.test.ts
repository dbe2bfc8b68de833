import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {parseCrmMon} from '../../src/pacemaker/crm-mon.js'
import {constraintProblems, judgeCluster, planSwitchover} from '../../src/cluster/switchover-plan.js'
import {prepareSwitchover, runSwitchover, type SwitchoverEvent, type SwitchoverPrepared} from '../../src/cluster/switchover.js'
import {type Config, configSchema, type NodeName} from '../../src/config/schema.js'
import {HaError, InterruptedError} from '../../src/core/errors.js'
import type {Host, RunResult} from '../../src/hosts/host.js'
import type {FailoverNodes} from '../../src/pair/nodes.js'

/**
 * The switchover's decisions and its order of commands, against crm_mon's real XML from the
 * cluster lab (test/fixtures/crm-mon/) and two fake nodes that record every argv: what runs
 * before the move, that the clear always follows a move (failure, timeout, Ctrl-C), and what
 * stops it before anything moves. The lab test (test/lab/cluster-view.test.ts) runs it for real.
 */
const fixture = (name: string) => readFileSync(join(import.meta.dirname, '..', 'fixtures', 'crm-mon', name), 'utf8')
const onB = fixture('group-started.xml')
/** The same status with the group's members started on ctl-a instead (the fence device stays where it was). */
const onA = onB.replace(/(<group id="ha-service"[\s\S]*?<\/group>)/, (g) => g.replaceAll('<node name="ctl-b" id="2" cached="true"/>', '<node name="ctl-a" id="1" cached="true"/>'))
const noConstraints = '<constraints/>\n'
const version = Buffer.from('product.version=2.1.0.1234\n')
const addr = (ip: string) => `2: eth0    inet ${ip}/24 scope global eth0\\       valid_lft forever preferred_lft forever\n`

const config: Config = configSchema.parse({
  cluster: {fencing: [{agent: 'fence_ipmilan', id: 'fence-a'}], manager: 'pacemaker'},
  data_dir: '/d',
  failover: {mode: 'service', verify: {argv: ['true']}},
  nodes: {primary: {hostname: 'ctl-a'}, secondary: {hostname: 'ctl-b'}},
  service_ips: [{address: '198.18.0.100/24', interface: 'eth0'}],
})

type Answer = Partial<RunResult> | ((argv: string[]) => Partial<RunResult>)

/** A node that answers each argv by its first words, and records what it was asked. */
function fakeNode(name: string, answers: Record<string, Answer | Answer[]>, log: string[]): Host {
  const queues = new Map(Object.entries(answers).map(([k, v]) => [k, Array.isArray(v) ? [...v] : [v]]))
  const answer = (argv: string[]): RunResult => {
    log.push(`${name}$ ${argv.join(' ')}`)
    const key = [...queues.keys()].find((k) => argv.join(' ').startsWith(k))
    if (!key) throw new Error(`${name}: unexpected ${argv.join(' ')}`)
    const queue = queues.get(key)!
    const next = queue.length > 1 ? queue.shift()! : queue[0]
    const r = typeof next === 'function' ? next(argv) : next
    return {code: r.code ?? 0, stderr: Buffer.from(r.stderr ?? ''), stdout: Buffer.from(r.stdout ?? '')}
  }

  return {
    address: name,
    async close() {},
    name,
    path: (p: string) => p,
    async probe() {
      throw new Error('no probes here')
    },
    async readFile() {
      return version
    },
    root: '/',
    async run(argv: string[]) {
      return answer(argv)
    },
  } as unknown as Host
}

function prepared(hosts: Record<NodeName, Host>, from: NodeName = 'secondary', view = onB): SwitchoverPrepared & {closed: () => boolean} {
  let closed = false
  const nodes = {
    async closeAll() {
      closed = true
    },
    async get(n: NodeName) {
      return hosts[n]
    },
  } as unknown as FailoverNodes
  return {closed: () => closed, config, from, nodes, to: from === 'primary' ? 'secondary' : 'primary', via: from, view: parseCrmMon(view)}
}

const stillOnB = {stdout: onB}

describe('the switchover under Pacemaker', () => {
  it('runs preflight, move, wait, verify, clear in order, with the exact commands the plan shows', async () => {
    const log: string[] = []
    const b = fakeNode('ctl-b', {'cibadmin': {stdout: noConstraints}, 'crm_mon': [stillOnB, {stdout: fixture('moving.xml')}, {stdout: onA}], 'crm_resource': {}, 'ip -o addr': {stdout: addr('198.18.0.3')}}, log)
    const a = fakeNode('ctl-a', {'ip -o addr': {stdout: addr('198.18.0.2') + addr('198.18.0.100')}}, log)
    const p = prepared({primary: a, secondary: b})
    const events: SwitchoverEvent[] = []
    const progress: string[] = []
    const r = await runSwitchover(p, {onEvent: (e) => events.push(e), onProgress: (m) => progress.push(m)})
    assert.deepEqual([r.from, r.to, r.cleared], ['secondary', 'primary', true])
    assert.deepEqual(r.steps.map((s) => `${s.id} ${s.status}`), ['preflight done', 'move done', 'wait done', 'verify done', 'clear done'])
    assert.deepEqual(events.map((e) => `${e.step} ${e.event}`), ['preflight started', 'preflight done', 'move started', 'move done', 'wait started', 'wait done', 'verify started', 'verify done', 'clear started', 'clear done'])
    assert.deepEqual(log, [
      'ctl-b$ cibadmin --query --scope constraints',
      'ctl-b$ crm_resource --move --resource ha-service --node ctl-a',
      'ctl-b$ crm_mon --output-as=xml --fence-history=2',
      'ctl-b$ crm_mon --output-as=xml --fence-history=2',
      'ctl-b$ crm_mon --output-as=xml --fence-history=2',
      'ctl-b$ ip -o addr show',
      'ctl-a$ ip -o addr show',
      'ctl-b$ crm_resource --clear --resource ha-service',
      'ctl-b$ crm_mon --output-as=xml --fence-history=2',
    ])
    const planned = planSwitchover(config, 'secondary', 'primary').flatMap((s) => s.actions)
    assert.ok(planned.includes('ctl-b$ crm_resource --move --resource ha-service --node ctl-a'))
    assert.ok(planned.includes('ctl-b$ crm_resource --clear --resource ha-service (the other node if ctl-b does not answer)'))
    assert.equal(progress[0], 'ha-storage Started on ctl-b, ha-ip-0 Started on ctl-b, ha-controller Started on ctl-b')
    assert.equal(progress.at(-1), 'ha-storage Started on ctl-a, ha-ip-0 Started on ctl-a, ha-controller Started on ctl-a')
    assert.equal(r.verify.service, 'exit 0')
    assert.match(r.verify.ha_view, /^not compared: ha-controller is ocf:heartbeat:Dummy/)
    assert.equal(r.cluster_after?.group.node, 'primary')
    assert.ok(p.closed())
  })

  it('a move that never finishes ends at the bound, and the constraint is cleared; the error says so', async () => {
    const log: string[] = []
    const b = fakeNode('ctl-b', {'cibadmin': {stdout: noConstraints}, 'crm_mon': stillOnB, 'crm_resource': {}}, log)
    const p = prepared({primary: fakeNode('ctl-a', {}, log), secondary: b})
    await assert.rejects(runSwitchover(p, {waitS: 1}), (error: HaError) => /^ha-service did not move to ctl-a within 1s; last seen: ha-storage Started on ctl-b/.test(error.message) && /the move constraint was removed/.test(error.message))
    assert.equal(log.at(-1), 'ctl-b$ crm_resource --clear --resource ha-service')
    assert.ok(p.closed())
  })

  it('Ctrl-C during the wait: interrupted, and the clear still runs', async () => {
    const log: string[] = []
    const stop = new AbortController()
    const b = fakeNode('ctl-b', {'cibadmin': {stdout: noConstraints}, 'crm_mon': () => (stop.abort(), stillOnB), 'crm_resource': {}}, log)
    const p = prepared({primary: fakeNode('ctl-a', {}, log), secondary: b})
    const notes: string[] = []
    await assert.rejects(runSwitchover(p, {onProgress: (m) => notes.push(m), signal: stop.signal}), InterruptedError)
    assert.equal(log.at(-1), 'ctl-b$ crm_resource --clear --resource ha-service')
    assert.ok(notes.includes('the move constraint was removed: Pacemaker places the group by its own rules again'))
  })

  it('a clear that fails on the node that moved is tried on the other; failing on both, the error names the command to run', async () => {
    const log: string[] = []
    const failClear = (argv: string[]) => (argv.includes('--clear') ? {code: 1, stderr: 'connection refused'} : {})
    const b = fakeNode('ctl-b', {'cibadmin': {stdout: noConstraints}, 'crm_mon': [stillOnB, {stdout: onA}], 'crm_resource': failClear, 'ip -o addr': {stdout: addr('198.18.0.3')}}, log)
    const a = fakeNode('ctl-a', {'crm_resource': {}, 'ip -o addr': {stdout: addr('198.18.0.100')}}, log)
    const r = await runSwitchover(prepared({primary: a, secondary: b}))
    assert.equal(r.cleared, true)
    assert.deepEqual(log.filter((l) => l.includes('--clear')), ['ctl-b$ crm_resource --clear --resource ha-service', 'ctl-a$ crm_resource --clear --resource ha-service'])
    const log2: string[] = []
    const b2 = fakeNode('ctl-b', {'cibadmin': {stdout: noConstraints}, 'crm_mon': [stillOnB, {stdout: onA}], 'crm_resource': failClear, 'ip -o addr': {stdout: addr('198.18.0.3')}}, log2)
    const a2 = fakeNode('ctl-a', {'crm_resource': failClear, 'ip -o addr': {stdout: addr('198.18.0.100')}}, log2)
    await assert.rejects(runSwitchover(prepared({primary: a2, secondary: b2})), (error: HaError) => /could not be removed/.test(error.message) && error.actions.includes('run on a node: crm_resource --clear --resource ha-service'))
  })

  it('the preflight stops before any move (no crm_resource at all) on a constraint left behind, naming it', async () => {
    const log: string[] = []
    const left = '<constraints>\n  <rsc_location id="cli-prefer-ha-service" rsc="ha-service" role="Started" node="ctl-b" score="INFINITY"/>\n</constraints>\n'
    const b = fakeNode('ctl-b', {cibadmin: {stdout: left}}, log)
    const p = prepared({primary: fakeNode('ctl-a', {}, log), secondary: b})
    await assert.rejects(runSwitchover(p), (error: HaError) => error.message === 'preflight: nothing was moved: a move constraint on ha-service is already there (cli-prefer-ha-service): a move under way, or one left behind')
    assert.deepEqual(log, ['ctl-b$ cibadmin --query --scope constraints'])
    assert.ok(p.closed())
  })

  it('with no cluster answering, preparing refuses and names each node\'s reason', async () => {
    // prepareSwitchover connects through FailoverNodes: with local nodes (no ssh block) it runs
    // crm_mon here, which is only there with Pacemaker; its refusal is what this asserts.
    await assert.rejects(prepareSwitchover(config), (error: HaError) => /no node gave the cluster's view: primary: .*; secondary: /.test(error.message))
  })
})

describe('the switchover\'s preflight judgement', () => {
  it('passes a healthy cluster and names each problem with its fix', () => {
    assert.deepEqual(judgeCluster(config, parseCrmMon(onB), 'secondary', 'primary'), {problems: [], warnings: []})
    const standby = judgeCluster(config, parseCrmMon(fixture('standby.xml')), 'secondary', 'primary')
    assert.deepEqual(standby.problems[0], {action: 'crm_attribute --node ctl-a --name standby --update off', problem: 'ctl-a is in standby: it may not run ha-service'})
    const down = judgeCluster(config, parseCrmMon(fixture('fenced-peer-down.xml')), 'secondary', 'primary')
    assert.deepEqual(down.problems.map((p) => p.problem), ['ctl-a is offline in the cluster'])
    const moving = judgeCluster(config, parseCrmMon(fixture('moving.xml')), 'secondary', 'primary')
    assert.deepEqual(moving.problems.map((p) => p.problem), ['ha-service is not started on ctl-b alone (started on: none)'])
  })

  it('a failed action of a member on the target stops it; one elsewhere only warns', () => {
    const failed = parseCrmMon(fixture('failed-action.xml'))
    const towardB = judgeCluster(config, failed, 'secondary', 'primary')
    assert.deepEqual(towardB.problems, [])
    assert.match(towardB.warnings[0], /^failed action: ha-controller monitor failed on ctl-b \(rc 7 not running: No process state file found, 2026-12-07 17:38:25Z\)/)
    const onTarget = {...failed, failures: failed.failures.map((f) => ({...f, node: 'ctl-a'}))}
    const toA = judgeCluster(config, onTarget, 'secondary', 'primary')
    assert.equal(toA.problems[0].action, 'find the cause, then forget it: crm_resource --cleanup --resource ha-service --node ctl-a')
  })

  it('reads constraints: cli- leftovers on the group, -INFINITY locations keeping it or a member off the target', () => {
    const cib = `<constraints>
  <rsc_location id="cli-ban-ha-service-on-ctl-a" rsc="ha-service" role="Started" node="ctl-a" score="-INFINITY"/>
  <rsc_location id="keep-off" rsc="ha-controller" node="ctl-a" score="-INFINITY"/>
  <rsc_location id="prefer-b" rsc="ha-controller" node="ctl-b" score="50"/>
  <rsc_location id="other" rsc="something-else" node="ctl-a" score="-INFINITY"/>
</constraints>`
    assert.deepEqual(constraintProblems(cib, 'ha-service', ['ha-storage', 'ha-ip-0', 'ha-controller'], 'ctl-a'), {banned: ['keep-off (ha-controller)'], leftover: ['cli-ban-ha-service-on-ctl-a']})
    assert.throws(() => constraintProblems('<cib/>', 'g', [], 'x'), /printed <cib>, not <constraints>/)
  })
})
