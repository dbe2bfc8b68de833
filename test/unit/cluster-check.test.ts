import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {clusterChecks} from '../../src/check/checks/cluster.js'
import {probeIds} from '../../src/check/probes.js'
import type {NodeFacts} from '../../src/check/types.js'
import {type Config, configSchema, type NodeName} from '../../src/config/schema.js'
import type {Roles} from '../../src/pair/roles.js'

/**
 * ha check's cluster rows, fed with crm_mon's real XML from the cluster lab (test/fixtures/crm-mon/)
 * as each node's probe answered it; the lab test (test/lab/cluster-view.test.ts) runs them live.
 */
const fixture = (name: string) => readFileSync(join(import.meta.dirname, '..', 'fixtures', 'crm-mon', name), 'utf8')
const config: Config = configSchema.parse({
  cluster: {fencing: [{agent: 'fence_ipmilan', id: 'fence-a'}], manager: 'pacemaker'},
  data_dir: '/d',
  failover: {mode: 'service'},
  nodes: {primary: {hostname: 'ctl-a'}, secondary: {hostname: 'ctl-b'}},
})

function facts(answers: Record<NodeName, {code: number; stdout: string} | undefined>): Record<NodeName, NodeFacts> {
  const one = (node: NodeName): NodeFacts => {
    const a = answers[node]
    return {
      probe_budget_s: 10,
      probes: a ? new Map([[probeIds.crmMon, {argv: [], code: a.code, id: probeIds.crmMon, stderr: Buffer.alloc(0), stdout: Buffer.from(a.stdout)}]]) : undefined,
      report: {address: 'local', elapsed_ms: 1, node, reachable: a !== undefined},
      root: '/',
      state_dir: '/d/.ha',
    }
  }

  return {primary: one('primary'), secondary: one('secondary')}
}

const roles = (active: NodeName): Roles => ({active, epoch: 3, ignored: [], reachable: {primary: true, secondary: true}, source: 'storage', standby: active === 'primary' ? 'secondary' : 'primary', storage_on: [active]})
const rows = (r: ReturnType<typeof clusterChecks>) => Object.fromEntries(r.checks.map((c) => [c.id, `${c.status}: ${c.summary}`]))
const asHa = (xml: string) => xml.replaceAll('resource_agent="ocf:heartbeat:Dummy" role="Started" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">\n        <node name="ctl-b"', 'resource_agent="ocf:ha:controller" role="Started" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">\n        <node name="ctl-b"')

describe('ha check\'s cluster rows', () => {
  it('none without a cluster manager', () => {
    assert.deepEqual(clusterChecks(configSchema.parse({data_dir: '/d', nodes: {primary: {hostname: 'a'}, secondary: {hostname: 'b'}}}), facts({primary: undefined, secondary: undefined}), undefined), {checks: []})
  })

  it('a healthy cluster passes; a stand-in controller is not compared with ha\'s epoch (warn)', () => {
    const r = clusterChecks(config, facts({primary: {code: 0, stdout: fixture('group-started.xml')}, secondary: {code: 0, stdout: fixture('group-started.xml')}}), roles('secondary'))
    assert.deepEqual(rows(r), {
      cluster_agrees: 'warn: not compared: ha-controller is ocf:heartbeat:Dummy, not ocf:ha:controller, so nothing moves ha\'s epoch with it',
      cluster_controller: 'pass: ha-controller (ocf:heartbeat:Dummy) started on ctl-b, and nowhere else',
      cluster_failures: 'pass: no failed actions',
      cluster_fencing: 'pass: stonith-enabled, devices: fence-lab',
      cluster_nodes: 'pass: ctl-a online, ctl-b online',
      cluster_quorum: 'pass: quorate, DC ctl-a (as primary sees it)',
    })
    assert.equal(r.report?.group.node, 'secondary')
  })

  it('ha\'s epoch and Pacemaker\'s placement: agree (pass), disagree (fail)', () => {
    const xml = asHa(fixture('group-started.xml'))
    const both = {primary: {code: 0, stdout: xml}, secondary: {code: 0, stdout: xml}}
    assert.match(rows(clusterChecks(config, facts(both), roles('secondary'))).cluster_agrees, /^pass: both say secondary \(ctl-b\): ha's epoch 3, Pacemaker runs ha-controller there$/)
    const disagree = clusterChecks(config, facts(both), roles('primary'))
    assert.equal(rows(disagree).cluster_agrees, 'fail: ha\'s epoch 3 names primary (ctl-a) active, but Pacemaker runs ha-controller on ctl-b')
  })

  it('a failed action warns with its fix; the peer fenced and down fails the nodes row and names the fencing', () => {
    const failed = clusterChecks(config, facts({primary: {code: 0, stdout: fixture('failed-action.xml')}, secondary: undefined}), roles('secondary'))
    assert.equal(rows(failed).cluster_failures, 'warn: 1 failed action(s): ha-controller monitor on ctl-b: rc 7 not running (No process state file found) at 2026-12-07 17:38:25Z')
    assert.deepEqual(failed.checks.find((c) => c.id === 'cluster_failures')!.actions, ['once understood: crm_resource --cleanup --resource ha-controller --node ctl-b'])
    const down = clusterChecks(config, facts({primary: {code: 102, stdout: fixture('not-connected.xml')}, secondary: {code: 0, stdout: fixture('fenced-peer-down.xml')}}), roles('secondary'))
    assert.equal(down.report?.from, 'secondary', 'the view of the node that answers')
    assert.match(rows(down).cluster_nodes, /^fail: not online in the cluster: primary \(ctl-a\); crm_mon lists ctl-a offline, ctl-b online$/)
    assert.match(rows(down).cluster_fencing, /^pass: stonith-enabled, devices: fence-lab; last fencing: reboot ctl-a success 2026-12-07 17:38:38Z$/)
  })

  it('no node gives a view: one failing row with each node\'s reason, never rows judged on nothing', () => {
    const r = clusterChecks(config, facts({primary: {code: 102, stdout: fixture('not-connected.xml')}, secondary: {code: 0, stdout: 'garbage'}}), roles('primary'))
    assert.deepEqual(r.checks.map((c) => `${c.id} ${c.status}`), ['cluster fail'])
    assert.match(r.checks[0].summary, /^no node gave the cluster's view: primary: crm_mon: Not connected \(status 102\).*; secondary: crm_mon's output is not XML: text before the root element/)
  })
})
